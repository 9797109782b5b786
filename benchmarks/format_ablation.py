"""The format ablation: the symbolic and the visual-only LM, trained on the same data for the same
budget, judged on the same simulated evaluation clips; prints and writes one table.

    python benchmarks/format_ablation.py --symbolic runs/sft_cpu --visual runs/sft_visual --count 150
"""

from __future__ import annotations

import argparse
from pathlib import Path

from physar.lm.assess import compare

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbolic", required=True, help="checkpoint of the symbolic-format LM")
    parser.add_argument("--visual", required=True, help="checkpoint of the visual-only LM (physar sft --visual-only)")
    parser.add_argument("--count", type=int, default=150, help="evaluation clips per scene")
    parser.add_argument("--out", default="outputs/format_ablation", help="report folder")
    args = parser.parse_args()
    recipes = [ROOT / "datasets" / f"{s}.yaml" for s in ("uniform", "collision", "parabola")]
    print(compare({"symbolic": args.symbolic, "visual-only": args.visual}, recipes, args.out, args.count))


if __name__ == "__main__":
    main()
