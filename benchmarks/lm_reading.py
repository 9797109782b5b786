"""How well an LM reads the scene: its greedy <state> block from the conditioning frames' tokens
against the simulator's state at the last conditioning frame, per scene, ID and OOD.

Only the block is generated (a few seconds for 186 clips, where `physar compare` rolls out and
draws whole clips in 6-17 minutes a row), so checkpoints along a GRPO run with `rollout: state`
can be read side by side. Errors are medians over clips of the largest error of any ball:
position (units), velocity (units/s), radius (units); `reward` is the mean reading reward
(`physar.rl.rewards.reading_reward`) against the truth; `wrong` counts blocks that name other
balls than the clip's. The folders are evaluation sets as `physar compare` writes them
(outputs/compare_v6/data/<scene>).

`--per-ball` adds whether each ball is read at all: per scene, ball (in the clip's colour order)
and field, the correlation over clips of what the block wrote with the truth, beside the spread of
each. A median error can look fair when the LM writes one likely value for every clip; a
correlation near 0 (or `const`) says so.

    python benchmarks/lm_reading.py --data outputs/compare_v6/data/{uniform,collision,parabola} \\
        --checkpoint checkpoints/sft_cpu_v11 runs/rl_v11_reading_label_free/checkpoint [--per-ball]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessorList

from physar.data.generate import load_metadata
from physar.language import read_state_block
from physar.lm.generate import GrammarConstraint
from physar.lm.model import load_checkpoint
from physar.rl.grpo import STATE_FIELDS, reading_of, state_array
from physar.rl.rewards import reading_reward
from physar.tokenizer.codec import encode_clip, load_tokenizer
from physar.video import read_video


def prompts_of(folders: list[Path], ddt) -> list[tuple[dict, np.ndarray]]:
    """(record, conditioning frames' visual ids [C, K]) for every clip of the folders."""
    out = []
    for folder in folders:
        for record in load_metadata(folder):
            frames = read_video(folder / record["video"])[:record["conditioning_frames"]]
            out.append((record, encode_clip(ddt, frames)))
    return out


@torch.no_grad()
def read_blocks(checkpoint: str, clips: list[tuple[dict, np.ndarray]], batch_size: int = 32) -> list[list[dict] | None]:
    """The checkpoint's greedy <state> block for each clip (None where it did not finish one)."""
    model, tok, lang, meta = load_checkpoint(checkpoint)
    model.eval()
    budget = lang.max_state_length(meta["max_objects"])
    out = []
    for start in range(0, len(clips), batch_size):
        batch = clips[start:start + batch_size]
        texts = [lang.text(lang.prompt(ids, r["conditioning_frames"], r["scene"])) for r, ids in batch]
        enc = tok(texts, return_tensors="pt", padding=True)
        grammar = GrammarConstraint(lang, tok, meta["num_frames"] - meta["conditioning_frames"], meta["max_objects"])
        ids = model.generate(**enc, max_new_tokens=budget, do_sample=False, logits_processor=LogitsProcessorList([grammar]),
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        for row in ids[:, enc["input_ids"].shape[1]:].tolist():
            out.append(read_state_block(lang, tok.convert_ids_to_tokens(row)))
    return out


def readings(lang, clips, blocks) -> list[tuple[dict, np.ndarray, int, np.ndarray]]:
    """Per clip: (record, what its block wrote [N, 5] in the clip's colour order, balls of other colours,
    the truth [N, 5]), shared by both tables."""
    out = []
    for (record, _), objects in zip(clips, blocks):
        written, extra = state_array(objects or [], record["colors"])
        out.append((record, written, extra, np.asarray(reading_of(lang, record, record["conditioning_frames"] - 1))))
    return out


def errors(rows, blocks) -> dict:
    """{(scene, "ID" | "OOD"): [(position, velocity, radius error, reward, wrong)]} per clip."""
    out: dict = {}
    for (record, written, extra, truth), objects in zip(rows, blocks):
        wrong = objects is None or extra > 0 or np.isnan(written).any()
        e = np.abs(written - truth)
        read = not np.isnan(e).all()  # some ball written with a colour the clip has
        row = (np.nanmax(np.hypot(e[:, 1], e[:, 2])) if read else np.nan,
               np.nanmax(np.hypot(e[:, 3], e[:, 4])) if read else np.nan,
               np.nanmax(e[:, 0]) if read else np.nan,
               reading_reward(written, truth, extra), float(wrong))
        key = (record["scene"], "ID" if record["bucket"] == "in" else "OOD")
        out.setdefault(key, []).append(row)
    return out


def per_ball(rows) -> dict:
    """{(scene, ball, field): (n, correlation, written std, truth std)} over the clips where the block
    names that ball's colour; correlation None where either side is constant."""
    pairs: dict = {}
    for record, written, _, truth in rows:
        for ball in range(len(truth)):
            if np.isfinite(written[ball]).all():
                for f, name in enumerate(STATE_FIELDS):
                    pairs.setdefault((record["scene"], ball + 1, name), []).append((written[ball, f], truth[ball, f]))
    out = {}
    for key, values in pairs.items():
        w, t = np.asarray(values).T
        corr = float(np.corrcoef(w, t)[0, 1]) if w.std() > 1e-9 and t.std() > 1e-9 else None
        out[key] = (len(w), corr, float(w.std()), float(t.std()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, help="Evaluation dataset folders (one per scene).")
    ap.add_argument("--checkpoint", nargs="+", required=True, help="LM checkpoints (same DDT tokenizer), one row each.")
    ap.add_argument("--batch-size", type=int, default=32, help="Clips read together.")
    ap.add_argument("--per-ball", action="store_true",
                    help="Also print, per ball and field, the correlation of the written values with the truth.")
    args = ap.parse_args()
    _, _, lang, meta = load_checkpoint(args.checkpoint[0])
    clips = prompts_of([Path(d) for d in args.data], load_tokenizer(meta["tokenizer"]))
    blocks = {c: read_blocks(c, clips, args.batch_size) for c in args.checkpoint}
    rows = {c: readings(lang, clips, b) for c, b in blocks.items()}
    table = {c: errors(rows[c], blocks[c]) for c in args.checkpoint}
    print("| checkpoint | scene | split | n | position | velocity | radius | reward | wrong |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for c, groups in table.items():
        for (scene, split), values in sorted(groups.items()):
            v = np.asarray(values)
            print(f"| {c} | {scene} | {split} | {len(v)} | {np.nanmedian(v[:, 0]):.3f} | {np.nanmedian(v[:, 1]):.3f} | "
                  f"{np.nanmedian(v[:, 2]):.3f} | {v[:, 3].mean():.3f} | {int(v[:, 4].sum())} |")
    if args.per_ball:
        print("\n| checkpoint | scene | ball | field | n | correlation | written std | truth std |")
        print("|---|---|---:|---|---:|---:|---:|---:|")
        for c in args.checkpoint:
            for (scene, ball, name), (n, corr, ws, ts) in sorted(per_ball(rows[c]).items()):
                print(f"| {c} | {scene} | {ball} | {name} | {n} | {'const' if corr is None else f'{corr:+.2f}'} | "
                      f"{ws:.3f} | {ts:.3f} |")


if __name__ == "__main__":
    main()
