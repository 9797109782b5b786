"""Recipes: loading, checking (one-line RecipeError naming the problem), buckets and plans."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import yaml
from conftest import DATASETS, SEED, load, recipe_path

from physar.data.generate import simulate_clip
from physar.data.recipe import BUCKETS, RecipeError, classify, load_recipe, parse_recipe, plan_clips
from simulators.scenes import SCENES

ALL_RECIPES = sorted(p.stem for p in DATASETS.glob("*.yaml"))


def raw(name="uniform"):
    return yaml.safe_load(recipe_path(name).read_text())


def write(tmp_path, data, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_all_shipped_recipes_are_found():
    assert {"uniform", "collision", "parabola", "box"} <= set(ALL_RECIPES)


@pytest.mark.parametrize("name", ALL_RECIPES)
def test_every_recipe_loads_and_plans(name):
    recipe = load_recipe(recipe_path(name))
    assert recipe.scene in SCENES
    assert recipe.frames >= recipe.conditioning_frames + 2
    assert recipe.resolution >= 16
    assert recipe.train_size() > 0 and recipe.eval_size() > 0
    assert {s.bucket for s in recipe.eval_sets} <= set(BUCKETS)
    assert all(set(s.params) == set(SCENES[recipe.scene].params) for s in recipe.eval_sets)
    plans = plan_clips(recipe, "eval")
    assert len(plans) == recipe.eval_size()
    assert [p.index for p in plans] == list(range(len(plans)))
    # the first clip of every eval set lands in its declared bucket
    seen = set()
    for plan in plans:
        if plan.set_name not in seen:
            seen.add(plan.set_name)
            _, bucket = simulate_clip(recipe, plan, "eval", SEED)
            assert bucket == plan.bucket


# Each case: (what to change in uniform.yaml, text the message must contain)
def _set(path, value):
    def change(d):
        *keys, last = path
        for k in keys:
            d = d[k]
        d[last] = value
    return change


def _delete(path):
    def change(d):
        *keys, last = path
        for k in keys:
            d = d[k]
        del d[last]
    return change


BAD = {
    "negative_radius": (_set(["eval", 0, "params", "r"], {"uniform": [-0.7, 1.4]}), ["eval[0].params.r", "radius", "positive"]),
    "zero_radius_train": (_set(["train", "grid", "r"], {"linspace": [0.0, 1.4, 10]}), ["train.grid.r", "positive"]),
    "huge_radius": (_set(["eval", 0, "params", "r"], 3.0), ["eval[0].params.r", "too large"]),
    "reversed_range": (_set(["eval", 0, "params", "v"], {"uniform": [4, 1]}), ["eval[0].params.v", "reversed range [4, 1]"]),
    "reversed_id_box": (_set(["id_box", "v"], [4.0, 1.0]), ["id_box.v", "reversed"]),
    "negative_speed": (_set(["eval", 0, "params", "v"], {"choice": [-1.0, 2.0]}), ["eval[0].params.v", "negative"]),
    "too_few_frames": (_set(["frames"], 4), ["frames (4)", "conditioning_frames (3)"]),
    "frames_not_int": (_set(["frames"], 32.5), ["frames", "integer"]),
    "tiny_resolution": (_set(["resolution"], 8), ["resolution", "16"]),
    "negative_seed": (_set(["seed"], -1), ["seed", "non-negative"]),
    "unknown_scene": (_set(["scene"], "pendulum"), ["scene", "'pendulum'", "known scenes"]),
    "missing_scene": (_delete(["scene"]), ["scene", "None"]),
    "unknown_key": (_set(["colour"], "red"), ["unknown key", "colour"]),
    "missing_parameter": (_delete(["eval", 1, "params", "v"]), ["eval[1].params", "missing v"]),
    "extra_parameter": (_set(["eval", 1, "params", "w"], 1.0), ["eval[1].params", "unknown w"]),
    "unknown_bucket": (_set(["eval", 0, "bucket"], "ood"), ["eval[0].bucket", "'ood'"]),
    "bad_distribution": (_set(["eval", 0, "params", "v"], {"normal": [1, 2]}), ["eval[0].params.v", "unknown distribution 'normal'"]),
    "grid_axis_in_eval": (_set(["eval", 0, "params", "v"], {"linspace": [1, 4, 3]}), ["eval[0].params.v", "only under train.grid"]),
    "linspace_n_zero": (_set(["train", "grid", "v"], {"linspace": [1, 4, 0]}), ["train.grid.v", "n >= 1"]),
    "not_a_number": (_set(["eval", 0, "params", "r"], "big"), ["eval[0].params.r", "expected a number"]),
    "nan_value": (_set(["eval", 0, "params", "r"], float("nan")), ["eval[0].params.r", "expected a number"]),
    "zero_count": (_set(["eval", 0, "count"], 0), ["eval[0].count", "integer >= 1"]),
    "empty_eval": (_set(["eval"], []), ["eval", "non-empty"]),
    "duplicate_set_names": (_set(["eval", 1, "name"], "in"), ["eval", "unique"]),
    "bad_train": (_set(["train"], {"grid": {}, "sample": {}}), ["train", "grid"]),
    "bad_id_box": (_set(["id_box"], {"r": [0.7, 1.4]}), ["id_box"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_recipe_raises_one_line_naming_the_problem(case, tmp_path):
    change, needles = BAD[case]
    data = raw()
    change(data)
    path = write(tmp_path, data)
    with pytest.raises(RecipeError) as info:
        load_recipe(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path)), message
    for needle in needles:
        assert needle in message, (needle, message)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="no such recipe file"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("scene: [uniform\n")
    with pytest.raises(RecipeError, match="not valid YAML") as info:
        load_recipe(bad)
    assert "\n" not in str(info.value)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(RecipeError, match="mapping"):
        load_recipe(bad)


@pytest.mark.parametrize("value", [3, {"a": 1}])
def test_uniform_of_a_non_list_is_a_recipe_error(value):
    data = raw()
    data["eval"][0]["params"]["r"] = {"uniform": value}
    with pytest.raises(RecipeError, match=r"eval\[0\]\.params\.r"):
        parse_recipe(data, "u.yaml")


def test_declared_bucket_mismatch_raises_when_generating():
    data = raw()
    data["eval"][0]["params"]["v"] = {"uniform": [4.5, 6.0]}  # set 'in' drawing OOD speeds
    recipe = parse_recipe(data, "mismatch.yaml")  # loading cannot know the draws ...
    plan = plan_clips(recipe, "eval")[0]
    assert plan.bucket == "in"
    with pytest.raises(RecipeError) as info:  # ... simulating the clip does
        simulate_clip(recipe, plan, "eval", SEED)
    message = str(info.value)
    assert "mismatch.yaml" in message and "'in'" in message and "'v_out'" in message


def test_infeasible_sampled_set_raises_recipe_error():
    data = raw("collision")
    # two big balls closing at 12 units/s: no room for 8 frames before the collision
    data["eval"][0]["params"] = {"r1": 2.0, "r2": 2.0, "v1": 6.0, "v2": 6.0}
    data["eval"][0]["bucket"] = "rv_out"
    recipe = parse_recipe(data, "infeasible.yaml")
    with pytest.raises(RecipeError, match="no feasible placement"):
        simulate_clip(recipe, plan_clips(recipe, "eval")[0], "eval", SEED)


ID_BOX = {"r": (0.7, 1.4), "v": (1.0, 4.0)}


@pytest.mark.parametrize(
    "speeds,radii,bucket",
    [
        ([2.0], [1.0], "in"),
        ([1.0], [0.7], "in"),  # box edges are inside
        ([4.0], [1.4], "in"),
        ([2.0], [0.5], "r_out"),
        ([2.0], [1.5], "r_out"),
        ([0.5], [1.0], "v_out"),
        ([5.0], [1.0], "v_out"),
        ([5.0], [1.8], "rv_out"),
        ([0.3], [0.4], "rv_out"),
        ([0.0], [1.0], "zero"),
        ([0.0], [1.8], "zero"),  # zero wins over any radius
        # two balls: out as soon as one is out; zero as soon as one rests
        ([2.0, 3.0], [1.0, 1.2], "in"),
        ([2.0, 5.0], [1.0, 1.2], "v_out"),
        ([2.0, 3.0], [1.0, 1.9], "r_out"),
        ([2.0, 5.0], [0.3, 1.2], "rv_out"),
        ([0.0, 5.0], [1.0, 1.2], "zero"),
    ],
)
def test_classify_reproduces_phyworld_buckets(speeds, radii, bucket):
    assert classify(speeds, radii, ID_BOX) == bucket


def test_eval_clips_land_in_their_buckets_across_recipes():
    for name in ("uniform", "parabola", "collision"):
        recipe = load(name)
        for plan in plan_clips(recipe, "eval", 60, SEED):
            traj, bucket = simulate_clip(recipe, plan, "eval", SEED)
            assert bucket == plan.bucket


def test_uniform_train_grid_has_30000_clips():
    recipe = load("uniform")
    plans = plan_clips(recipe, "train")
    assert len(plans) == recipe.train_size() == 30000
    vs = sorted({p.params["v"] for p in plans})
    rs = sorted({p.params["r"] for p in plans})
    assert len(vs) == 300 and len(rs) == 100
    assert vs[0] == 1.0 and vs[-1] == 4.0 and rs[0] == 0.7 and rs[-1] == pytest.approx(1.4)
    assert all(p.bucket is None for p in plans[:10])


def _key(plan):
    return tuple(sorted(plan.params.items()))


@pytest.mark.parametrize("name", ["uniform", "parabola"])
def test_train_count_is_a_seeded_subset(name):
    recipe = load(name)
    full = {_key(p) for p in plan_clips(recipe, "train")}
    a = plan_clips(recipe, "train", 100)
    b = plan_clips(recipe, "train", 100)
    c = plan_clips(recipe, "train", 100, seed=recipe.seed + 1)
    assert len(a) == 100 and [p.index for p in a] == list(range(100))
    assert len({_key(p) for p in a}) == 100  # no repeats
    assert {_key(p) for p in a} <= full
    assert [_key(p) for p in a] == [_key(p) for p in b]
    assert [_key(p) for p in a] != [_key(p) for p in c]
    assert plan_clips(recipe, "train", 10**6) == plan_clips(recipe, "train")  # count above the grid: all


def test_sampled_train_and_eval_counts():
    box = load("box")
    assert len(plan_clips(box, "train")) == 10000
    assert len(plan_clips(box, "train", 50)) == 50
    uniform = load("uniform")
    eval_small = plan_clips(uniform, "eval", 63)
    counts = {}
    for p in eval_small:
        counts[p.set_name] = counts.get(p.set_name, 0) + 1
    assert counts == {"in": 30, "r_out": 10, "v_out": 10, "rv_out": 10, "zero": 3}  # a tenth of each set
    assert {p.set_name for p in plan_clips(uniform, "eval", 1)} == {s.name for s in uniform.eval_sets}


def test_plan_clips_rejects_bad_split_and_count():
    recipe = load("uniform")
    with pytest.raises(RecipeError, match="split"):
        plan_clips(recipe, "test")
    with pytest.raises(RecipeError, match="count"):
        plan_clips(recipe, "train", 0)


def test_recipe_defaults_and_union_sampling():
    data = raw()
    for key in ("frames", "conditioning_frames", "resolution", "seed", "description"):
        data.pop(key)
    recipe = parse_recipe(copy.deepcopy(data))
    assert (recipe.frames, recipe.conditioning_frames, recipe.resolution, recipe.seed) == (32, 3, 64, 0)
    union = recipe.eval_sets[1].params["r"]  # r_out: [0.3, 0.6] U [1.5, 2.0]
    rng = np.random.default_rng(0)
    draws = np.array([union.sample(rng) for _ in range(2000)])
    assert np.all(((draws >= 0.3) & (draws <= 0.6)) | ((draws >= 1.5) & (draws <= 2.0)))
    low = np.mean(draws <= 0.6)
    assert 0.3 < low < 0.5  # weighted by length: 0.3 / 0.8 = 0.375
