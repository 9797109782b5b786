"""Where an LM checkpoint's completion loss goes: its held-out SFT clips (the same split `physar
sft` evaluated on), the cross-entropy of every completion token grouped by what the token says:
the <state> block's readings (radius, x, y, vx, vy), each digit of the per-frame positions
(least significant first, as written), and each visual-token slot (coarse first). A digit of 0.01
carrying loss is rounding; a digit of 1 carrying loss is a ball in the wrong place.

    python benchmarks/lm_loss_breakdown.py checkpoints/sft_cpu runs/sft_v2 runs/sft_v2_codes
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from physar.language import split_tokens, token_roles
from physar.lm.model import load_checkpoint
from physar.lm.sequences import load_examples, split_examples
from physar.tokenizer.codec import weights_fingerprint


@torch.no_grad()
def loss_by_role(checkpoint: str, batch_size: int = 8) -> tuple[dict[str, tuple[float, int]], int]:
    """role -> (mean loss in nats, tokens), and the number of held-out clips."""
    model, tok, lang, meta = load_checkpoint(checkpoint)
    cfg = meta["config"]
    examples = load_examples(cfg["data"], lang, cfg.get("token_file", "ddt"), weights_fingerprint(meta["tokenizer"]))
    _, held = split_examples(examples, cfg["eval_clips"], cfg["seed"])
    totals: dict[str, list[float]] = defaultdict(list)
    for start in range(0, len(held), batch_size):
        batch = held[start:start + batch_size]
        rows = [tok(e["prompt"] + e["completion"])["input_ids"] + [tok.eos_token_id] for e in batch]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), tok.pad_token_id)
        mask = torch.zeros_like(ids)
        for i, row in enumerate(rows):  # right-padded: positions line up with the tokens
            ids[i, :len(row)], mask[i, :len(row)] = torch.tensor(row), 1
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")
        for i, e in enumerate(batch):
            completion = split_tokens(e["completion"])
            start_at = len(rows[i]) - len(completion) - 1  # index of the first completion token
            losses = nll[i, start_at - 1:len(rows[i]) - 1].tolist()
            for role, value in zip(token_roles(completion, lang) + ["structure"], losses):
                totals[role].append(value)
    return {role: (float(np.mean(v)), len(v)) for role, v in totals.items()}, len(held)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="LM checkpoints or run folders (physar sft --out)")
    args = parser.parse_args()
    results = {c: loss_by_role(c) for c in args.checkpoints}
    roles = sorted({r for stats, _ in results.values() for r in stats}, key=lambda r: (r.split()[0], r))
    total = {c: sum(m * n for m, n in stats.values()) for c, (stats, _) in results.items()}
    print("| role | tokens per clip | " + " | ".join(f"`{c}`: nats (share of loss)" for c in results) + " |")
    print("|---|---:|" + "---:|" * len(results))
    for role in roles:
        per_clip = next(stats[role][1] / clips for stats, clips in results.values() if role in stats)
        cells = [f"{stats[role][0]:.3f} ({stats[role][0] * stats[role][1] / total[c]:.0%})" if role in stats else "-"
                 for c, (stats, _) in results.items()]
        print(f"| {role} | {per_clip:.1f} | " + " | ".join(cells) + " |")
    print("| all (mean) | - | " + " | ".join(f"{total[c] / sum(n for _, n in stats.values()):.3f}"
                                            for c, (stats, _) in results.items()) + " |")


if __name__ == "__main__":
    main()
