"""PhyWorld's parser: find each ball by its colour in every frame (research/phyworld.md 3.1).

A pixel belongs to a ball of colour c when every channel is on c's side of 127 (for red:
R > 127, G < 127, B < 127). The ball is found when at least one pixel matches; its centre is
the mean column and row of the matching pixels and its radius sqrt(area / pi), mapped to
world units with `pixel_to_world` under the chosen convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulators.world import length_to_world, pixel_to_world

THRESHOLD = 127


@dataclass
class ParsedFrames:
    """positions [T, N, 2] and radii [T, N] in world units (NaN where not found); found [T, N]."""

    positions: np.ndarray
    radii: np.ndarray
    found: np.ndarray


def color_mask(frames: np.ndarray, color) -> np.ndarray:
    """Pixels of `color` in uint8 frames [..., H, W, 3] -> bool [..., H, W]."""
    mask = np.ones(frames.shape[:-1], dtype=bool)
    for ch, value in enumerate(color):
        channel = frames[..., ch]
        mask &= (channel > THRESHOLD) if value > THRESHOLD else (channel < THRESHOLD)
    return mask


def parse_frames(frames: np.ndarray, colors, convention: str = "exact") -> ParsedFrames:
    """Locate the ball of each colour in uint8 RGB frames [T, H, W, 3] (square)."""
    frames = np.asarray(frames)
    num_frames, height, width, _ = frames.shape
    if height != width:
        raise ValueError(f"frames must be square, got {height}x{width}")
    n = len(colors)
    positions = np.full((num_frames, n, 2), np.nan)
    radii = np.full((num_frames, n), np.nan)
    found = np.zeros((num_frames, n), dtype=bool)
    cols, rows = np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64)
    for i, color in enumerate(colors):
        mask = color_mask(frames, color)
        area = mask.sum(axis=(1, 2)).astype(np.float64)
        hit = area > 0
        safe = np.where(hit, area, 1.0)
        col = mask.sum(axis=1) @ cols / safe  # mean column of the ball's pixels
        row = mask.sum(axis=2) @ rows / safe  # mean row
        x, y = pixel_to_world(col, row, width, convention)
        positions[hit, i, 0], positions[hit, i, 1] = x[hit], y[hit]
        radii[hit, i] = length_to_world(np.sqrt(area[hit] / np.pi), width, convention)
        found[:, i] = hit
    return ParsedFrames(positions, radii, found)


def touches_border(frames: np.ndarray, colors) -> bool:
    """Whether a ball of any of `colors` reaches the image border in any frame: partly out of view,
    so its parsed centre (the mean of its visible pixels) is pulled inwards."""
    for color in colors:
        mask = color_mask(frames, color)
        if mask[..., 0, :].any() or mask[..., -1, :].any() or mask[..., :, 0].any() or mask[..., :, -1].any():
            return True
    return False
