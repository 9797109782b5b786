"""PhyWorld's per-clip errors (physar.evaluation.metrics) on exact and hand-built inputs."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import trajectories

from physar.evaluation.metrics import clip_errors, collision_index, fill_missing, valid_frames
from simulators.world import CONDITIONING_FRAMES, FRAME_DT, WORLD_SIZE

SCENES = ["uniform", "collision", "parabola", "box"]


def errors(traj, pred_positions, found=None, pred_radii=None):
    T, N, _ = traj.positions.shape
    found = np.ones((T, N), bool) if found is None else found
    pred_radii = np.broadcast_to(traj.radii, (T, N)).copy() if pred_radii is None else pred_radii
    return clip_errors(traj.scene, pred_positions, pred_radii, found, traj.positions, traj.velocities,
                       traj.radii, CONDITIONING_FRAMES, FRAME_DT, traj.collisions)


def clips(scene, n=60):
    return [t for _, t, _ in trajectories(scene, "eval")][:: max(1, len(trajectories(scene, "eval")) // n)]


@pytest.mark.parametrize("scene", SCENES)
def test_perfect_prediction_has_zero_error(scene):
    scored = 0
    for traj in clips(scene):
        e = errors(traj, traj.positions.copy())
        if not np.isfinite(e["vel_error"]):  # no valid step (collision: none after the contact)
            assert e["valid_frames"] < traj.num_frames - CONDITIONING_FRAMES
            continue
        scored += 1
        assert e["vel_error"] == pytest.approx(0.0, abs=1e-12), traj.params
        assert e["x_err"] == 0.0 and e["y_err"] == 0.0
        assert e["found_rate"] == 1.0
        if scene == "collision":
            for key in ("pre_vel_error", "post_vel_error", "momentum_error", "energy_error"):
                assert e[key] == pytest.approx(0.0, abs=1e-9), (key, traj.params)
            assert 0 < e["collision_step"] < e["valid_frames"] - 1
    assert scored >= 40


@pytest.mark.parametrize("scene", ["collision", "box"])
def test_perfect_prediction_has_zero_delta_r(scene):
    for traj in clips(scene, 20):
        e = errors(traj, traj.positions.copy())
        assert e["delta_r"] == pytest.approx(0.0, abs=1e-12), (traj.radii, e["delta_r"])


@pytest.mark.parametrize("scene", ["uniform", "parabola"])
def test_perfect_prediction_single_ball_delta_r_is_zero(scene):
    for traj in clips(scene, 20):
        assert errors(traj, traj.positions.copy())["delta_r"] == 0.0


def biased(traj, bias, axis=0, positions=None):
    """Positions that move with an extra constant velocity `bias` along `axis`."""
    t = np.arange(traj.num_frames) * FRAME_DT
    pred = (traj.positions if positions is None else positions).copy()
    pred[..., axis] += bias * t[:, None]
    return pred


@pytest.mark.parametrize("bias", [0.3, -0.3, 1.7])
def test_uniform_velocity_bias_is_the_error(bias):
    n = 0
    for traj in clips("uniform"):
        e = errors(traj, biased(traj, bias))
        if e["valid_frames"] >= 2:
            assert e["vel_error"] == pytest.approx(abs(bias), abs=1e-9)
            n += 1
    assert n >= 40


def test_parabola_bias_splits_into_axes():
    for traj in clips("parabola", 20):
        e = errors(traj, biased(traj, -0.2, 1, biased(traj, 0.3, 0)))
        assert e["x_vel_error"] == pytest.approx(0.3, abs=1e-9)
        assert e["y_vel_error"] == pytest.approx(0.2, abs=1e-9)
        assert e["vel_error"] == pytest.approx(0.5, abs=1e-9)


def collision_clips_with_post_steps(n=20):
    out = [t for t in clips("collision", 3 * n) if np.isfinite(errors(t, t.positions)["post_vel_error"])
           and np.isfinite(errors(t, t.positions)["pre_vel_error"])]
    assert len(out) >= n
    return out[:n]


def test_collision_bias_is_the_post_error_and_breaks_momentum():
    for traj in collision_clips_with_post_steps():
        e = errors(traj, biased(traj, 0.3))
        assert e["post_vel_error"] == pytest.approx(0.3, abs=1e-9)
        assert e["pre_vel_error"] == pytest.approx(0.3, abs=1e-9)
        assert e["vel_error"] == e["post_vel_error"]
        # momentum (mass r^2) is off by 0.3 * (r1^2 + r2^2) in every post step
        assert e["momentum_error"] == pytest.approx(0.3 * (traj.radii**2).sum(), rel=1e-9)


def test_box_bias_is_the_per_step_error():
    for traj in clips("box", 20):
        e = errors(traj, biased(traj, 0.4))
        if np.isfinite(e["vel_error"]):
            assert e["vel_error"] == pytest.approx(0.2, abs=1e-9)  # mean over x (0.4) and y (0)


def test_collision_index_on_hand_built_sequences():
    v = np.array([[2.0, -1.0]] * 4 + [[0.5, 0.2]] + [[-1.0, 2.0]] * 3)
    assert collision_index(v) == 4  # the mixed step, left out of both pre and post
    assert collision_index(np.array([[2.0, -1.0]] * 3 + [[-1.0, 2.0]] * 3)) == 3
    # only one ball changing is enough
    assert collision_index(np.array([[1.0, 0.0]] * 5 + [[1.0, 0.5]] * 2)) == 5
    # no change: len - 1; changes at or below the threshold do not count
    assert collision_index(np.full((6, 2), 1.5)) == 5
    assert collision_index(np.array([[1.0, 1.0], [1.05, 1.0], [1.1, 1.0], [1.15, 1.0]])) == 3
    assert collision_index(np.array([[1.0, 1.0], [1.0, 1.0], [1.3, 1.0]]), threshold=0.5) == 2


def test_collision_errors_exclude_the_collision_step():
    """A prediction wrong only in the step spanning the collision has no pre or post error."""
    for traj in collision_clips_with_post_steps():
        e = errors(traj, traj.positions.copy())
        c = e["collision_step"]
        idx = np.flatnonzero(valid_frames("collision", traj.positions, traj.radii, CONDITIONING_FRAMES))
        pred = traj.positions.copy()
        pred[idx[c + 1]:] += np.array([0.7, 0.0])  # a jump inside step c only
        e2 = errors(traj, pred)
        assert e2["collision_step"] == c
        assert e2["pre_vel_error"] == pytest.approx(0, abs=1e-12)
        assert e2["post_vel_error"] == pytest.approx(0, abs=1e-12)
        assert e2["x_err"] > 0


def test_valid_frames_single_ball():
    r = np.array([1.0])
    x = np.linspace(2.0, 14.0, 13)  # moves right 1 per frame, out past x + r = 10 at frame 8
    pos = np.stack([x, np.full(13, 5.0)], -1)[:, None, :]
    valid = valid_frames("uniform", pos, r, 3)
    assert valid.tolist() == [False] * 3 + [True] * 5 + [False] * 5
    # y leaving through the bottom counts too
    pos2 = pos.copy()
    pos2[:, 0, 0] = 5.0
    pos2[:, 0, 1] = np.linspace(9.0, -3.0, 13)
    assert valid_frames("parabola", pos2, r, 3).tolist() == [False] * 3 + [True] * 6 + [False] * 4
    # conditioning frames never count, even in view
    assert valid_frames("uniform", np.full((6, 1, 2), 5.0), r, 4).tolist() == [False] * 4 + [True] * 2


def test_valid_frames_collision_uses_x_only():
    r = np.array([1.0, 1.0])
    pos = np.zeros((6, 2, 2))
    pos[:, 0] = [3.0, 0.5]  # left ball's bottom below the view: ignored, only x counts
    pos[:, 1, 0] = [6, 7, 8, 9, 9.5, 11]
    pos[:, 1, 1] = 0.5
    assert valid_frames("collision", pos, r, 1).tolist() == [False, True, True, True, False, False]


def test_fill_missing_single_ball_goes_to_right_edge():
    pos = np.array([[[2.0, 3.0]], [[2.5, 3.1]], [[np.nan, np.nan]], [[np.nan, np.nan]]])
    radii = np.array([[0.8], [0.9], [np.nan], [np.nan]])
    found = np.array([[True], [True], [False], [False]])
    filled, r = fill_missing("uniform", pos, radii, found)
    np.testing.assert_array_equal(filled[2:, 0], [[WORLD_SIZE, 3.1]] * 2)  # x = 10, last y kept
    np.testing.assert_array_equal(r[2:, 0], [0.9, 0.9])
    np.testing.assert_array_equal(filled[:2], pos[:2])
    assert np.isnan(pos[2]).all()  # input untouched


def test_fill_missing_collision_and_box():
    pos = np.array([[[2.0, 4.0], [8.0, 4.2]], [[np.nan, np.nan], [np.nan, np.nan]]])
    radii = np.array([[1.0, 0.7], [np.nan, np.nan]])
    found = np.array([[True, True], [False, False]])
    filled, r = fill_missing("collision", pos, radii, found)
    np.testing.assert_array_equal(filled[1], [[0.0, 4.0], [WORLD_SIZE, 4.0]])  # red ball's y for both
    np.testing.assert_array_equal(r[1], [1.0, 0.7])
    box, _ = fill_missing("box", pos, radii, found)
    assert np.isnan(box[1]).all()


def test_missing_ball_in_prediction_raises_the_error():
    """A ball that vanishes from the generated video is put at x = 10: a large velocity error."""
    traj = next(t for t in clips("uniform") if t.params["v"] < 3.0 and t.params["r"] >= 0.7)
    T = traj.num_frames
    found = np.ones((T, 1), bool)
    found[10:] = False
    pred = traj.positions.copy()
    pred[10:] = np.nan
    e = errors(traj, pred, found=found)
    assert e["found_rate"] < 1.0
    assert e["vel_error"] > 0.1


def test_no_valid_frames_gives_nan():
    traj = next(t for t in clips("uniform") if t.params["v"] > 4.5)
    e = clip_errors("uniform", traj.positions, np.ones((traj.num_frames, 1)), np.ones((traj.num_frames, 1), bool),
                    traj.positions, traj.velocities, traj.radii, traj.num_frames, FRAME_DT)
    assert e["valid_frames"] == 0 and np.isnan(e["vel_error"])
