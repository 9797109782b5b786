"""PhyWorld's per-clip errors, as pure functions over arrays (research/phyworld.md 3.2).

Every error compares positions parsed from a video with the simulator's ground truth over
the *valid* frames: from the first frame after the conditioning frames onward, while the
ground-truth ball is wholly in view. Velocities are finite differences, v_t = (x_{t+1} - x_t) / dt.

- uniform: vel_error = |mean_t v^_x - mean_t v_x| (PhyWorld's `vel_error`).
- parabola: vel_error = x + y mean-velocity errors (matches PhyWorld's published floor 0.021).
- collision: vel_error = post_vel_error, the mean over both balls of the mean-velocity error
  over the frames after the collision; the collision index is the first difference step where
  either ball's true velocity changes by more than 0.1, and that step is left out. Momentum and
  kinetic-energy errors use mass = r^2, as PhyWorld's code does.
- box: vel_error = mean per-step |v^ - v| over both axes, balls and the steps that no
  collision of that ball spans (several balls bounce, so a mean velocity means nothing).
"""

from __future__ import annotations

import numpy as np

from simulators.world import WORLD_SIZE


def valid_frames(scene: str, gt_positions: np.ndarray, radii: np.ndarray, conditioning_frames: int) -> np.ndarray:
    """bool [T]: frames that count (after the conditioning frames, ball(s) wholly in view)."""
    x, y = gt_positions[..., 0], gt_positions[..., 1]
    if scene == "collision":  # x only: left edge of the left ball, right edge of the right ball
        inside = (x[:, 0] - radii[0] >= 0) & (x[:, 1] + radii[1] <= WORLD_SIZE)
    else:
        inside = np.all((x - radii >= 0) & (x + radii <= WORLD_SIZE) & (y - radii >= 0) & (y + radii <= WORLD_SIZE), axis=1)
    valid = inside.copy()
    valid[:conditioning_frames] = False
    return valid


def fill_missing(scene: str, positions: np.ndarray, radii: np.ndarray, found: np.ndarray):
    """PhyWorld's fallback for a ball not found in a frame: a single ball is put at the right
    edge (x = 10); in a collision the left ball at x = 0 and the right ball at x = 10; y and r
    keep their last parsed values. Box scenes keep NaN (the frame is then left out)."""
    positions, radii = positions.copy(), radii.copy()
    if scene == "box":
        return positions, radii
    edge_x = [0.0, WORLD_SIZE] if scene == "collision" else [WORLD_SIZE]
    last_y, last_r = np.full(positions.shape[1], np.nan), np.full(positions.shape[1], np.nan)
    for t in range(len(positions)):
        for i in range(positions.shape[1]):
            if found[t, i]:
                last_y[i], last_r[i] = positions[t, i, 1], radii[t, i]
            else:
                # PhyWorld's collision parser shares the red ball's last y between both balls.
                y = last_y[0] if scene == "collision" else last_y[i]
                positions[t, i] = edge_x[i], y
                radii[t, i] = last_r[i]
    return positions, radii


def _mean_velocity_error(pred_v: np.ndarray, true_v: np.ndarray) -> float:
    """|mean_t pred - mean_t true|, averaged over the remaining axes; NaN with no steps."""
    if len(pred_v) == 0:
        return float("nan")
    return float(np.mean(np.abs(pred_v.mean(axis=0) - true_v.mean(axis=0))))


def clip_errors(scene: str, pred_positions: np.ndarray, pred_radii: np.ndarray, found: np.ndarray,
                gt_positions: np.ndarray, gt_velocities: np.ndarray, radii: np.ndarray,
                conditioning_frames: int, frame_dt: float, collisions=()) -> dict:
    """All errors of one clip. Positions [T, N, 2]; found [T, N]; radii [N] (the true ones)."""
    valid = valid_frames(scene, gt_positions, radii, conditioning_frames)
    idx = np.flatnonzero(valid)
    out = {"valid_frames": int(len(idx)), "found_rate": float(found[idx].mean()) if len(idx) else float("nan")}
    pos, rad = fill_missing(scene, pred_positions[idx], pred_radii[idx], found[idx])
    gt = gt_positions[idx]
    # Only consecutive valid frames form a velocity step.
    step = np.flatnonzero(np.diff(idx) == 1)
    v_pred = (pos[step + 1] - pos[step]) / frame_dt  # [S, N, 2]
    v_true = (gt[step + 1] - gt[step]) / frame_dt
    out["x_err"] = float(np.nanmean(np.abs(pos[..., 0] - gt[..., 0]))) if len(idx) else float("nan")
    out["y_err"] = float(np.nanmean(np.abs(pos[..., 1] - gt[..., 1]))) if len(idx) else float("nan")
    # radius consistency: how much each ball's parsed radius varies over the clip (worst ball)
    finite = np.isfinite(rad).any(axis=0)
    out["delta_r"] = (float(np.max(np.nanmax(rad[:, finite], axis=0) - np.nanmin(rad[:, finite], axis=0)))
                      if finite.any() else float("nan"))

    if scene == "uniform":
        out["vel_error"] = _mean_velocity_error(v_pred[..., 0], v_true[..., 0])
    elif scene == "parabola":
        out["x_vel_error"] = _mean_velocity_error(v_pred[..., 0], v_true[..., 0])
        out["y_vel_error"] = _mean_velocity_error(v_pred[..., 1], v_true[..., 1])
        out["vel_error"] = out["x_vel_error"] + out["y_vel_error"]
    elif scene == "collision":
        out.update(_collision_errors(v_pred[..., 0], v_true[..., 0], radii, gt_velocities[0, :, 0]))
    else:
        out.update(_box_errors(v_pred, v_true, idx[step], collisions))
    return out


def collision_index(true_vx: np.ndarray, threshold: float = 0.1) -> int:
    """First step whose true velocity differs from the previous step's by more than `threshold`
    for either ball; len - 1 when there is none (PhyWorld's rule)."""
    change = np.abs(np.diff(true_vx, axis=0)).max(axis=1) > threshold
    hits = np.flatnonzero(change)
    return int(hits[0] + 1) if len(hits) else len(true_vx) - 1


def _collision_errors(vx_pred: np.ndarray, vx_true: np.ndarray, radii: np.ndarray, v0: np.ndarray) -> dict:
    """vx_pred, vx_true [S, 2]; v0 the true initial x velocities [2]."""
    if len(vx_true) < 2:
        nan = float("nan")
        return {"vel_error": nan, "pre_vel_error": nan, "post_vel_error": nan, "momentum_error": nan,
                "energy_error": nan, "collision_step": -1}
    c = collision_index(vx_true)
    pre, post = slice(0, c), slice(c + 1, None)
    mass = radii**2  # PhyWorld's code: r^2, no pi
    momentum = vx_pred @ mass
    energy = (vx_pred**2) @ mass / 2
    true_momentum, true_energy = float(v0 @ mass), float((v0**2) @ mass / 2)

    def mean_abs(a):
        return float(np.mean(np.abs(a))) if len(a) else float("nan")

    post_error = _mean_velocity_error(vx_pred[post], vx_true[post])
    return {
        "vel_error": post_error,
        "pre_vel_error": _mean_velocity_error(vx_pred[pre], vx_true[pre]),
        "post_vel_error": post_error,
        "momentum_error": mean_abs(momentum[post] - true_momentum),
        "energy_error": mean_abs(energy[post] - true_energy),
        "pre_momentum_error": mean_abs(momentum[pre] - true_momentum),
        "pre_energy_error": mean_abs(energy[pre] - true_energy),
        "collision_step": c,
    }


def _box_errors(v_pred: np.ndarray, v_true: np.ndarray, step_frames: np.ndarray, collisions) -> dict:
    """Per-step velocity error, leaving out each ball's steps that a collision spans."""
    keep = np.ones(v_true.shape[:2], dtype=bool)  # [S, N]
    for frame, a, b in collisions:  # the contact happened between frame - 1 and frame
        for ball in (a, b):
            if ball >= 0:
                keep[step_frames == frame - 1, ball] = False
    err = np.abs(v_pred - v_true).mean(axis=-1)[keep]
    return {"vel_error": float(np.nanmean(err)) if np.isfinite(err).any() else float("nan")}
