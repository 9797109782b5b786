"""Drawing or physics: which one limits an LM's videos? Four videos of each clip, judged by the
evaluator, per scene and group (ID / OOD):

- free: the model writes its states and draws its frames (its visual tokens), as `physar generate`;
- drawn: the model writes its states, the renderer draws them (`physar generate --draw renderer`);
- given: every symbolic token of the completion (the <state> block and each frame's <p> numbers)
  forced to the simulator's own, the model draws the frames after each true state: how well the
  LM draws a trajectory it is given;
- round trip: the true frames through the DDT tokenizer: what a perfect drawer would reach.

Free minus drawn is what the LM's drawing costs; given against round trip is its drawing alone.
Beside them the median distance between the decoded balls and the given states.

    python benchmarks/lm_given_trajectory.py checkpoints/sft_cpu_v2 --limit 12 \\
        --data outputs/compare_v2/data/uniform outputs/compare_v2/data/collision outputs/compare_v2/data/parabola

Greedy decoding; the checkpoint's DDT decoder, one-step renderer. On the 2-core CPU machine,
12 ID and 12 OOD clips of each of the three folders: about 6 minutes for `sft_cpu_v2`.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessor

from physar.data.generate import load_metadata
from physar.evaluation.evaluate import clip_result, is_small
from physar.lm.generate import generate_sequences, symbolic_agreement
from physar.lm.model import load_checkpoint
from physar.tokenizer.codec import decode_clip, encode_clip, load_tokenizer
from physar.video import read_video


class ForceSymbols(LogitsProcessor):
    """Row b's completion token s is forced to targets[b][s] unless that is None (left free). The
    first call fixes the (left-padded) prompt length."""

    def __init__(self, targets: list[list[int | None]]):
        self.targets, self.prompt_length = targets, None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        step = input_ids.shape[1] - self.prompt_length
        for row, target in enumerate(self.targets):
            if step < len(target) and target[step] is not None:
                keep = scores[row, target[step]].clone()
                scores[row] = float("-inf")
                scores[row, target[step]] = 0.0 if torch.isinf(keep) else keep
        return scores


def measure(checkpoint: str, data_dir: str, limit: int | None, batch_size: int = 12) -> dict[str, dict]:
    """{mode: {group: [vel_error per clip]}} for modes free, drawn, given, round_trip; plus agreement px.
    `limit`: at most this many (not small-ball) clips of each group."""
    model, tok, lang, meta = load_checkpoint(checkpoint)
    ddt = load_tokenizer(meta["tokenizer"])
    cond, total = meta["conditioning_frames"], meta["num_frames"]
    kept = [r for r in load_metadata(data_dir) if not is_small(r)]
    records = [r for r in kept if r["bucket"] == "in"][:limit] + [r for r in kept if r["bucket"] != "in"][:limit]
    errors = {mode: {"in": [], "out": []} for mode in ("free", "drawn", "given", "round_trip")}
    agreement = []
    for start in range(0, len(records), batch_size):
        batch = records[start:start + batch_size]
        videos = [read_video(Path(data_dir) / r["video"])[:total] for r in batch]
        ids = [encode_clip(ddt, v) for v in videos]
        prompts = np.stack([i[:cond] for i in ids])
        completions = [lang.completion(r, i) for r, i in zip(batch, ids)]
        drawn = lang.expect["visual"] | lang.expect["keypoint"]
        targets = [[None if t in drawn else tok.convert_tokens_to_ids(t) for t in c] for c in completions]
        scenes = [r["scene"] for r in batch]
        runs = {"free": generate_sequences(model, tok, lang, prompts, total - cond, cond, meta["max_objects"],
                                           seed=start, scenes=scenes),
                "drawn": generate_sequences(model, tok, lang, prompts, total - cond, cond, meta["max_objects"],
                                            seed=start, scenes=scenes, draw_with=ddt),
                "given": generate_sequences(model, tok, lang, prompts, total - cond, cond, meta["max_objects"],
                                            seed=start, scenes=scenes,
                                            processors=[ForceSymbols(targets)])}
        for k, (record, prompt, video, true_ids) in enumerate(zip(batch, prompts, videos, ids)):
            group = "in" if record["bucket"] == "in" else "out"
            for mode, clips in runs.items():
                clip = clips[k]
                if isinstance(clip, str):
                    raise SystemExit(f"{record['video']} ({mode}): {clip}")
                frames = decode_clip(ddt, np.concatenate([prompt, clip.visual]))
                errors[mode][group].append(clip_result(record, frames, "exact")["vel_error"])
                if mode == "given":
                    agreement += symbolic_agreement(frames[cond:], clip, ddt.config.resolution).get("distances_px", [])
            errors["round_trip"][group].append(clip_result(record, decode_clip(ddt, true_ids), "exact")["vel_error"])
    errors["agreement_px"] = float(np.median(agreement)) if agreement else float("nan")
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="symbolic LM checkpoints or run folders (physar sft --out)")
    parser.add_argument("--data", nargs="+", required=True, help="evaluation dataset folders (e.g. physar compare's OUT/data/*)")
    parser.add_argument("--limit", type=int, default=None,
                        help="at most this many (not small-ball) ID clips, and as many OOD ones, of each folder")
    args = parser.parse_args()

    mean = (lambda v: f"{np.nanmean(v):.3f}" if len(v) else "-")
    print("| checkpoint | scene | group | clips | free | drawn by the renderer | given trajectory, LM draws | "
          "DDT round trip of the true frames | decoded vs given states, median px |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for checkpoint in args.checkpoints:
        for data_dir in args.data:
            errors = measure(checkpoint, data_dir, args.limit)
            scene = load_metadata(data_dir)[0]["scene"]
            for group in ("in", "out"):
                n = len(errors["free"][group])
                if n:
                    print(f"| `{checkpoint}` | {scene} | {group} | {n} | {mean(errors['free'][group])} | "
                          f"{mean(errors['drawn'][group])} | "
                          f"{mean(errors['given'][group])} | {mean(errors['round_trip'][group])} | "
                          f"{errors['agreement_px']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
