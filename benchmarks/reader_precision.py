"""How precisely the <state> block is read from the conditioning frames: PhyWorld's threshold
centroid (the evaluator's parser) against the renderer's disc fitted to the pixels
(physar/evaluation/disc_fit.py), frame by frame and jointly, and `physar.lm.frame_reading.read_state`'s
reading (the joint fit along a row in the scenes that move along one), per scene and bucket.

Simulates the evaluation clips of each recipe (`physar compare`'s: eval split, seed 0, the first
--count of them), renders the conditioning frames and reads them both ways; prints medians against
the simulator's state at the last conditioning frame: position (units), velocity (units/s; the
largest component error of any ball; median and 95th percentile) and radius (units). The parabola's recorded velocity is
pymunk's, which even an exact reading of the mean step misses by about 0.013 units/s.

    python benchmarks/reader_precision.py [--count 60] [--resolution 64]
"""

from __future__ import annotations

import argparse

import numpy as np

from physar.data.generate import simulate_clip
from physar.data.recipe import load_recipe, plan_clips
from physar.evaluation import disc_fit, parse
from physar.lm.frame_reading import read_state
from physar.lm.assess import EVALUATION_SEED
from simulators.render import render

READERS = {"threshold centroid": lambda frames, colors, gravity: parse.parse_frames(frames, colors),
           "disc fit": lambda frames, colors, gravity: disc_fit.fit_frames(frames, colors),
           "joint fit": disc_fit.fit_tracks,
           "read_state (joint, along a row in uniform and collision)": None}


def read_errors(recipe_path: str, count: int, resolution: int) -> dict:
    """{(bucket, reader): [(position, velocity, radius) error per clip]}; clips with a ball at the border are left out."""
    recipe = load_recipe(recipe_path)
    cond = recipe.conditioning_frames
    out: dict = {}
    for plan in plan_clips(recipe, "eval", count, EVALUATION_SEED):
        traj, bucket = simulate_clip(recipe, plan, "eval", EVALUATION_SEED)
        frames = render(traj, resolution)[:cond]
        for name, reader in READERS.items():
            state = read_state(frames, recipe.scene, reader)
            if state is None:
                continue
            for key in (bucket, "all"):
                out.setdefault((key, name), []).append((
                    np.abs(np.asarray(state["positions"][-1]) - traj.positions[cond - 1]).max(),
                    np.abs(np.asarray(state["velocities"][-1]) - traj.velocities[cond - 1]).max(),
                    np.abs(np.asarray(state["radii"]) - traj.radii).max()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", nargs="+", default=["datasets/uniform.yaml", "datasets/collision.yaml",
                                                    "datasets/parabola.yaml"], help="Recipes whose eval clips are read.")
    ap.add_argument("--count", type=int, default=60, help="Evaluation clips per recipe (ID and OOD in proportion).")
    ap.add_argument("--resolution", type=int, default=64, help="Frame size in pixels.")
    args = ap.parse_args()
    print("| scene | bucket | n | reader | position | velocity | velocity p95 | radius |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for path in args.recipe:
        scene = load_recipe(path).scene
        errors = read_errors(path, args.count, args.resolution)
        for (bucket, name), rows in sorted(errors.items(), key=lambda kv: (kv[0][0] != "all", kv[0])):
            med, p95 = np.median(np.array(rows), axis=0), np.percentile(np.array(rows)[:, 1], 95)
            print(f"| {scene} | {bucket} | {len(rows)} | {name} | {med[0]:.5f} | {med[1]:.5f} | {p95:.5f} | {med[2]:.5f} |")


if __name__ == "__main__":
    main()
