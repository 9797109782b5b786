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


# --- the LM stages at a tiny size (32 px, K = 4, a 48-code FSQ, a 2-layer Llama) -----------------

DDT = dict(resolution=32, num_tokens=4, fsq_levels=[4, 4, 3], encoder_channels=[8, 16], encoder_dim=32,
           encoder_layers=1, encoder_heads=2, context_dim=32, unet_channels=[8, 16], unet_cross_attention_levels=1,
           unet_head_dim=8)


def tiny_lm(data, tokenizer, **kw):
    from physar.lm.config import LMConfig

    settings = dict(data=[str(d) for d in data], tokenizer=str(tokenizer), eval_clips=4, hidden_size=32, num_layers=2,
                    num_heads=2, intermediate_size=64, max_length=768, batch_size=4, learning_rate=3e-3,
                    warmup_steps=2, steps=24, eval_every=12, save_every=12)
    return LMConfig(**{**settings, **kw})


@pytest.fixture(scope="session")
def tokenized(tmp_path_factory):
    """Two small 32 px datasets encoded by an (untrained, deterministic) tiny DDT tokenizer."""
    import torch

    from physar.data.generate import generate
    from physar.tokenizer.codec import encode_dataset
    from physar.tokenizer.config import TokenizerConfig
    from physar.tokenizer.model import DDTTokenizer

    root = tmp_path_factory.mktemp("lm")
    torch.manual_seed(0)
    DDTTokenizer(TokenizerConfig(**DDT)).save_pretrained(root / "ddt")
    # seed 1: not the evaluation sets (seed 0), so they may serve as RL prompts too
    generate(recipe_path("uniform"), "eval", root / "uniform", count=12, resolution=32, seed=1, progress=False)
    generate(recipe_path("collision"), "eval", root / "collision", count=12, resolution=32, seed=1, progress=False)
    for name in ("uniform", "collision"):
        encode_dataset(root / name, root / "ddt", progress=False)
    return root


@pytest.fixture(scope="session")
def sft_run(tokenized, tmp_path_factory):
    from physar.lm.sft import train_sft

    run = tmp_path_factory.mktemp("sft") / "run"
    info = train_sft(tiny_lm([tokenized / "uniform", tokenized / "collision"], tokenized / "ddt"), run, progress=False)
    return run, info


