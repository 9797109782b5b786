"""Generate one split of a recipe: simulate, render, write lossless videos and metadata.

The folder it writes:

    dataset.json          settings, status ("running" | "complete"), clip and bucket counts
    metadata.jsonl        one line per clip (written last: its presence means the set is whole)
    videos/s0000/000000.mp4, ...   shards of clips; a shard being written is hidden as
                                   videos/.s0000.partial and renamed when finished
    .shards/s0000.json    the records of each finished shard (what a resumed run keeps)

Clip i draws its randomness from (seed, split, i) alone, so the data do not depend on the
number of workers or on the order in which shards finish. A killed run is resumed by running
the same command again: finished shards are kept, half-written ones are redone.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import shutil
from pathlib import Path

import numpy as np

from physar.data.recipe import (MIN_RESOLUTION, ClipPlan, Recipe, RecipeError, classify, clip_rng, load_recipe,
                                plan_clips)
from physar.video import write_video
from simulators.render import render
from simulators.scenes import PlacementError, get_scene, initial_speeds_and_radii
from simulators.trajectory import Trajectory
from simulators.world import FRAME_DT

MAX_DRAWS = 1000  # redraws of a sampled clip whose parameters admit no placement
SETTINGS = ("recipe", "recipe_fingerprint", "split", "count", "resolution", "seed")


class GenerationError(RuntimeError):
    """The output folder cannot take this run (another dataset, other settings)."""


def shard_size_for(num_clips: int) -> int:
    """Clips per shard: about 64 shards, between 16 and 1000 clips each."""
    return min(1000, max(16, math.ceil(num_clips / 64)))


def simulate_clip(recipe: Recipe, plan: ClipPlan, split: str, seed: int) -> tuple[Trajectory, str]:
    """Simulate one planned clip; returns its trajectory and its PhyWorld bucket.

    A training grid point that admits no placement raises PlacementError (the point is
    dropped, as PhyWorld drops it). A sampled clip redraws its parameters until they place;
    a set that never places, or draws outside its declared bucket, is a RecipeError.
    """
    scene = get_scene(recipe.scene)
    rng = clip_rng(seed, split, plan.index)
    if plan.params is not None:
        traj = scene.simulate(dict(plan.params), rng, recipe.frames)
    else:
        dists = recipe.train_sample.params if plan.set_name == "train" and split == "train" else \
            next(s for s in recipe.eval_sets if s.name == plan.set_name).params
        for _ in range(MAX_DRAWS):
            params = {k: d.sample(rng) for k, d in dists.items()}
            try:
                traj = scene.simulate(params, rng, recipe.frames)
                break
            except PlacementError as e:
                reason = str(e)
        else:
            raise RecipeError(f"{recipe.path}: set {plan.set_name!r}: no feasible placement in {MAX_DRAWS} draws "
                              f"(last: {reason})")
    bucket = classify(*initial_speeds_and_radii(recipe.scene, traj.params, traj), recipe.id_box)
    if plan.bucket is not None and bucket != plan.bucket:
        raise RecipeError(f"{recipe.path}: set {plan.set_name!r} declares bucket {plan.bucket!r} but drew a clip in "
                          f"{bucket!r} (params {traj.params}); fix its ranges or its bucket")
    return traj, bucket


def clip_record(traj: Trajectory, plan: ClipPlan, bucket: str, video: str, split: str, seed: int,
                resolution: int, conditioning_frames: int) -> dict:
    """One line of metadata.jsonl."""
    return {
        "index": plan.index, "video": video, "scene": traj.scene, "split": split, "set": plan.set_name,
        "bucket": bucket, "seed": seed, "params": traj.params, "resolution": resolution,
        "num_frames": traj.num_frames, "conditioning_frames": conditioning_frames, "frame_dt": FRAME_DT,
        "positions": traj.positions.tolist(), "velocities": traj.velocities.tolist(),
        "radii": traj.radii.tolist(), "masses": traj.masses.tolist(), "colors": traj.colors.tolist(),
        "collisions": [list(c) for c in traj.collisions],
    }


def _write_shard(job: tuple) -> int:
    """Simulate, render and write one shard; visible only once whole. Returns its clip count."""
    recipe, split, seed, resolution, out, shard, plans = job
    name = f"s{shard:04d}"
    final, partial = out / "videos" / name, out / "videos" / f".{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(final, ignore_errors=True)  # renamed but not recorded: redo
    partial.mkdir(parents=True)
    records, dropped = [], []
    for plan in plans:
        try:
            traj, bucket = simulate_clip(recipe, plan, split, seed)
        except PlacementError as e:
            dropped.append({"index": plan.index, "params": plan.params, "reason": str(e)})
            continue
        video = f"{plan.index:06d}.mp4"
        write_video(partial / video, render(traj, resolution))
        records.append(clip_record(traj, plan, bucket, f"videos/{name}/{video}", split, seed, resolution,
                                   recipe.conditioning_frames))
    os.replace(partial, final)
    _write_json(out / ".shards" / f"{name}.json", {"records": records, "dropped": dropped})
    return len(plans)


def _write_json(path: Path, data, indent=None) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=indent))
    os.replace(tmp, path)


def _check_folder(out: Path, settings: dict) -> None:
    """The folder is new, empty, or an earlier run of exactly these settings."""
    info_path = out / "dataset.json"
    if not out.exists():
        return
    if not out.is_dir():
        raise GenerationError(f"{out}: exists and is not a folder")
    if not info_path.is_file():
        if any(out.iterdir()):
            raise GenerationError(f"{out}: folder is not empty and holds no dataset; choose another --out")
        return
    try:
        old = json.loads(info_path.read_text())["settings"]
    except (ValueError, KeyError):
        raise GenerationError(f"{info_path}: unreadable; delete the folder or choose another --out") from None
    diff = [k for k in SETTINGS if old.get(k) != settings[k]]
    if diff:
        shown = ["recipe" if k == "recipe_fingerprint" else k for k in diff]
        details = ", ".join(f"{k}: {old.get(k)!r} -> {settings[k]!r}" for k in diff if k != "recipe_fingerprint")
        raise GenerationError(f"{out}: holds a dataset made with other settings ({', '.join(dict.fromkeys(shown))}"
                              f"{'; ' + details if details else ''}); choose another --out or delete it")


def generate(recipe: str | Path | Recipe, split: str, out: str | Path, count: int | None = None,
             resolution: int | None = None, seed: int | None = None, workers: int = 2,
             progress: bool = True) -> dict:
    """Write one split of `recipe` to `out`; returns the content of dataset.json."""
    from tqdm import tqdm

    recipe = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    resolution = recipe.resolution if resolution is None else resolution
    seed = recipe.seed if seed is None else seed
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < MIN_RESOLUTION:
        raise RecipeError(f"{recipe.path}: resolution must be an integer >= {MIN_RESOLUTION} pixels, got {resolution!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise RecipeError(f"workers must be an integer >= 1, got {workers!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise RecipeError(f"seed must be a non-negative integer, got {seed!r}")
    plans = plan_clips(recipe, split, count, seed)  # checks split and count
    out = Path(out)
    settings = {"recipe": Path(recipe.path).name, "recipe_fingerprint": recipe.fingerprint(), "split": split,
                "count": count, "resolution": resolution, "seed": seed}
    _check_folder(out, settings)

    size = shard_size_for(len(plans))
    shards = [plans[i:i + size] for i in range(0, len(plans), size)]
    info = {"status": "running", "settings": settings, "scene": recipe.scene, "split": split, "count": count,
            "resolution": resolution, "seed": seed, "recipe_path": str(recipe.path), "id_box": recipe.id_box,
            "num_frames": recipe.frames, "conditioning_frames": recipe.conditioning_frames,
            "planned_clips": len(plans), "shard_size": size, "num_shards": len(shards)}
    (out / "videos").mkdir(parents=True, exist_ok=True)
    (out / ".shards").mkdir(exist_ok=True)
    if not (out / "dataset.json").is_file() or json.loads((out / "dataset.json").read_text())["status"] != "complete":
        _write_json(out / "dataset.json", info, indent=1)

    todo = [k for k in range(len(shards)) if not (out / ".shards" / f"s{k:04d}.json").is_file()
            or not (out / "videos" / f"s{k:04d}").is_dir()]
    jobs = [(recipe, split, seed, resolution, out, k, shards[k]) for k in todo]
    with tqdm(total=len(plans), initial=len(plans) - sum(len(shards[k]) for k in todo), unit="clip",
              desc=f"{recipe.scene} {split}", disable=not progress) as bar:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                bar.update(_write_shard(job))
        else:
            # fork: workers inherit the imported modules, no re-import per process
            with multiprocessing.get_context("fork").Pool(min(workers, len(jobs))) as pool:
                for n in pool.imap_unordered(_write_shard, jobs):
                    bar.update(n)

    records, dropped = [], []
    for k in range(len(shards)):
        shard = json.loads((out / ".shards" / f"s{k:04d}.json").read_text())
        records += shard["records"]
        dropped += shard["dropped"]
    tmp = out / ".metadata.jsonl.tmp"
    with open(tmp, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    os.replace(tmp, out / "metadata.jsonl")
    buckets: dict[str, int] = {}
    for r in records:
        buckets[r["bucket"]] = buckets.get(r["bucket"], 0) + 1
    info.update(status="complete", num_clips=len(records), num_dropped=len(dropped), dropped=dropped,
                buckets=buckets)
    _write_json(out / "dataset.json", info, indent=1)
    return info


def load_metadata(root: str | Path) -> list[dict]:
    """The records of a generated dataset folder, in clip order."""
    path = Path(root) / "metadata.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{root}: no metadata.jsonl (not a dataset folder, or its generation has not finished)")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def trajectory_of(record: dict) -> Trajectory:
    """A metadata record back as a Trajectory."""
    return Trajectory(record["scene"], record["params"], np.asarray(record["positions"]),
                      np.asarray(record["velocities"]), np.asarray(record["radii"]), np.asarray(record["masses"]),
                      np.asarray(record["colors"], dtype=np.uint8), [tuple(c) for c in record["collisions"]])
