"""A sub-pixel reading of the balls in a frame: the renderer's disc fitted to the pixels.

PhyWorld's parser (parse.py) takes a ball's centre as the mean of the pixels past a threshold,
which moves in whole-pixel jumps as the ball slides across the pixel grid. The renderer is
known exactly (simulators/render.py: coverage clip((R^2 - d^2) / (0.03 R^2), 0, 1) of white by
the ball's colour, truncated to uint8), so every pixel says something precise about the disc:

- a pixel the ball covers wholly lies inside, R^2 - d^2 >= 0.03 R^2;
- a white pixel lies outside, R^2 - d^2 <= 0;
- a pixel on the soft rim (0 < coverage < 1) gives R^2 - d^2 = 0.03 R^2 coverage, an equation.

With the disc written as a = 2 cx, b = 2 cy, e = R^2 - cx^2 - cy^2, R^2 - d^2 = a X + b Y + e - (X^2 + Y^2)
is linear in (a, b, e) for a pixel at (X, Y). `fit_disc` starts from the threshold centroid and
moves it the least distance in (a, b, e) that satisfies every pixel, found by least squares over
the rim pixels and the pixels that disagree, repeated until none disagrees (with R^2 in the rim's
targets taken from the last iterate, the set is nearly convex and holds the truth: the projection
is then no further from it than the centroid was). Where the rim holds three pixels or more the
disc is pinned to a thousandth of a pixel; where it holds one or none (balls of 3-5 px radius at
64 px) only the inequalities bound it, to about 0.05-0.1 px (tests/test_disc_fit.py).

Used by `physar.lm.frame_reading.read_state` for the <state> block read from conditioning frames;
the evaluation metric itself stays PhyWorld's threshold parser.
"""

from __future__ import annotations

import numpy as np

from physar.evaluation.parse import ParsedFrames, color_mask, parse_frames
from simulators.render import EDGE_WIDTH
from simulators.world import length_to_world, pixel_to_world

PRIOR_WEIGHT = 1e-6  # pulls the fit towards the threshold centroid only where the pixels leave it free
ITERATIONS = 50


def _coverage_channel(color) -> int:
    """The channel the colour darkens most from white: it carries the coverage."""
    return int(np.argmax(255 - np.asarray(color, dtype=float)))


def fit_disc(frame: np.ndarray, color) -> tuple[float, float, float] | None:
    """One ball of `color` in a uint8 frame [H, W, 3]: (column, row, radius) in pixels, or None
    when the colour is absent. Pixels of other colours are left out (they say nothing of this disc)."""
    frame = np.asarray(frame)
    mask = color_mask(frame, color)
    if not mask.any():
        return None
    rows, cols = np.nonzero(mask)
    col0, row0, radius0 = cols.mean(), rows.mean(), np.sqrt(mask.sum() / np.pi)
    pad = 3
    r_lo, r_hi = max(rows.min() - pad, 0), min(rows.max() + pad + 1, frame.shape[0])
    c_lo, c_hi = max(cols.min() - pad, 0), min(cols.max() + pad + 1, frame.shape[1])
    patch = frame[r_lo:r_hi, c_lo:c_hi].astype(float)
    color = np.asarray(color, dtype=float)
    channel = _coverage_channel(color)
    depth = 255.0 - color[channel]
    coverage = (255.0 - patch[..., channel]) / depth
    # a pixel is white blended with this colour when every channel sits where that blend puts it
    blend = 255.0 - np.clip(coverage, 0, 1)[..., None] * (255.0 - color)
    ours = (np.abs(patch - blend) <= 1.5).all(axis=-1)
    white = (patch == 255).all(axis=-1)
    full = ours & (patch[..., channel] == color[channel])
    rim = ours & ~white & ~full
    # truncation to uint8: value v means coverage in ((254 - v) / depth, (255 - v) / depth]
    rim_coverage = (255.0 - patch[..., channel] - 0.5) / depth

    yy, xx = np.mgrid[r_lo:r_hi, c_lo:c_hi].astype(float)
    xx, yy = xx - col0, yy - row0  # local coordinates keep the system well conditioned
    design = np.stack([xx, yy, np.ones_like(xx)], axis=-1)
    squares = xx**2 + yy**2
    prior = np.array([0.0, 0.0, radius0**2])
    theta = prior.copy()
    for _ in range(ITERATIONS):
        r2 = theta[2] + (theta[0] ** 2 + theta[1] ** 2) / 4
        inner = design @ theta - squares  # R^2 - d^2 at every pixel
        edge = EDGE_WIDTH * r2
        wrong_full = full & (inner < edge * (1 - 1.0 / depth))
        wrong_white = white & (inner > 0)
        active = rim | wrong_full | wrong_white
        target = np.where(rim, edge * rim_coverage, np.where(wrong_full, edge, 0.0))
        a = design[active]
        lhs = a.T @ a + PRIOR_WEIGHT * np.eye(3)
        rhs = a.T @ (target[active] + squares[active]) + PRIOR_WEIGHT * prior
        new = np.linalg.solve(lhs, rhs)
        if np.allclose(new, theta, atol=1e-9):
            break
        theta = new
    dx, dy = theta[0] / 2, theta[1] / 2
    r2 = theta[2] + dx**2 + dy**2
    if not np.isfinite(r2) or r2 <= 0 or abs(dx) > 2 or abs(dy) > 2:
        return float(col0), float(row0), float(radius0)  # the fit ran away: keep the centroid
    return float(col0 + dx), float(row0 + dy), float(np.sqrt(r2))


def fit_frames(frames: np.ndarray, colors) -> ParsedFrames:
    """`parse_frames` with every found ball's centre and radius refined by `fit_disc` (exact mapping)."""
    frames = np.asarray(frames)
    parsed = parse_frames(frames, colors)
    size = frames.shape[2]
    for t in range(len(frames)):
        for i, color in enumerate(colors):
            if not parsed.found[t, i]:
                continue
            col, row, radius = fit_disc(frames[t], color)
            x, y = pixel_to_world(col, row, size)
            parsed.positions[t, i] = (x, y)
            parsed.radii[t, i] = length_to_world(radius, size)
    return parsed
