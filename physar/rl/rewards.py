"""Physics-consistency rewards: pure functions of a trajectory, each in [0, 1] (1 = the law holds).

A trajectory is positions [F, N, 2] in world units at frame spacing dt, starting at the last
conditioning frame (frame 0 of the arrays) and running through the generated frames. It can be
read from the model's symbolic states or parsed from its decoded frames; the rewards do not care.
The reference (initial velocities, radii) comes from the simulator (supervised mode) or is
estimated from the conditioning frames alone (label-free mode: `reference_from_conditioning`),
so that rewards also work on conditions nobody simulated.

Each reward is 1 / (1 + error / scale) over least-squares fits of the path: the simulator's own
trajectory scores about 1, and a trajectory off by twice as much scores lower than one off by
half as much.
"""

from __future__ import annotations

import numpy as np

from simulators.world import GRAVITY_PARABOLA as GRAVITY  # the parabola scene's (world units / s^2)
SPEED_SCALE = 0.25  # world units / s: a velocity error of 0.25 halves the reward
PATH_SCALE = 0.1  # world units (0.6 px at 64 px): how far a path may wander off its law's curve


def finite_velocities(positions: np.ndarray, dt: float) -> np.ndarray:
    """[F, N, 2] -> [F - 1, N, 2]: (x_{t+1} - x_t) / dt, the velocity at each step's midpoint."""
    return np.diff(np.asarray(positions, dtype=float), axis=0) / dt


def reference_from_conditioning(positions: np.ndarray, dt: float, gravity: float = 0.0) -> np.ndarray:
    """Label-free initial velocities [N, 2] at the last conditioning frame, from the conditioning
    frames' positions [C, N, 2] (C >= 2): the mean finite difference, moved from the steps'
    midpoints to the last frame under the given (known) gravity."""
    positions = np.asarray(positions, dtype=float)
    if len(positions) < 2:
        raise ValueError("need at least two conditioning frames to estimate a velocity")
    v = finite_velocities(positions, dt)
    steps = len(v)
    # the midpoint velocities of a constant acceleration average to v(t_mid of the span);
    # add gravity * (time from that point to the last frame) to y
    v0 = v.mean(axis=0)
    v0[:, 1] += gravity * dt * steps / 2
    return v0


def _score(error: float, scale: float) -> float:
    """1 / (1 + error / scale): 1 for a perfect path, 1/2 at one scale, and graded everywhere (an
    exponential underflows to exactly 0 far from the law, where GRPO then sees no difference)."""
    return float(1.0 / (1.0 + error / scale)) if np.isfinite(error) else 0.0


def _line_fit(t: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares lines values[k] = a + v t[k] per column of values [F, M]: (v [M], rms residual).
    Fitting a line over the whole path makes the rewards indifferent to the 0.01-unit rounding of
    positions written in the physics language (a per-step velocity would carry 0.1 units/s of it)."""
    design = np.stack([np.ones_like(t), t], axis=1)
    coef, *_ = np.linalg.lstsq(design, values, rcond=None)
    residual = values - design @ coef
    return coef[1], float(np.sqrt(np.mean(residual**2)))


def velocity_reward(positions: np.ndarray, v0: np.ndarray, dt: float, scale: float = SPEED_SCALE,
                    path_scale: float = PATH_SCALE) -> float:
    """Uniform motion: a straight path at the initial velocity v0 [N, 2]."""
    positions = np.asarray(positions, dtype=float)
    t = np.arange(len(positions)) * dt
    v, rms = _line_fit(t, positions.reshape(len(positions), -1))
    return _score(float(np.mean(np.abs(v - np.asarray(v0).ravel()))), scale) * _score(rms, path_scale)


def gravity_reward(positions: np.ndarray, v0: np.ndarray, dt: float, gravity: float = GRAVITY,
                   scale: float = SPEED_SCALE, path_scale: float = PATH_SCALE) -> float:
    """Parabola: x moves at v0_x; y follows y0 + v0_y t + g t^2 / 2 (the known gravity)."""
    positions = np.asarray(positions, dtype=float).copy()
    t = np.arange(len(positions)) * dt
    positions[..., 1] -= gravity * t[:, None] ** 2 / 2  # what is left is a straight line
    v, rms = _line_fit(t, positions.reshape(len(positions), -1))
    return _score(float(np.mean(np.abs(v - np.asarray(v0).ravel()))), scale) * _score(rms, path_scale)


def elastic_velocities(v1: float, v2: float, m1: float, m2: float) -> tuple[float, float]:
    """1-D elastic collision: the velocities after it."""
    total = m1 + m2
    return ((m1 - m2) * v1 + 2 * m2 * v2) / total, ((m2 - m1) * v2 + 2 * m1 * v1) / total


def collision_rewards(positions: np.ndarray, radii: np.ndarray, v0: np.ndarray, dt: float,
                      scale: float = SPEED_SCALE, path_scale: float = PATH_SCALE) -> dict:
    """Head-on collision of two balls along x, masses r^2 (density 1, as PhyWorld's code).

    positions [F, 2, 2]; v0 [2, 2] (or [2]: x only, no vertical motion). The balls must touch when
    the law says (from the start positions and v0), so the frames split into before and after; a
    line is fitted to each ball's x and y in each part.
    - velocity: fitted velocities (vectors) against v0 before and the elastic velocities after (x
      changes, y keeps v0's), and the paths straight within each part;
    - momentum / energy: sum m v and sum m |v|^2 / 2 after the collision against the initial ones,
      relative to sum m |v0| and the initial energy;
      both count only as far as the balls bounce (their closing speed along x turns round): balls
      that never meet conserve both exactly;
    - contact: the balls may not pass through each other (their deepest overlap, against PATH_SCALE).
    y, bounce and contact are there because GRPO found the ways around them: label-free runs from
    `sft_cpu_v4` (40 steps, 2026-11-30) learned to send the blue ball up and out of view at 200
    units/s before the balls met, which kept the x momentum and energy exactly and, with the
    collision judged on x by the mean of the three terms, scored better than a jump of the wrong size.
    Returns velocity, momentum, energy, contact, bounce and, as "collision", the mean of the first
    three times contact.
    """
    xy = np.asarray(positions, dtype=float)  # [F, 2 balls, 2]
    x = xy[..., 0]  # [F, 2]
    radii, v0 = np.asarray(radii, dtype=float), np.asarray(v0, dtype=float)
    if v0.ndim == 1:
        v0 = np.stack([v0, np.zeros_like(v0)], axis=-1)
    m = radii**2
    t = np.arange(len(x)) * dt
    closing = v0[0, 0] - v0[1, 0]
    gap = x[0, 1] - x[0, 0] - radii.sum()
    t_hit = gap / closing if closing > 0 else np.inf
    after = v0.copy()
    after[:, 0] = elastic_velocities(v0[0, 0], v0[1, 0], *m)
    errors, residuals, v_after = [], [], after
    for part, expected in ((t <= t_hit, v0), (t >= t_hit, after)):
        if part.sum() >= 2:
            v, rms = _line_fit(t[part], xy[part].reshape(part.sum(), -1))
            v = v.reshape(2, 2)
            errors.append(np.linalg.norm(v - expected, axis=-1).mean())
            residuals.append(rms)
            if expected is after:
                v_after = v
    p0, e0 = m @ v0, float(m @ (v0**2).sum(-1) / 2)
    momentum_error = float(np.linalg.norm(m @ v_after - p0)) / (float(m @ np.linalg.norm(v0, axis=-1)) + 1e-9)
    energy_error = abs(float(m @ (v_after**2).sum(-1) / 2) - e0) / (e0 + 1e-9)
    # balls that never meet conserve both exactly: they count only for balls that bounce, whose
    # closing speed along x turns round (elastic: -1 times what it was; unchanged scores 1/11)
    bounce = _score(max(0.0, float(v_after[0, 0] - v_after[1, 0]) / closing), 0.1) if np.isfinite(t_hit) else 1.0
    out = {"velocity": _score(float(np.mean(errors)), scale) * _score(float(np.mean(residuals)), path_scale),
           "momentum": _score(momentum_error, 0.1) * bounce, "energy": _score(energy_error, 0.1) * bounce}
    overlap = max(0.0, float(np.max(radii.sum() - np.linalg.norm(xy[:, 1] - xy[:, 0], axis=-1))))
    contact = _score(overlap, path_scale)
    out["collision"] = float(np.mean(list(out.values()))) * contact
    out["contact"], out["bounce"] = contact, bounce
    return out


def agreement_reward(decoded: np.ndarray, symbolic: np.ndarray, found: np.ndarray, resolution: int,
                     scale_px: float = 1.0) -> float:
    """Decoded frames vs the model's own symbolic states: 1 / (1 + mean distance / scale) in pixels
    over the balls found, times the fraction found (a ball that is not drawn earns nothing)."""
    found = np.asarray(found, dtype=bool)
    if not found.any():
        return 0.0
    dist = np.linalg.norm(np.asarray(decoded) - np.asarray(symbolic), axis=-1)[found] * (resolution - 1) / 10.0
    return _score(float(dist.mean()), scale_px) * float(found.mean())


READING_SCALES = (0.05, 0.1, 0.1)  # radius, position (world units), velocity (units/s): half the reward each
READING_WEIGHTS = (1.0, 1.0, 1.0)  # radius, position, velocity: their shares of a ball's score


def reading_reward(written: np.ndarray, reference: np.ndarray, extra: int = 0,
                   scales: tuple[float, float, float] = READING_SCALES,
                   weights: tuple[float, float, float] = READING_WEIGHTS) -> float:
    """The <state> block as read against a reference reading of the same conditioning frames:
    written and reference [N, 5] (r, x, y, vx, vy per ball, in the reference's ball order; a row of
    NaN where the block names no ball of that colour). Each ball scores the mean over radius,
    position and velocity (vector distances) of 1 / (1 + error / scale), weighted by `weights`
    (equal by default), a ball not written 0; the reward is the mean over the reference's balls,
    shrunk by `extra` balls written that it does not have (N / (N + extra))."""
    written, reference = np.asarray(written, dtype=float), np.asarray(reference, dtype=float)
    if written.shape != reference.shape or reference.ndim != 2 or reference.shape[1] != 5:
        raise ValueError(f"written {written.shape} and reference {reference.shape} must both be [N, 5]")
    scores = []
    for w, ref in zip(written, reference):
        if not np.isfinite(w).all():
            scores.append(0.0)
            continue
        errors = (abs(w[0] - ref[0]), np.linalg.norm(w[1:3] - ref[1:3]), np.linalg.norm(w[3:5] - ref[3:5]))
        scores.append(np.average([_score(e, s) for e, s in zip(errors, scales)], weights=weights))
    return float(np.mean(scores)) * len(reference) / (len(reference) + extra) if len(reference) else 0.0


def field_reward(written: float, reference: float, field: int,
                 scales: tuple[float, float, float] = READING_SCALES) -> float:
    """One number of a <state> block against a reference reading of it (`field`: its index in r, x, y,
    vx, vy): 1 / (1 + error / scale) at the scale of its kind (radius, position or velocity); 0 when
    it was not written (NaN)."""
    return _score(abs(float(written) - float(reference)), scales[0 if field == 0 else 1 if field < 3 else 2])


def format_reward(parsed: bool) -> float:
    """1 when the sequence parses in the physics language (constrained decoding makes it so)."""
    return 1.0 if parsed else 0.0
