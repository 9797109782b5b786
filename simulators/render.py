"""The renderer: PhyWorld's soft-edged discs on a white background, at any square size.

Per pixel and ball the coverage is clip((r^2 - d^2) / (0.03 r^2), 0, 1), d the distance from
the ball's centre to the pixel centre, and the ball's colour is blended over what is already
there, in object order. Pixel centres come from `world_to_pixel`, the mapping the parser
inverts, so a rendered ball is parsed back where it was drawn.
"""

from __future__ import annotations

import numpy as np

from .trajectory import Trajectory
from .world import WORLD_SIZE, pixel_to_world

EDGE_WIDTH = 0.03  # PhyWorld's soft edge, as a fraction of r^2


def render_frames(positions: np.ndarray, radii: np.ndarray, colors: np.ndarray, size: int = 64) -> np.ndarray:
    """positions [T, N, 2] (world units), radii [N], colors [N, 3] -> frames uint8 [T, size, size, 3]."""
    if size < 2:
        raise ValueError(f"resolution must be at least 2 pixels, got {size}")
    num_frames = positions.shape[0]
    frames = np.full((num_frames, size, size, 3), 255.0, dtype=np.float32)
    # World coordinates of every pixel centre: x along columns, y along rows (y up).
    xs, _ = pixel_to_world(np.arange(size), 0, size)
    _, ys = pixel_to_world(0, np.arange(size), size)
    xs, ys = xs.astype(np.float32), ys.astype(np.float32)
    scale = (size - 1) / WORLD_SIZE
    for i, r in enumerate(np.asarray(radii, dtype=np.float64)):
        color = np.asarray(colors[i], dtype=np.float32)
        for t in range(num_frames):
            cx, cy = positions[t, i]
            # Only the pixels within the ball's bounding box can be covered.
            c0, c1 = max(int(np.floor((cx - r) * scale)), 0), min(int(np.ceil((cx + r) * scale)) + 1, size)
            r0 = max(int(np.floor((WORLD_SIZE - cy - r) * scale)), 0)
            r1 = min(int(np.ceil((WORLD_SIZE - cy + r) * scale)) + 1, size)
            if c0 >= c1 or r0 >= r1:
                continue
            d2 = (xs[None, c0:c1] - cx) ** 2 + (ys[r0:r1, None] - cy) ** 2
            mask = np.clip((r * r - d2) / (EDGE_WIDTH * r * r), 0.0, 1.0)[..., None]
            patch = frames[t, r0:r1, c0:c1]
            frames[t, r0:r1, c0:c1] = (1.0 - mask) * patch + mask * color
    # PhyWorld casts to uint8 by truncation, not rounding.
    return frames.astype(np.uint8)


def render(trajectory: Trajectory, size: int = 64) -> np.ndarray:
    """A trajectory's frames, uint8 [T, size, size, 3] RGB."""
    return render_frames(trajectory.positions, trajectory.radii, trajectory.colors, size)
