"""What a scene returns: the full state of every object at every recorded frame."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Ball:
    """Initial state of one ball, in world units (x, y, r) and world units per second (vx, vy)."""

    x: float
    y: float
    vx: float
    vy: float
    r: float
    color: tuple[int, int, int]


@dataclass
class Trajectory:
    """Per frame, per object state of one simulated clip.

    Shapes (T frames, N objects): positions and velocities [T, N, 2], radii and masses [N],
    colors [N, 3]. Frame k is the state at t = k * FRAME_DT. `collisions` lists the contacts
    that began during the clip as (frame, a, b): the contact happened between frames
    frame - 1 and frame, and b == -1 is a wall.
    """

    scene: str
    params: dict
    positions: np.ndarray
    velocities: np.ndarray
    radii: np.ndarray
    masses: np.ndarray
    colors: np.ndarray
    collisions: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def num_objects(self) -> int:
        return self.positions.shape[1]
