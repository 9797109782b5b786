"""The scenes: each turns a few physical parameters into initial balls, then simulates them.

Placement follows PhyWorld's generators (research/phyworld.md, section 1.2), so that every
clip keeps its balls in view long enough to be measured:

- uniform: one red ball moving right at v; starts far enough left to stay in view 24 frames.
- collision: red ball (r1, +v1) on the left, blue ball (r2, -v2) on the right, same height,
  at least 8 frames before the collision and at least 8 after it.
- parabola: one red ball thrown right at v under gravity -2.5, starting near the top.
- box: n balls of the palette in a walled box, random directions, optional gravity.

A scene function draws its random placement from the `rng` it is given and nothing else,
so one seed gives one clip whatever the order or the process it runs in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .physics import simulate
from .trajectory import Ball, Trajectory
from .world import BLUE, FRAME_DT, GRAVITY_PARABOLA, NUM_FRAMES, PALETTE, RED, WORLD_SIZE

MARGIN = 0.05 * WORLD_SIZE  # PhyWorld's eps: keep balls this far from the top and bottom
MIN_VISIBLE_FRAMES = 24  # a single ball stays fully in view this many frames (if it can)
MIN_PRE_FRAMES = 8  # frames before a collision
MIN_POST_FRAMES = 8  # frames after a collision


class PlacementError(ValueError):
    """These parameters admit no placement that satisfies the scene's rules."""


@dataclass(frozen=True)
class Scene:
    name: str
    params: tuple[str, ...]  # the parameters a recipe must give
    place: Callable[[dict, np.random.Generator, int], list[Ball]]  # (params, rng, num_frames)
    gravity: Callable[[dict], float]
    walls: bool
    description: str

    def simulate(self, params: dict, rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> Trajectory:
        balls = self.place(params, rng, num_frames)
        return simulate(self.name, dict(params), balls, self.gravity(params), self.walls, num_frames)


def _start_x(r: float, v: float, rng: np.random.Generator) -> float:
    """PhyWorld's start x for a ball moving right: in view for MIN_VISIBLE_FRAMES if it can be."""
    high = WORLD_SIZE - (MIN_VISIBLE_FRAMES * v * FRAME_DT + r)
    if high < r:  # too fast or too big to stay in view that long: start at the left edge
        high = r + rng.uniform(0.0, MARGIN)
    return rng.uniform(r, high)


def place_uniform(p: dict, rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> list[Ball]:
    r, v = p["r"], p["v"]
    x = _start_x(r, v, rng)
    y = rng.uniform(r + MARGIN, WORLD_SIZE - MARGIN - r)
    return [Ball(x, y, v, 0.0, r, RED)]


def place_parabola(p: dict, rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> list[Ball]:
    r, v = p["r"], p["v"]
    x = _start_x(r, v, rng)
    y = rng.uniform(WORLD_SIZE - 3 * MARGIN - r, WORLD_SIZE - MARGIN - r)  # [8.5 - r, 9.5 - r]
    return [Ball(x, y, v, 0.0, r, RED)]


def place_collision(p: dict, rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> list[Ball]:
    """PhyWorld's rule: the centre distance leaves >= 8 frames before and >= 8 after the collision
    within the clip's `num_frames`."""
    r1, r2, v1, v2 = p["r1"], p["r2"], p["v1"], p["v2"]
    closing = v1 + v2  # speed at which the gap closes
    min_dist = MIN_PRE_FRAMES * FRAME_DT * closing + r1 + r2
    max_dist = min((num_frames - MIN_POST_FRAMES) * FRAME_DT * closing + r1 + r2, WORLD_SIZE - r1 - r2)
    if closing <= 0:
        raise PlacementError(f"balls never meet (v1 + v2 = {closing:g})")
    if min_dist > max_dist:
        raise PlacementError(
            f"no room for {MIN_PRE_FRAMES} frames before the collision "
            f"(r1={r1:g}, r2={r2:g}, v1={v1:g}, v2={v2:g})"
        )
    # min_dist <= max_dist <= 10 - r1 - r2, so x1's range is never empty and the gap
    # dist - r1 - r2 always takes at least MIN_PRE_FRAMES to close.
    dist = rng.uniform(min_dist, max_dist)
    x1 = rng.uniform(r1, WORLD_SIZE - r2 - dist)
    x2 = x1 + dist
    rmax = max(r1, r2)
    y = rng.uniform(rmax + MARGIN, WORLD_SIZE - MARGIN - rmax)
    return [Ball(x1, y, v1, 0.0, r1, RED), Ball(x2, y, -v2, 0.0, r2, BLUE)]


def place_box(p: dict, rng: np.random.Generator, num_frames: int = NUM_FRAMES) -> list[Ball]:
    """n non-overlapping balls anywhere in the box, speeds in [v_min, v_max], any direction."""
    n = int(p["n"])
    if not 1 <= n <= len(PALETTE):
        raise PlacementError(f"box holds 1 to {len(PALETTE)} balls (one colour each), got n={n}")
    balls: list[Ball] = []
    for i in range(n):
        r = rng.uniform(p["r_min"], p["r_max"])
        for _ in range(200):
            x, y = rng.uniform(r, WORLD_SIZE - r, size=2)
            if all(math.hypot(x - b.x, y - b.y) > r + b.r + 0.05 for b in balls):
                break
        else:
            raise PlacementError(f"cannot fit {n} balls of radius up to {p['r_max']:g} in the box")
        speed = rng.uniform(p["v_min"], p["v_max"])
        angle = rng.uniform(0.0, 2 * math.pi)
        balls.append(Ball(x, y, speed * math.cos(angle), speed * math.sin(angle), r, PALETTE[i]))
    return balls


SCENES: dict[str, Scene] = {
    s.name: s
    for s in [
        Scene("uniform", ("r", "v"), place_uniform, lambda p: 0.0, False, "one ball in uniform linear motion"),
        Scene("collision", ("r1", "r2", "v1", "v2"), place_collision, lambda p: 0.0, False,
              "head-on elastic collision of two balls"),
        Scene("parabola", ("r", "v"), place_parabola, lambda p: GRAVITY_PARABOLA, False,
              "one ball thrown horizontally under gravity -2.5"),
        Scene("box", ("n", "r_min", "r_max", "v_min", "v_max", "gravity"), place_box,
              lambda p: float(p["gravity"]), True, "several balls bouncing in a walled box"),
    ]
}


def get_scene(name: str) -> Scene:
    if name not in SCENES:
        raise ValueError(f"unknown scene {name!r}; known scenes: {', '.join(SCENES)}")
    return SCENES[name]


def initial_speeds_and_radii(scene: str, params: dict, traj: Trajectory) -> tuple[list[float], list[float]]:
    """The per-ball (speeds, radii) that decide a clip's ID/OOD bucket, as PhyWorld defines them."""
    if scene in ("uniform", "parabola"):
        return [params["v"]], [params["r"]]
    if scene == "collision":
        return [params["v1"], params["v2"]], [params["r1"], params["r2"]]
    speeds = np.hypot(traj.velocities[0, :, 0], traj.velocities[0, :, 1])
    return [float(s) for s in speeds], [float(r) for r in traj.radii]
