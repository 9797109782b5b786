"""What the drawing path costs when the states are perfect: the simulator's own states drawn as
`physar generate --draw renderer` draws an LM's (render, DDT-encode, decode), judged by the
evaluator, beside the plain round trip of the true frames and the ground-truth floor. It is the
least velocity error a row drawn by the renderer can reach with this tokenizer.

- round trip: the true frames encoded and decoded; the keypoint encoder finds each ball;
- drawn, pasted: the same frames with each keypoint token written from the true state (a ball
  wholly in view, `physar.lm.drawing.known_keypoints`), decoded with the tokenizer's own snap
  (the decoder's ball pasted at its keypoint);
- drawn, discs: the same tokens decoded as generation decodes drawn frames
  (`physar.lm.drawing.drawn_snap_mode`: each ball in view a disc at its keypoint and radius).

    python benchmarks/drawn_floor.py --data outputs/compare_v5/data/uniform \\
        outputs/compare_v5/data/collision outputs/compare_v5/data/parabola

One-step renderer of the checkpoint's decoder; about a minute a 62-clip folder a column on the
2-core CPU machine.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from physar.data.generate import load_metadata
from physar.evaluation.evaluate import clip_result, is_small
from physar.lm.drawing import drawn_snap_mode, known_keypoints
from physar.tokenizer.codec import decode_clip, encode_clip, load_tokenizer
from physar.video import read_video


def drawn_ids(ddt, frames: np.ndarray, record: dict) -> np.ndarray:
    """Token ids [T, K] of a clip's true frames with the keypoints written from its true states."""
    radii = np.asarray(record["radii"])
    keypoints = torch.cat([known_keypoints(p, radii, record["colors"], ddt.config) for p in np.asarray(record["positions"])])
    return ddt.encode(torch.from_numpy(frames), keypoints[: len(frames)]).numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", type=Path, required=True, help="Dataset folders (evaluation clips) to judge.")
    ap.add_argument("--checkpoint", default="checkpoints/ddt_cpu_v6", help="DDT tokenizer checkpoint.")
    args = ap.parse_args()
    torch.set_num_threads(2)
    ddt = load_tokenizer(args.checkpoint).eval()
    print("| scene | bucket | n | GT floor | round trip | drawn, pasted | drawn, discs |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for folder in args.data:
        errors = defaultdict(list)  # bucket -> [(floor, round trip, drawn)]
        records = [r for r in load_metadata(folder) if not is_small(r)]
        for record in tqdm(records, desc=folder.name, unit="clip", leave=False):
            frames = read_video(folder / record["video"])[: record["num_frames"]]
            row = [clip_result(record, frames, "exact")["vel_error"]]
            written = drawn_ids(ddt, frames, record)
            for ids, snap_mode in ((encode_clip(ddt, frames), None), (written, None), (written, drawn_snap_mode(ddt))):
                decoded = decode_clip(ddt, ids, snap_mode=snap_mode)
                row.append(clip_result(record, decoded, "exact")["vel_error"])
            for bucket in (record["bucket"], "out") if record["bucket"] != "in" else ("in",):
                errors[bucket].append(row)
        for bucket in ["in", "out"] + sorted(set(errors) - {"in", "out"}):
            if bucket in errors:
                table = np.array(errors[bucket], dtype=float)  # NaN: too few valid frames to judge (as the evaluator)
                m, n = np.nanmean(table, axis=0), int(np.isfinite(table[:, 0]).sum())
                print(f"| {records[0]['scene']} | {bucket} | {n} | " + " | ".join(f"{v:.4f}" for v in m) + " |")


if __name__ == "__main__":
    main()
