"""PhyWorld's world: the constants every scene, the renderer and the parser share.

The world is a 10 x 10 square, y up. Physics steps every 0.01 s and a frame is kept every
0.1 s. A frame of W x W pixels shows the whole square; pixel centres sit at 10 * i / (W - 1)
world units (the renderer's convention, `exact`). PhyWorld's evaluator reads pixel i as
10 * i / W instead (`phyworld`), which scales parsed speeds by (W - 1) / W; that convention is
kept only so our numbers can be compared with the paper's.
"""

from __future__ import annotations

import numpy as np

WORLD_SIZE = 10.0  # world units per side
PHYSICS_DT = 0.01  # seconds per physics step
STEPS_PER_FRAME = 10  # physics steps between two recorded frames
FRAME_DT = PHYSICS_DT * STEPS_PER_FRAME  # 0.1 s
NUM_FRAMES = 32
CONDITIONING_FRAMES = 3
GRAVITY_PARABOLA = -2.5  # PhyWorld's vertical acceleration, world units / s^2

WHITE = (255, 255, 255)
RED = (255, 0, 0)
BLUE = (0, 0, 255)
# Saturated colours only: each differs from white and from the others in a channel that
# PhyWorld's threshold (> 127 / < 127) separates, so the parser tells them apart exactly.
PALETTE = (RED, BLUE, (0, 255, 0), (255, 255, 0), (255, 0, 255), (0, 255, 255), (0, 0, 0))

CONVENTIONS = ("exact", "phyworld")


def _pixel_scale(size: int, convention: str) -> float:
    """World units per pixel step."""
    if convention == "exact":
        return WORLD_SIZE / (size - 1)
    if convention == "phyworld":
        return WORLD_SIZE / size
    raise ValueError(f"unknown pixel convention {convention!r}; expected one of {CONVENTIONS}")


def world_to_pixel(x, y, size: int, convention: str = "exact"):
    """World (x, y) -> image (column, row), row 0 at the top of the image."""
    s = _pixel_scale(size, convention)
    return np.asarray(x) / s, (size - 1) - np.asarray(y) / s


def pixel_to_world(col, row, size: int, convention: str = "exact"):
    """Image (column, row) -> world (x, y); the inverse of `world_to_pixel`."""
    s = _pixel_scale(size, convention)
    return np.asarray(col) * s, ((size - 1) - np.asarray(row)) * s


def length_to_world(pixels, size: int, convention: str = "exact"):
    """A length in pixels (a radius) -> world units."""
    return np.asarray(pixels) * _pixel_scale(size, convention)
