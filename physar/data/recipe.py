"""Dataset recipes: which scene, which parameters for training and for ID/OOD evaluation.

A recipe is a YAML file (see `datasets/*.yaml`):

    scene: uniform                       # one of simulators.scenes.SCENES
    frames: 32                           # frames per clip (default 32)
    conditioning_frames: 3               # default 3
    resolution: 64                       # default frame size in pixels (square)
    seed: 0                              # default seed
    id_box: {r: [0.7, 1.4], v: [1.0, 4.0]}   # the training ranges: decide a clip's bucket
    train:
      grid: {r: {linspace: [0.7, 1.4, 100]}, v: {linspace: [1.0, 4.0, 300]}}   # every combination
      # or sample: {count: 10000, params: {...}}                               # random draws
    eval:
      - {name: in, bucket: in, count: 300, params: {r: {uniform: [0.7, 1.4]}, v: {uniform: [1.0, 4.0]}}}

A parameter is a number, `{uniform: [lo, hi]}` or a union `{uniform: [[lo, hi], [lo, hi]]}`
(drawn in proportion to length), or `{choice: [a, b, ...]}`. Training grid axes may also be
`{linspace: [lo, hi, n]}` or `{random: [lo, hi, n]}` (n sorted uniform draws, fixed by the
recipe's seed, as PhyWorld's parabola grid). Buckets follow PhyWorld: `in`, `r_out`, `v_out`,
`rv_out`, `zero`. Every mistake is a RecipeError of one line that names the file and the key.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from simulators.scenes import SCENES
from simulators.world import CONDITIONING_FRAMES, NUM_FRAMES, WORLD_SIZE

BUCKETS = ("in", "r_out", "v_out", "rv_out", "zero")
SPLITS = ("train", "eval")
SPLIT_CODES = {"train": 0, "eval": 1}  # part of every clip's random seed
RADIUS_KEYS = {"r", "r1", "r2", "r_min", "r_max"}
SPEED_KEYS = {"v", "v1", "v2", "v_min", "v_max"}
MAX_RADIUS = WORLD_SIZE / 4
MIN_RESOLUTION = 16
TOP_KEYS = ("scene", "description", "frames", "conditioning_frames", "resolution", "seed", "id_box", "train", "eval")
_EDGE = 1e-9  # grid values such as linspace's 1.4000000000000001 still count as inside the box


class RecipeError(ValueError):
    """A recipe (or a request made of it) that cannot be honoured; the message is one line."""


@dataclass(frozen=True)
class Distribution:
    """One parameter: a constant, a uniform draw over one or more intervals, or a choice."""

    kind: str  # value | uniform | choice | linspace | random
    args: tuple

    def sample(self, rng: np.random.Generator) -> Any:
        if self.kind == "value":
            return self.args[0]
        if self.kind == "choice":
            return self.args[int(rng.integers(len(self.args)))]
        if self.kind == "uniform":
            lengths = np.array([hi - lo for lo, hi in self.args])
            k = 0 if len(self.args) == 1 else int(rng.choice(len(self.args), p=lengths / lengths.sum()))
            lo, hi = self.args[k]
            return float(rng.uniform(lo, hi))
        raise ValueError(f"{self.kind} is a grid axis, not a distribution to sample")

    def grid_values(self, seed: int, name: str) -> list:
        """The values of a training grid axis."""
        if self.kind == "value":
            return [self.args[0]]
        if self.kind == "choice":
            return list(self.args)
        lo, hi, n = self.args
        if self.kind == "linspace":
            return [round(float(x), 12) for x in np.linspace(lo, hi, n)]
        # random: fixed by the recipe's seed and the axis name, so the grid is part of the recipe
        axis_seed = int(hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()[:8], 16)
        return sorted(float(x) for x in np.random.default_rng(axis_seed).uniform(lo, hi, n))

    def support(self) -> list[float]:
        """The numbers that bound this parameter (for range checks)."""
        if self.kind in ("value", "choice"):
            return list(self.args)
        if self.kind == "uniform":
            return [x for interval in self.args for x in interval]
        return [self.args[0], self.args[1]]


@dataclass(frozen=True)
class EvalSet:
    name: str
    bucket: str
    count: int
    params: dict[str, Distribution]


@dataclass(frozen=True)
class Recipe:
    path: str
    scene: str
    description: str
    frames: int
    conditioning_frames: int
    resolution: int
    seed: int
    id_box: dict[str, tuple[float, float]]
    eval_sets: tuple[EvalSet, ...]
    train_grid: dict[str, Distribution] | None = None
    train_sample: EvalSet | None = None  # `train: sample:` as one unbucketed set
    raw: dict = field(default_factory=dict, compare=False, repr=False)

    def train_size(self) -> int:
        if self.train_grid is not None:
            return math.prod(len(d.grid_values(self.seed, k)) for k, d in self.train_grid.items())
        return self.train_sample.count

    def eval_size(self) -> int:
        return sum(s.count for s in self.eval_sets)

    def fingerprint(self) -> str:
        """A hash of the recipe's content: a dataset folder remembers which recipe made it."""
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ClipPlan:
    """What one clip will be: its index in the split, and either fixed parameters (a training
    grid point) or the set whose distributions it draws from."""

    index: int
    set_name: str
    bucket: str | None  # the declared bucket of an eval set; None for training clips
    params: dict | None = None  # fixed parameters, or None: draw from the set


def classify(speeds, radii, id_box: dict) -> str:
    """PhyWorld's bucket of a clip from its balls' initial speeds and radii."""
    if any(abs(v) <= 1e-12 for v in speeds):
        return "zero"
    (rlo, rhi), (vlo, vhi) = id_box["r"], id_box["v"]
    r_out = any(not rlo - _EDGE <= r <= rhi + _EDGE for r in radii)
    v_out = any(not vlo - _EDGE <= v <= vhi + _EDGE for v in speeds)
    return {(False, False): "in", (True, False): "r_out", (False, True): "v_out", (True, True): "rv_out"}[(r_out, v_out)]


# --- parsing -------------------------------------------------------------------------------

class _Checker:
    """Raises RecipeError('<file>: <key>: <problem>')."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, key: str, problem: str):
        raise RecipeError(f"{self.path}: {key}: {problem}" if key else f"{self.path}: {problem}")

    def number(self, key: str, x) -> float:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            self.fail(key, f"expected a number, got {x!r}")
        return x

    def integer(self, key: str, x, minimum: int, what: str = "") -> int:
        if isinstance(x, bool) or not isinstance(x, int) or x < minimum:
            self.fail(key, what or f"expected an integer >= {minimum}, got {x!r}")
        return x

    def interval(self, key: str, pair) -> tuple[float, float]:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            self.fail(key, f"expected [lo, hi], got {pair!r}")
        lo, hi = (self.number(key, x) for x in pair)
        if lo > hi:
            self.fail(key, f"reversed range [{lo:g}, {hi:g}]")
        return float(lo), float(hi)

    def distribution(self, key: str, spec, grid: bool) -> Distribution:
        if not isinstance(spec, dict):
            return Distribution("value", (self.number(key, spec),))
        if len(spec) != 1:
            self.fail(key, f"expected a number or one of {{uniform, choice, linspace, random}}, got {spec!r}")
        (kind, arg), = spec.items()
        if kind not in ("uniform", "choice", "linspace", "random"):
            self.fail(key, f"unknown distribution {kind!r}")
        if kind in ("linspace", "random") and not grid:
            self.fail(key, f"{kind} is a grid axis: only under train.grid")
        if kind == "uniform" and grid:
            self.fail(key, "uniform draws are for eval and train.sample; a grid axis takes linspace, random or choice")
        if not isinstance(arg, list) or not arg:
            self.fail(key, f"{kind} expects a non-empty list, got {arg!r}")
        if kind == "choice":
            return Distribution("choice", tuple(self.number(key, x) for x in arg))
        if kind == "uniform":
            intervals = arg if isinstance(arg[0], (list, tuple)) else [arg]
            return Distribution("uniform", tuple(self.interval(key, i) for i in intervals))
        if len(arg) != 3:
            self.fail(key, f"{kind} expects [lo, hi, n], got {arg!r}")
        lo, hi = self.interval(key, arg[:2])
        n = self.integer(key, arg[2], 1, f"{kind} needs n >= 1, got {arg[2]!r}")
        return Distribution(kind, (lo, hi, n))

    def params(self, key: str, spec, scene: str, grid: bool) -> dict[str, Distribution]:
        if not isinstance(spec, dict):
            self.fail(key, f"expected a mapping of parameters, got {spec!r}")
        expected = SCENES[scene].params
        missing = [p for p in expected if p not in spec]
        unknown = [p for p in spec if p not in expected]
        if missing or unknown:
            parts = ([f"missing {', '.join(missing)}"] if missing else []) + ([f"unknown {', '.join(unknown)}"] if unknown else [])
            self.fail(key, f"{'; '.join(parts)} (scene {scene} takes {', '.join(expected)})")
        out = {p: self.distribution(f"{key}.{p}", spec[p], grid) for p in expected}
        for p, d in out.items():
            values = d.support()
            if p in RADIUS_KEYS and min(values) <= 0:
                self.fail(f"{key}.{p}", f"a radius must be positive, got {min(values):g}")
            if p in RADIUS_KEYS and max(values) > MAX_RADIUS:
                self.fail(f"{key}.{p}", f"radius {max(values):g} is too large for the {WORLD_SIZE:g}-unit world (max {MAX_RADIUS:g})")
            if p in SPEED_KEYS and min(values) < 0:
                self.fail(f"{key}.{p}", f"a speed cannot be negative, got {min(values):g} (directions are set by the scene)")
            if p == "n" and any(v != int(v) or v < 1 for v in values):
                self.fail(f"{key}.{p}", f"the number of balls must be a whole number >= 1, got {values}")
        for low, high in (("r_min", "r_max"), ("v_min", "v_max")):
            if low in out and min(out[low].support()) > max(out[high].support()):
                self.fail(key, f"{low} is above {high}: reversed range")
        if "n" in out:  # keep ball counts integral in metadata
            d = out["n"]
            out["n"] = Distribution(d.kind, tuple(int(v) for v in d.args))
        return out

    def eval_set(self, key: str, spec, scene: str) -> EvalSet:
        if not isinstance(spec, dict):
            self.fail(key, f"expected a mapping with bucket, count, params; got {spec!r}")
        unknown = set(spec) - {"name", "bucket", "count", "params"}
        if unknown:
            self.fail(key, f"unknown key {', '.join(sorted(unknown))}")
        bucket = spec.get("bucket")
        if bucket not in BUCKETS:
            self.fail(f"{key}.bucket", f"{bucket!r} is not a bucket; expected one of {', '.join(BUCKETS)}")
        count = self.integer(f"{key}.count", spec.get("count"), 1)
        name = str(spec.get("name", bucket))
        return EvalSet(name, bucket, count, self.params(f"{key}.params", spec.get("params"), scene, grid=False))


def parse_recipe(data: Any, path: str | Path = "<recipe>") -> Recipe:
    """Check a recipe's content and build a Recipe; every problem is a one-line RecipeError."""
    check = _Checker(str(path))
    if not isinstance(data, dict):
        check.fail("", f"a recipe is a mapping of keys (scene, id_box, train, eval, ...), got {type(data).__name__}")
    unknown = [k for k in data if k not in TOP_KEYS]
    if unknown:
        check.fail("", f"unknown key {', '.join(map(str, unknown))}; known keys: {', '.join(TOP_KEYS)}")
    scene = data.get("scene")
    if scene not in SCENES:
        check.fail("scene", f"unknown scene {scene!r}; known scenes: {', '.join(SCENES)}")
    frames = check.integer("frames", data.get("frames", NUM_FRAMES), 1, f"must be an integer, got {data.get('frames')!r}")
    cond = check.integer("conditioning_frames", data.get("conditioning_frames", CONDITIONING_FRAMES), 1)
    if frames < cond + 2:
        check.fail("frames", f"frames ({frames}) must exceed conditioning_frames ({cond}) by at least 2")
    resolution = check.integer("resolution", data.get("resolution", 64), MIN_RESOLUTION,
                               f"must be an integer >= {MIN_RESOLUTION} pixels, got {data.get('resolution')!r}")
    seed = check.integer("seed", data.get("seed", 0), 0, f"must be a non-negative integer, got {data.get('seed')!r}")

    box = data.get("id_box")
    if not isinstance(box, dict) or set(box) != {"r", "v"}:
        check.fail("id_box", f"expected {{r: [lo, hi], v: [lo, hi]}} (the training ranges), got {box!r}")
    id_box = {k: check.interval(f"id_box.{k}", box[k]) for k in ("r", "v")}

    train = data.get("train")
    if not isinstance(train, dict) or len(train) != 1 or next(iter(train)) not in ("grid", "sample"):
        check.fail("train", f"expected exactly one of grid: {{...}} or sample: {{count, params}}, got {train!r}")
    grid = sample = None
    if "grid" in train:
        grid = check.params("train.grid", train["grid"], scene, grid=True)
    else:
        spec = train["sample"]
        if not isinstance(spec, dict) or set(spec) != {"count", "params"}:
            check.fail("train.sample", f"expected {{count, params}}, got {spec!r}")
        sample = EvalSet("train", "in", check.integer("train.sample.count", spec["count"], 1),
                         check.params("train.sample.params", spec["params"], scene, grid=False))

    sets = data.get("eval")
    if not isinstance(sets, list) or not sets:
        check.fail("eval", "expected a non-empty list of evaluation sets")
    eval_sets = tuple(check.eval_set(f"eval[{i}]", s, scene) for i, s in enumerate(sets))
    names = [s.name for s in eval_sets]
    if len(set(names)) != len(names):
        check.fail("eval", f"set names must be unique, got {names}")
    return Recipe(str(path), scene, str(data.get("description", "")), frames, cond, resolution, seed, id_box,
                  eval_sets, grid, sample, raw=data)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: no such recipe file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise RecipeError(f"{path}: not valid YAML{at} ({getattr(e, 'problem', None) or 'parse error'})") from None
    return parse_recipe(data, path)


# --- plans ---------------------------------------------------------------------------------

def plan_clips(recipe: Recipe, split: str, count: int | None = None, seed: int | None = None) -> list[ClipPlan]:
    """The clips of a split, indexed 0..n-1.

    train: the whole grid, or with `count` a seeded subset of it (in grid order); a sampled
    train set gives `count` draws. eval: every set, or with `count` every set shrunk in
    proportion (at least one clip each).
    """
    if split not in SPLITS:
        raise RecipeError(f"{recipe.path}: split must be one of {', '.join(SPLITS)}, got {split!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise RecipeError(f"{recipe.path}: count must be an integer >= 1, got {count!r}")
    seed = recipe.seed if seed is None else seed
    if split == "eval":
        total = recipe.eval_size()
        plans: list[ClipPlan] = []
        for s in recipe.eval_sets:
            n = s.count if count is None else max(1, round(count * s.count / total))
            plans += [ClipPlan(len(plans) + i, s.name, s.bucket) for i in range(n)]
        return plans
    if recipe.train_sample is not None:
        n = recipe.train_sample.count if count is None else min(count, recipe.train_sample.count)
        return [ClipPlan(i, "train", None) for i in range(n)]
    axes = {k: d.grid_values(recipe.seed, k) for k, d in recipe.train_grid.items()}
    points = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    if count is not None and count < len(points):
        rng = np.random.default_rng([seed, SPLIT_CODES["train"], 2**31 - 1])  # the subset's own stream
        points = [points[i] for i in sorted(rng.choice(len(points), size=count, replace=False))]
    return [ClipPlan(i, "train", None, p) for i, p in enumerate(points)]


def clip_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Clip `index`'s own random stream: one seed gives one clip, in any order or process."""
    return np.random.default_rng([seed, SPLIT_CODES[split], index])
