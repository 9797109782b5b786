"""Physics of the simulated scenes, over hundreds of random ID and OOD clips per recipe."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import SEED, all_trajectories, load, recipe_path, trajectories

from physar.data.generate import simulate_clip
from physar.data.recipe import parse_recipe, plan_clips
from simulators.scenes import MIN_POST_FRAMES, MIN_PRE_FRAMES
from simulators.world import FRAME_DT, GRAVITY_PARABOLA, NUM_FRAMES, PHYSICS_DT, WORLD_SIZE

SLOP = 0.01


def rel_err(a, b):
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


@pytest.mark.parametrize("name", ["uniform", "collision", "parabola", "box"])
def test_hundreds_of_clips_cover_every_eval_bucket(name):
    recipe = load(name)
    clips = trajectories(name, "eval")
    assert len(clips) == recipe.eval_size() >= 300  # eval sets never drop a clip
    assert {b for _, _, b in clips} == {s.bucket for s in recipe.eval_sets}
    assert len(trajectories(name, "train")) >= 150
    for _, traj, _ in clips[:20]:
        assert traj.positions.shape == traj.velocities.shape == (NUM_FRAMES, traj.num_objects, 2)
        assert np.isfinite(traj.positions).all() and np.isfinite(traj.velocities).all()


# --- uniform -------------------------------------------------------------------------------

def test_uniform_velocity_is_constant():
    trajs = all_trajectories("uniform")
    assert len(trajs) >= 800
    for traj in trajs:
        v, x = traj.velocities[:, 0], traj.positions[:, 0]
        v0 = np.array([traj.params["v"], 0.0])
        np.testing.assert_allclose(v, np.broadcast_to(v0, v.shape), rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.diff(x, axis=0) / FRAME_DT, np.broadcast_to(v0, (len(x) - 1, 2)), rtol=0, atol=1e-9)


def test_uniform_start_follows_phyworld_placement():
    """Start x in [r, 10 - (2.4 v + r)] (or near the left edge when that is empty); y in [r + 0.5, 9.5 - r]."""
    for traj in all_trajectories("uniform"):
        r, v = traj.params["r"], traj.params["v"]
        x0, y0 = traj.positions[0, 0]
        high = WORLD_SIZE - (24 * v * FRAME_DT + r)
        high = high if high >= r else r + 0.5
        assert r - 1e-12 <= x0 <= high + 1e-12
        assert r + 0.5 - 1e-12 <= y0 <= WORLD_SIZE - 0.5 - r + 1e-12


# --- collision -----------------------------------------------------------------------------

def test_collision_conserves_momentum_and_energy():
    trajs = all_trajectories("collision")
    assert len(trajs) >= 800
    for traj in trajs:
        m, v = traj.masses, traj.velocities
        np.testing.assert_allclose(m, np.pi * traj.radii**2)
        p0, p1 = m @ v[0, :, 0], m @ v[-1, :, 0]
        e0, e1 = (m @ (v[0] ** 2).sum(-1)) / 2, (m @ (v[-1] ** 2).sum(-1)) / 2
        # relative to the momentum scale sum m|v| (the total can be 0: equal balls, equal speeds)
        assert abs(p1 - p0) < 1e-6 * (m @ np.abs(v[0, :, 0])), (traj.params, p0, p1)
        assert rel_err(e0, e1) < 1e-6, (traj.params, e0, e1)
        assert np.all(v[..., 1] == 0) and np.all(traj.positions[:, 0, 1] == traj.positions[:, 1, 1])  # head-on


def test_collision_post_velocities_match_elastic_formula():
    checked = 0
    for traj in all_trajectories("collision"):
        (m1, m2), (v1, v2) = traj.masses, traj.velocities[0, :, 0]
        assert v1 == traj.params["v1"] and v2 == -traj.params["v2"]
        u1 = ((m1 - m2) * v1 + 2 * m2 * v2) / (m1 + m2)
        u2 = ((m2 - m1) * v2 + 2 * m1 * v1) / (m1 + m2)
        w1, w2 = traj.velocities[-1, :, 0]
        scale = max(abs(v1), abs(v2))
        assert abs(w1 - u1) <= 1e-6 * scale and abs(w2 - u2) <= 1e-6 * scale, (traj.params, (w1, w2), (u1, u2))
        # the formula itself: it conserves momentum and energy
        assert rel_err(m1 * v1 + m2 * v2, m1 * u1 + m2 * u2) < 1e-12
        checked += 1
    assert checked >= 800


def test_collision_placement_leaves_frames_before_and_after():
    for traj in all_trajectories("collision"):
        assert len(traj.collisions) == 1, traj.collisions
        frame, a, b = traj.collisions[0]
        assert (a, b) == (0, 1)
        assert frame >= MIN_PRE_FRAMES  # frames 0 .. frame-1 are before the contact
        assert frame <= NUM_FRAMES - MIN_POST_FRAMES
        # before the contact both balls keep their initial velocities; after it, the new ones
        v = traj.velocities[:, :, 0]
        assert np.all(v[:frame - 1] == v[0])
        assert np.all(v[frame:] == v[-1])
        # the balls do not touch before the contact frame and are apart at the end
        gap = traj.positions[:, 1, 0] - traj.positions[:, 0, 0] - traj.radii.sum()
        assert np.all(gap[:frame] > 0) and gap[-1] > 0
        # left ball left edge inside the view at the start, right ball right edge likewise
        assert traj.positions[0, 0, 0] - traj.radii[0] >= -1e-12
        assert traj.positions[0, 1, 0] + traj.radii[1] <= WORLD_SIZE + 1e-12


def test_collision_placement_respects_recipe_frames():
    raw = yaml.safe_load(recipe_path("collision").read_text())
    raw["frames"] = 20
    recipe = parse_recipe(raw, "collision-20.yaml")
    for plan in plan_clips(recipe, "eval", 60, SEED):
        traj, _ = simulate_clip(recipe, plan, "eval", SEED)
        assert traj.num_frames == 20
        assert traj.collisions, f"clip {plan.index}: no collision within the 20 frames"
        assert MIN_PRE_FRAMES <= traj.collisions[0][0] <= 20 - MIN_POST_FRAMES, traj.collisions


# --- parabola ------------------------------------------------------------------------------

def test_parabola_constant_vertical_acceleration_and_horizontal_velocity():
    trajs = all_trajectories("parabola")
    assert len(trajs) >= 800
    for traj in trajs:
        v, x = traj.velocities[:, 0], traj.positions[:, 0]
        np.testing.assert_allclose(np.diff(v[:, 1]) / FRAME_DT, GRAVITY_PARABOLA, rtol=0, atol=1e-6)
        np.testing.assert_allclose(np.diff(x[:, 1], 2) / FRAME_DT**2, GRAVITY_PARABOLA, rtol=0, atol=1e-6)
        np.testing.assert_allclose(v[:, 0], traj.params["v"], rtol=0, atol=1e-9)
        np.testing.assert_allclose(np.diff(x[:, 0]) / FRAME_DT, traj.params["v"], rtol=0, atol=1e-9)
        assert v[0, 1] == 0.0
        r = traj.params["r"]
        assert 8.5 - r - 1e-12 <= x[0, 1] <= 9.5 - r + 1e-12


# --- box -----------------------------------------------------------------------------------

def _box_energy(traj, k):
    return traj.masses @ (traj.velocities[k] ** 2).sum(-1) / 2


def test_box_conserves_kinetic_energy():
    trajs = all_trajectories("box")
    assert len(trajs) >= 500
    bounced = 0
    for traj in trajs:
        assert traj.params["gravity"] == 0.0
        e0 = _box_energy(traj, 0)
        for k in (traj.num_frames // 2, -1):
            assert rel_err(e0, _box_energy(traj, k)) < 1e-6, traj.params
        bounced += any(b == -1 for _, _, b in traj.collisions)
    assert bounced > len(trajs) // 2  # the walls are hit, so the check means something


def test_box_balls_stay_near_the_box():
    """Discrete steps let a ball sink into a wall by at most one physics step of travel."""
    for traj in all_trajectories("box"):
        x, r = traj.positions, traj.radii[None, :, None]
        speed = np.linalg.norm(traj.velocities, axis=-1).max()
        allowed = speed * PHYSICS_DT + SLOP
        assert (x - r).min() >= -allowed and (x + r).max() <= WORLD_SIZE + allowed


def test_box_balls_stay_inside_within_slop():
    worst = 0.0
    for traj in all_trajectories("box"):
        x, r = traj.positions, traj.radii[None, :, None]
        worst = max(worst, -(x - r).min(), (x + r).max() - WORLD_SIZE)
    assert worst <= SLOP, f"a ball reaches {worst:.4f} world units past a wall"


def test_box_balls_do_not_overlap_at_start():
    for traj in all_trajectories("box"):
        x = traj.positions[0]
        for i in range(traj.num_objects):
            for j in range(i):
                assert np.hypot(*(x[i] - x[j])) > traj.radii[i] + traj.radii[j]


# --- determinism ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["uniform", "collision", "parabola", "box"])
def test_same_seed_same_clip_different_seed_different_clip(name):
    recipe = load(name)
    plans = plan_clips(recipe, "eval", 20, SEED)
    for plan in plans:
        a, _ = simulate_clip(recipe, plan, "eval", 7)
        b, _ = simulate_clip(recipe, plan, "eval", 7)
        c, _ = simulate_clip(recipe, plan, "eval", 8)
        assert np.array_equal(a.positions, b.positions) and np.array_equal(a.velocities, b.velocities)
        assert a.params == b.params and a.collisions == b.collisions
        assert not np.array_equal(a.positions, c.positions)


def test_clip_does_not_depend_on_order():
    """Clip i draws from its own generator: simulating in reverse order changes nothing."""
    recipe = load("collision")
    plans = plan_clips(recipe, "eval", 20, SEED)
    forward = [simulate_clip(recipe, p, "eval", SEED)[0].positions for p in plans]
    backward = [simulate_clip(recipe, p, "eval", SEED)[0].positions for p in reversed(plans)][::-1]
    assert all(np.array_equal(a, b) for a, b in zip(forward, backward))
