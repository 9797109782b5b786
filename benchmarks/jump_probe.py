"""Does the LM know how hard two balls collide? Its collision jumps under teacher forcing.

For each held-out collision clip (the split `physar sft` evaluated on, or the clips of --data), the
true sequence is fed whole and, at the frame where the training data writes the collision's change
of step (the only frame of a two-ball clip with a signed change), the LM's greedy choice of every
token of each ball's change is compared with the truth, each given the true tokens before it.
Prints per ball: the sign right (the decision), every digit right (the whole jump), the mean loss of
those tokens, and the error of the jump its greedy digits spell (units/s). Needs a little-endian
language with frame_acceleration and signed_changes (checkpoints since sft_cpu_v4); with
relative_jumps the numbers are the new relative steps (-rel for an elastic collision), whose errors
are the changes' errors; with restitution_jumps they are the factors of the relative steps (-1 for
an elastic collision), and the error is the factor's times the ball's relative step (a change).

    python benchmarks/jump_probe.py checkpoints/sft_cpu_v4 runs/sft_v2_relative
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from physar.data.generate import load_metadata
from physar.language import PLUS, SIGN, split_tokens, token_roles
from physar.lm.model import load_checkpoint
from physar.lm.sequences import clip_example, load_examples, load_token_ids, split_examples
from physar.tokenizer.codec import weights_fingerprint
from simulators.world import FRAME_DT


def held_out_collisions(lang, meta: dict, data: str | None, limit: int) -> list[dict]:
    cfg = meta["config"]
    token_file = cfg.get("token_file", "ddt")
    if data:
        ids = load_token_ids(data, token_file, lang.codebook_size, lang.tokens_per_frame, weights_fingerprint(meta["tokenizer"]))
        examples = [clip_example(lang, r, i) for r, i in zip(load_metadata(data), ids)]
    else:
        examples = split_examples(load_examples(cfg["data"], lang, token_file, weights_fingerprint(meta["tokenizer"])),
                                  cfg["eval_clips"], cfg["seed"])[1]
    return [e for e in examples if e["num_objects"] == 2 and e["record"].get("collisions")][:limit]


def jump_spans(lang, completion: list[str]) -> list[list[int]]:
    """Token indices of each ball's change of x step in the (first) frame that writes a signed one."""
    roles = token_roles(completion, lang)
    signs = [i for i, (t, role) in enumerate(zip(completion, roles)) if role == "position ax sign"]
    if not signs:
        return []
    frame_start = max(i for i in range(signs[0]) if completion[i] == "<frame>")
    frame_end = completion.index("<frame>", signs[0]) if "<frame>" in completion[signs[0]:] else len(completion)
    spans, current = [], []
    for i in range(frame_start, frame_end):
        if roles[i].startswith("position ax"):
            current.append(i)
        elif current:
            spans.append(current)
            current = []
    return spans


def relative_steps(lang, completion: list[str], span: list[int]) -> np.ndarray:
    """Each ball's relative step (its length: along the line of centres) in the frame that `span`
    lies in, as the grammar computes it from the sequence's own state before that frame."""
    clip = lang.parse(completion, completion.count("<frame>"))
    frame = completion[:span[0]].count("<frame>") - 1
    if frame:
        positions, steps = clip.positions[frame - 1], np.asarray(clip.velocities[frame - 1]) * FRAME_DT
    else:
        positions = [(o["x"], o["y"]) for o in clip.objects]
        steps = np.array([(o["vx"], o["vy"]) for o in clip.objects]) * FRAME_DT
    rel, _ = lang.relative(positions, steps, [o["r"] for o in clip.objects])
    return np.hypot(*rel.T)


def spelled(lang, tokens: list[str]) -> float:
    """The value little-endian digits (a sign first, or none for zero) spell, in grid units' world units."""
    sign = -1.0 if tokens[0] == "<->" else 1.0
    digits = [t[1:-1] for t in tokens if t not in (SIGN, PLUS)]
    return sign * float("".join(digits[::-1]) or 0) / 10**lang.decimals if all(d.isdigit() for d in digits) else float("nan")


@torch.no_grad()
def probe(checkpoint: str, data: str | None, limit: int) -> dict:
    model, tok, lang, meta = load_checkpoint(checkpoint)
    rows = {0: [], 1: []}
    for e in held_out_collisions(lang, meta, data, limit):
        prompt, completion = split_tokens(e["prompt"]), split_tokens(e["completion"])
        spans = jump_spans(lang, completion)
        if len(spans) != 2:
            continue
        ids = tok(e["prompt"] + e["completion"], return_tensors="pt")["input_ids"]
        offset = ids.shape[1] - len(completion)  # BOS and the prompt
        assert offset == len(prompt) + 1
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
        scale = relative_steps(lang, completion, spans[0]) if lang.restitution_jumps else np.ones(2)
        for ball, span in enumerate(spans):
            positions = torch.tensor([offset + i for i in span])
            true = ids[0, positions]
            predicted = logp[positions - 1].argmax(-1)
            greedy = [tok.convert_ids_to_tokens(int(p)) for p in predicted]
            truth = [completion[i] for i in span]
            rows[ball].append({"sign": greedy[0] == truth[0], "whole": bool((predicted == true).all()),
                               "loss": float(-logp[positions - 1, true].mean()),
                               "error": abs(spelled(lang, greedy) - spelled(lang, truth)) * scale[ball] / FRAME_DT})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="LM checkpoints or run folders")
    parser.add_argument("--data", help="a tokenized collision dataset to probe instead of each checkpoint's held-out split")
    parser.add_argument("--limit", type=int, default=200, help="at most this many clips")
    args = parser.parse_args()
    print("| checkpoint | ball | clips | sign right | jump right | loss (nats/token) | jump error, units/s (median / mean) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for checkpoint in args.checkpoints:
        for ball, rows in probe(checkpoint, args.data, args.limit).items():
            if not rows:
                continue
            errors = np.array([r["error"] for r in rows])
            print(f"| {checkpoint} | {('red', 'blue')[ball]} | {len(rows)} | {np.mean([r['sign'] for r in rows]):.0%} "
                  f"| {np.mean([r['whole'] for r in rows]):.0%} | {np.mean([r['loss'] for r in rows]):.3f} "
                  f"| {np.nanmedian(errors):.2f} / {np.nanmean(errors):.2f} |")


if __name__ == "__main__":
    main()
