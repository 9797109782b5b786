"""Did the LM make the balls collide? Its written trajectories against the simulator's, per clip.

Reads the symbolic trajectories a row wrote (`physar generate` / `physar compare`:
VIDEOS/trajectories.jsonl) beside the dataset's truth, and per bucket prints:
- jump: clips where the written velocities change by more than 0.5 units/s between two frames
  (the balls turn) at all;
- on time: of those, the first change within one frame of the simulator's collision frame;
- post error: mean |written - true| of both balls' x velocity after the collision (units/s, the
  last written frame against the simulator's last), over every clip, jump or not;
- elastic error: the same against the elastic velocities computed from the written pre-collision
  velocities and the written radii (masses r^2): whether the jump the LM wrote is the one its own
  reading implies, apart from what it read;
- elastic red / blue: clips where that ball's last written velocity is within 0.1 units/s of the
  elastic one (sft_cpu_v6 copied the reversed relative step's digits for the red ball and not for
  the blue: docs/results_v10.md).

    python benchmarks/collision_jumps.py outputs/compare_v2/data/collision \\
        outputs/compare_v2/acceleration-parsed-drawn/videos/collision [more rows' folders...]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from physar.data.generate import load_metadata
from physar.rl.rewards import elastic_velocities, finite_velocities
from simulators.world import FRAME_DT

TURN = 0.5  # units/s: a change of velocity between frames that counts as a collision
ELASTIC = 0.1  # units/s: a ball's outgoing velocity this close to the elastic one counts as elastic


def clip_row(record: dict, written: dict) -> dict:
    cond = record["conditioning_frames"]
    positions = np.asarray(written["positions"], dtype=float)  # [F, N, 2], frames cond ...
    start = np.array([[o["x"], o["y"]] for o in written["objects"]])
    vx = finite_velocities(np.r_[start[None], positions], FRAME_DT)[..., 0]  # [F, N]
    true_vx = np.asarray(record["velocities"], dtype=float)[cond:, :, 0]
    turns = np.flatnonzero(np.abs(np.diff(vx, axis=0)).max(axis=1) > TURN) + 1
    true_frame = record["collisions"][0][0] - cond if record["collisions"] else None
    m = np.array([o["r"] for o in written["objects"]]) ** 2
    elastic = np.array(elastic_velocities(vx[0, 0], vx[0, 1], m[0], m[1]))
    return {"bucket": record["bucket"], "jump": len(turns) > 0,
            "on_time": len(turns) > 0 and true_frame is not None and abs(turns[0] - true_frame) <= 1,
            "post_error": float(np.abs(vx[-1] - true_vx[-1]).mean()),
            "elastic_error": float(np.abs(vx[-1] - elastic).mean()),
            "elastic_hit": (np.abs(vx[-1] - elastic) < ELASTIC).tolist()}


def table(rows: list[dict]) -> str:
    lines = ["| bucket | clips | jump | on time | post error (units/s) | elastic error (units/s) | elastic red | elastic blue |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for bucket in ["in", "r_out", "v_out", "rv_out", "zero", "all"]:
        part = [r for r in rows if bucket in ("all", r["bucket"])]
        if part:
            lines.append(f"| {bucket} | {len(part)} | {sum(r['jump'] for r in part)} | {sum(r['on_time'] for r in part)} "
                         f"| {np.mean([r['post_error'] for r in part]):.3f} "
                         f"| {np.mean([r['elastic_error'] for r in part]):.3f} "
                         f"| {sum(r['elastic_hit'][0] for r in part)} | {sum(r['elastic_hit'][1] for r in part)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("data", help="the collision dataset the rows continued (its metadata holds the truth)")
    parser.add_argument("rows", nargs="+", help="folders holding a row's trajectories.jsonl")
    args = parser.parse_args()
    truth = {r["video"]: r for r in load_metadata(Path(args.data))}
    for folder in args.rows:
        written = [json.loads(line) for line in (Path(folder) / "trajectories.jsonl").read_text().splitlines()]
        rows = [clip_row(truth[w["video"]], w) for w in written if w["video"] in truth]
        print(f"\n{folder} ({len(rows)} clips)\n\n{table(rows)}")


if __name__ == "__main__":
    main()
