"""Reading or rolling out: which one limits an LM's physics? Each clip of the evaluation sets is
generated twice from its conditioning frames: once as usual (the model writes its own <state>
block) and once with the simulator's <state> block at the last conditioning frame forced in its
place, so the model only has to carry a perfect reading forward. The evaluator's velocity error on
the model's symbolic states (not its decoded frames, so no DDT decoding) for both, per scene and
group, with the reading error of the free runs beside them. Free minus given is what better
reading could buy; what is left in the given column is the roll-out's own error.

    python benchmarks/lm_given_state.py checkpoints/sft_cpu_v2 runs/sft_v2_reading \\
        --data outputs/compare_v2/data/uniform outputs/compare_v2/data/collision outputs/compare_v2/data/parabola

For a frame_displacement checkpoint the last column is its arithmetic: the share of written
positions (per frame, ball and axis, own reading) that are exactly the last written position plus
the written step, over the whole folder (both groups; - for other formats). The grammar holds
them to it (100%) unless `--free-positions` lets the model write them itself.

Greedy decoding, no DDT decoding. On the 2-core CPU machine, the three 62-clip sets above: 4 min for
`sft_cpu_v2`, 7 min for the longer frame_velocity sequences (both modes).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from physar.data.generate import load_metadata
from physar.lm.assess import state_reading_error, symbolic_velocity_error
from physar.lm.generate import generate_sequences, trajectory_line
from physar.lm.model import load_checkpoint
from physar.tokenizer.codec import encode_clip, load_tokenizer
from physar.video import read_video
from simulators.world import FRAME_DT


def write_trajectories(loaded: tuple, data_dir: str, out: Path, given_state: bool, limit: int | None,
                       batch_size: int = 16) -> int:
    """out/trajectories.jsonl (as `physar generate` writes it, without decoding any frames) from a
    loaded checkpoint (model, tok, lang, meta, DDT); returns the number of clips that failed to parse."""
    model, tok, lang, meta, ddt = loaded
    cond, total = meta["conditioning_frames"], meta["num_frames"]
    records = load_metadata(data_dir)[:limit]
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    with open(out / "trajectories.jsonl", "w") as log:
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            prompts = np.stack([encode_clip(ddt, read_video(Path(data_dir) / r["video"])[:cond]) for r in batch])
            prefixes = [lang.state_block(r, cond - 1) for r in batch] if given_state else None
            clips = generate_sequences(model, tok, lang, prompts, total - cond, cond, meta["max_objects"],
                                       seed=start, scenes=[r["scene"] for r in batch], prefixes=prefixes)
            for record, clip in zip(batch, clips):
                if isinstance(clip, str):
                    failed += 1
                    continue
                log.write(json.dumps(trajectory_line(record, clip)) + "\n")
    return failed


def exact_additions(folder: Path, decimals: int) -> float:
    """frame_displacement: the share of written positions that are the last written one (the
    <state> block's before the first frame) plus the written step, to the last digit."""
    hits = []
    for line in (folder / "trajectories.jsonl").read_text().splitlines():
        clip = json.loads(line)
        start = np.array([[o["x"], o["y"]] for o in clip["objects"]])
        positions = np.concatenate([start[None], np.asarray(clip["positions"])]) * 10**decimals
        steps = np.asarray(clip["velocities"]) * FRAME_DT * 10**decimals
        hits.append((np.rint(np.diff(positions, axis=0)) == np.rint(steps)).ravel())
    return float(np.concatenate(hits).mean()) if hits else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="symbolic LM checkpoints or run folders (physar sft --out)")
    parser.add_argument("--data", nargs="+", required=True, help="evaluation dataset folders (e.g. physar compare's OUT/data/*)")
    parser.add_argument("--limit", type=int, default=None, help="at most this many clips of each folder")
    parser.add_argument("--free-positions", action="store_true",
                        help="frame_displacement: let the model write each position (not held to last + step)")
    args = parser.parse_args()

    fmt = (lambda x: "-" if x is None else f"{x:.3f}")
    print("| checkpoint | scene | group | clips | vel. error, own reading | vel. error, given state | "
          "reading error: position / velocity | exact additions |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint in args.checkpoints:
            model, tok, lang, meta = load_checkpoint(checkpoint)
            if args.free_positions:
                lang.derived_positions = False
            loaded = (model, tok, lang, meta, load_tokenizer(meta["tokenizer"]))
            for data_dir in args.data:
                folders = {mode: Path(tmp) / mode for mode in ("own", "given")}  # rewritten for every pair
                failed = {mode: write_trajectories(loaded, data_dir, folder, mode == "given", args.limit)
                          for mode, folder in folders.items()}
                errors = {mode: symbolic_velocity_error(data_dir, folder) for mode, folder in folders.items()}
                reading = state_reading_error(data_dir, folders["own"])
                adds = f"{exact_additions(folders['own'], lang.decimals):.1%}" if lang.frame_displacement else "-"
                for scene in errors["own"]:
                    for group in ("in", "out"):
                        own, given = (errors[m][scene].get(group) for m in ("own", "given"))
                        if own is None:
                            continue
                        read = reading.get(scene, {}).get(group, {})
                        print(f"| `{checkpoint}` | {scene} | {group} | {own['n']} | {fmt(own['vel_error'])} | "
                              f"{fmt(given and given['vel_error'])} | {fmt(read.get('position'))} / "
                              f"{fmt(read.get('velocity'))} | {adds} |", flush=True)
                if any(failed.values()):
                    print(f"(`{checkpoint}` on {data_dir}: unparsed clips {failed})")


if __name__ == "__main__":
    main()
