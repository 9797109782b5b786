"""Shared helpers: recipe paths, cached simulated trajectories, one small generated dataset."""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT / "datasets"
SEED = 0
TRAIN_COUNT = 200


def recipe_path(name: str) -> Path:
    return DATASETS / f"{name}.yaml"


@functools.lru_cache(maxsize=None)
def load(name: str):
    from physar.data.recipe import load_recipe

    return load_recipe(recipe_path(name))


@functools.lru_cache(maxsize=None)
def trajectories(name: str, split: str, seed: int = SEED) -> tuple:
    """(plan, trajectory, bucket) for every clip of a split (train: TRAIN_COUNT of them);
    grid points that admit no placement are left out."""
    from physar.data.generate import simulate_clip
    from physar.data.recipe import plan_clips
    from simulators.scenes import PlacementError

    recipe = load(name)
    plans = plan_clips(recipe, split, TRAIN_COUNT if split == "train" else None, seed)
    out = []
    for plan in plans:
        try:
            traj, bucket = simulate_clip(recipe, plan, split, seed)
        except PlacementError:  # a training grid point that admits no placement (dropped)
            assert split == "train"
            continue
        out.append((plan, traj, bucket))
    return tuple(out)


def all_trajectories(name: str) -> list:
    """Eval (ID and OOD) and train clips of a recipe."""
    return [t for split in ("eval", "train") for _, t, _ in trajectories(name, split)]


UNIFORM_EVAL_COUNT = 40


@pytest.fixture(scope="session")
def uniform_eval_dataset(tmp_path_factory) -> Path:
    """A small generated uniform eval set (read-only: copy it before changing anything)."""
    from physar.data.generate import generate

    out = tmp_path_factory.mktemp("uniform_eval") / "data"
    generate(recipe_path("uniform"), "eval", out, count=UNIFORM_EVAL_COUNT, workers=2, progress=False)
    return out


@pytest.fixture
def uniform_eval_copy(uniform_eval_dataset, tmp_path) -> Path:
    """A private copy of the generated uniform eval set."""
    dst = tmp_path / "data"
    shutil.copytree(uniform_eval_dataset, dst)
    return dst
