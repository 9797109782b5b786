"""Physics-consistency rewards: pure functions of a trajectory, each in [0, 1] (1 = the law holds).

A trajectory is positions [F, N, 2] in world units at frame spacing dt, starting at the last
conditioning frame (frame 0 of the arrays) and running through the generated frames. It can be
read from the model's symbolic states or parsed from its decoded frames; the rewards do not care.
The reference (initial velocities, radii) comes from the simulator (supervised mode) or is
estimated from the conditioning frames alone (label-free mode: `reference_from_conditioning`),
so that rewards also work on conditions nobody simulated.

Each reward is exp(-error / scale): the simulator's own trajectory scores about 1, and a
trajectory off by twice as much scores lower than one off by half as much.
"""

from __future__ import annotations

import numpy as np

GRAVITY = -2.5  # the parabola scene's (world units / s^2)
SPEED_SCALE = 0.25  # world units / s: a mean velocity error of 0.25 gives exp(-1)


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
    return float(np.exp(-error / scale)) if np.isfinite(error) else 0.0


def velocity_reward(positions: np.ndarray, v0: np.ndarray, dt: float, scale: float = SPEED_SCALE) -> float:
    """Uniform motion: every step keeps the initial velocity v0 [N, 2]."""
    v = finite_velocities(positions, dt)
    return _score(float(np.mean(np.abs(v - v0[None]))), scale)


def gravity_reward(positions: np.ndarray, v0: np.ndarray, dt: float, gravity: float = GRAVITY,
                   scale: float = SPEED_SCALE) -> float:
    """Parabola: constant horizontal velocity, vertical velocity v0_y + g t (at each step's midpoint)."""
    v = finite_velocities(positions, dt)
    t_mid = (np.arange(len(v)) + 0.5) * dt
    expected = np.repeat(np.asarray(v0, dtype=float)[None], len(v), axis=0)
    expected[..., 1] += gravity * t_mid[:, None]
    return _score(float(np.mean(np.abs(v - expected))), scale)


def elastic_velocities(v1: float, v2: float, m1: float, m2: float) -> tuple[float, float]:
    """1-D elastic collision: the velocities after it."""
    total = m1 + m2
    return ((m1 - m2) * v1 + 2 * m2 * v2) / total, ((m2 - m1) * v2 + 2 * m1 * v1) / total


def collision_rewards(positions: np.ndarray, radii: np.ndarray, v0x: np.ndarray, dt: float,
                      scale: float = SPEED_SCALE) -> dict:
    """Head-on collision of two balls (x only), masses r^2 (density 1, as PhyWorld's code).

    - velocity: each step's velocities against the law: v0 before the balls touch, the elastic
      velocities after (the step in which they touch, predicted from the start, is left out);
    - momentum / energy: sum m v and sum m v^2 / 2 of every step against the initial ones,
      relative to the initial momentum scale (sum m |v|) and energy.
    Returns the three and their mean as "collision".
    """
    x = np.asarray(positions, dtype=float)[..., 0]  # [F, 2]
    radii, v0x = np.asarray(radii, dtype=float), np.asarray(v0x, dtype=float)
    m = radii**2
    v = np.diff(x, axis=0) / dt  # [S, 2]
    closing = v0x[0] - v0x[1]
    gap = x[0, 1] - x[0, 0] - radii.sum()
    t_hit = gap / closing if closing > 0 else np.inf  # from frame 0
    start, end = np.arange(len(v)) * dt, (np.arange(len(v)) + 1) * dt
    before, after = end <= t_hit, start >= t_hit
    expected = np.where(before[:, None], v0x[None], np.array(elastic_velocities(*v0x, *m))[None])
    keep = before | after
    velocity_error = float(np.mean(np.abs(v[keep] - expected[keep]))) if keep.any() else np.nan
    p0, e0 = float(m @ v0x), float(m @ v0x**2 / 2)
    p_scale, e_scale = float(m @ np.abs(v0x)) + 1e-9, e0 + 1e-9
    momentum_error = float(np.mean(np.abs(v[keep] @ m - p0))) / p_scale if keep.any() else np.nan
    energy_error = float(np.mean(np.abs((v[keep] ** 2) @ m / 2 - e0))) / e_scale if keep.any() else np.nan
    out = {"velocity": _score(velocity_error, scale), "momentum": _score(momentum_error, 0.1),
           "energy": _score(energy_error, 0.1)}
    out["collision"] = float(np.mean(list(out.values())))
    return out


def agreement_reward(decoded: np.ndarray, symbolic: np.ndarray, found: np.ndarray, resolution: int,
                     scale_px: float = 1.0) -> float:
    """Decoded frames vs the model's own symbolic states: exp(-mean distance / scale) in pixels
    over the balls found, times the fraction found (a ball that is not drawn earns nothing)."""
    found = np.asarray(found, dtype=bool)
    if not found.any():
        return 0.0
    dist = np.linalg.norm(np.asarray(decoded) - np.asarray(symbolic), axis=-1)[found] * (resolution - 1) / 10.0
    return _score(float(dist.mean()), scale_px) * float(found.mean())


def format_reward(parsed: bool) -> float:
    """1 when the sequence parses in the physics language (constrained decoding makes it so)."""
    return 1.0 if parsed else 0.0
