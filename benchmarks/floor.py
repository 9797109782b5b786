"""The evaluator's ground-truth floor: the velocity error of the simulator's own videos, per
scene, bucket, resolution and pixel convention. PhyWorld reports 0.0099 / 0.0117 / 0.0210
(uniform / collision / parabola, ID, 256 px, its convention).

    python benchmarks/floor.py [--resolutions 64 128 256] [--out outputs/floor]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from physar.data.generate import generate
from physar.evaluation.evaluate import PHYWORLD_FLOOR, evaluate

SCENES = ("uniform", "collision", "parabola")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resolutions", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--out", type=Path, default=Path("outputs/floor"))
    parser.add_argument("--count", type=int, default=None, help="eval clips per scene (default: the whole recipe)")
    args = parser.parse_args()

    rows = []
    for scene in SCENES:
        for res in args.resolutions:
            data = args.out / f"{scene}_{res}"
            generate(f"datasets/{scene}.yaml", "eval", data, count=args.count, resolution=res, workers=2, progress=False)
            for convention in ("exact", "phyworld"):
                report = evaluate(data, convention=convention, out=args.out / f"{scene}_{res}_{convention}" / "report.json",
                                  progress=False)[scene]
                rows.append((scene, res, convention, report["in"], report["out"]))
    print("| scene | px | convention | ID floor (n) | OOD floor (n) | PhyWorld (256 px, phyworld) |")
    print("|---|---:|---|---:|---:|---:|")
    for scene, res, conv, i, o in rows:
        print(f"| {scene} | {res} | {conv} | {i['vel_error']:.4f} ({i['n']}) | {o['vel_error']:.4f} ({o['n']}) | "
              f"{PHYWORLD_FLOOR[scene]} |")


if __name__ == "__main__":
    main()
