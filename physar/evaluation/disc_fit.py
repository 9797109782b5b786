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

`fit_track` fits a ball's conditioning frames together: one radius and one path in free flight
(constant velocity, plus the scene's known gravity), so the frames whose rims pin the disc pin the
others. The unknowns are no longer linear in the pixels' equations; Gauss-Newton over the same
active pixels, from a few starts around the per-frame fits' line, finds the path.
`python benchmarks/reader_precision.py --count 60` (eval clips, 64 px; velocity error, largest
component, units/s, median / 95th percentile; per-frame fit -> joint fit): uniform 0.0002 / 0.096 ->
0.0001 / 0.035; collision 0.034 / 0.140 -> 0.0003 / 0.132; parabola 0.0126 / 0.082 -> 0.0125 / 0.033
(pymunk's recorded velocity is 0.0125 from the mean step), its zero-velocity drops 0.045 -> 0.013.
Balls of 2-3 px radius (r_out 0.3-0.4) are left a few hundredths of a pixel free even so.

`fit_tracks` (joint) is what `physar.lm.frame_reading.read_state` uses for the <state> block read
from the conditioning frames; the evaluation metric itself stays PhyWorld's threshold parser.
"""

from __future__ import annotations

import numpy as np

from physar.evaluation.parse import ParsedFrames, color_mask, parse_frames
from simulators.render import EDGE_WIDTH
from simulators.world import FRAME_DT, length_to_world, pixel_to_world

PRIOR_WEIGHT = 1e-6  # pulls the fit towards the threshold centroid only where the pixels leave it free
ITERATIONS = 50
START_OFFSETS = [np.array([dc, dr]) for dc in (-0.15, 0.0, 0.15) for dr in (-0.15, 0.0, 0.15) if dc or dr]


def _coverage_channel(color) -> int:
    """The channel the colour darkens most from white: it carries the coverage."""
    return int(np.argmax(255 - np.asarray(color, dtype=float)))


class _Pixels:
    """What a frame's pixels say about one ball's disc, in a patch around its threshold mask:
    each pixel's column and row (X, Y), and whether it is wholly covered (full), white, or on the
    soft rim with a known coverage (R^2 - d^2 = EDGE_WIDTH R^2 coverage)."""

    def __init__(self, frame: np.ndarray, color, mask: np.ndarray):
        rows, cols = np.nonzero(mask)
        self.centroid = np.array([cols.mean(), rows.mean()])
        self.radius = float(np.sqrt(mask.sum() / np.pi))
        pad = 3
        r_lo, r_hi = max(rows.min() - pad, 0), min(rows.max() + pad + 1, frame.shape[0])
        c_lo, c_hi = max(cols.min() - pad, 0), min(cols.max() + pad + 1, frame.shape[1])
        patch = frame[r_lo:r_hi, c_lo:c_hi].astype(float)
        color = np.asarray(color, dtype=float)
        channel = _coverage_channel(color)
        self.depth = 255.0 - color[channel]
        coverage = (255.0 - patch[..., channel]) / self.depth
        # a pixel is white blended with this colour when every channel sits where that blend puts it
        blend = 255.0 - np.clip(coverage, 0, 1)[..., None] * (255.0 - color)
        ours = (np.abs(patch - blend) <= 1.5).all(axis=-1)
        self.white = (patch == 255).all(axis=-1).ravel()
        self.full = (ours & (patch[..., channel] == color[channel])).ravel()
        self.rim = (ours & ~(patch == 255).all(axis=-1)).ravel() & ~self.full
        # truncation to uint8: value v means coverage in ((254 - v) / depth, (255 - v) / depth]
        self.rim_coverage = ((255.0 - patch[..., channel] - 0.5) / self.depth).ravel()
        yy, xx = np.mgrid[r_lo:r_hi, c_lo:c_hi].astype(float)
        self.X, self.Y = xx.ravel(), yy.ravel()

    def targets(self, inner: np.ndarray, r2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Given R^2 - d^2 at every pixel for a disc of radius^2 r2: which pixels disagree with it or
        pin it (active), what R^2 - d^2 they ask for, and that target's derivative in R^2."""
        edge = EDGE_WIDTH * r2
        wrong_full = self.full & (inner < edge * (1 - 1.0 / self.depth))
        wrong_white = self.white & (inner > 0)
        active = self.rim | wrong_full | wrong_white
        slope = np.where(self.rim, EDGE_WIDTH * self.rim_coverage, np.where(wrong_full, EDGE_WIDTH, 0.0))
        return active, slope * r2, slope


def fit_disc(frame: np.ndarray, color) -> tuple[float, float, float] | None:
    """One ball of `color` in a uint8 frame [H, W, 3]: (column, row, radius) in pixels, or None
    when the colour is absent. Pixels of other colours are left out (they say nothing of this disc)."""
    frame = np.asarray(frame)
    mask = color_mask(frame, color)
    if not mask.any():
        return None
    return _fit_pixels(_Pixels(frame, color, mask))


def _fit_pixels(px: _Pixels) -> tuple[float, float, float]:
    """`fit_disc` on a frame's pixels already classified."""
    col0, row0 = px.centroid
    xx, yy = px.X - col0, px.Y - row0  # local coordinates keep the system well conditioned
    design = np.stack([xx, yy, np.ones_like(xx)], axis=-1)
    squares = xx**2 + yy**2
    prior = np.array([0.0, 0.0, px.radius**2])
    theta = prior.copy()
    for _ in range(ITERATIONS):
        r2 = theta[2] + (theta[0] ** 2 + theta[1] ** 2) / 4
        active, target, _ = px.targets(design @ theta - squares, r2)  # R^2 - d^2 at every pixel
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
        return float(col0), float(row0), float(px.radius)  # the fit ran away: keep the centroid
    return float(col0 + dx), float(row0 + dy), float(np.sqrt(r2))


def fit_track(frames: np.ndarray, color, row_acceleration: float = 0.0,
              row_velocity: float | None = None) -> tuple[np.ndarray, float] | None:
    """One ball of `color` over frames [T, H, W, 3] that it crosses in free flight: its centres
    [T, 2] (column, row) on the path c(t) = c0 + v t + (0, a t^2 / 2) (t in frames, `row_acceleration`
    a in rows per frame^2, known), and its one radius, both in pixels; None when a frame lacks the
    colour. Every frame's pixels (`fit_disc`'s equations and inequalities) constrain the five
    unknowns (c0, v, R^2) together, by Gauss-Newton over the pixels that pin or contradict the disc:
    where one frame's rim holds a pixel or none, the others' pin the path. `row_velocity` (rows per
    frame at the first frame), when the scene fixes it, is held rather than fitted: four unknowns."""
    frames = np.asarray(frames)
    masks = color_mask(frames, color)
    if not masks.any(axis=(1, 2)).all():
        return None
    pixels = [_Pixels(frame, color, mask) for frame, mask in zip(frames, masks)]
    t = np.arange(len(frames), dtype=float)
    fitted = np.array([_fit_pixels(px) for px in pixels])  # the start: per-frame fits
    if len(t) == 1:
        return fitted[:, :2], float(fitted[0, 2])
    # the line through them (rows less the known fall)
    v_col, c_col = np.polyfit(t, fitted[:, 0], 1)
    rows = fitted[:, 1] - row_acceleration * t**2 / 2
    free = np.ones(5, dtype=bool)  # c_col, c_row, v_col, v_row, R^2
    if row_velocity is None:
        v_row, c_row = np.polyfit(t, rows, 1)
    else:
        v_row, c_row, free[3] = row_velocity, np.mean(rows - row_velocity * t), False
    theta = np.array([c_col, c_row, v_col, v_row, np.mean(fitted[:, 2] ** 2)])
    origin = theta.copy()

    def residuals(theta, jacobian=True):
        """The active pixels' residuals (rim equations, broken inequalities) and their Jacobian."""
        jac, res = [], []
        for k, px in enumerate(pixels):
            col = theta[0] + theta[2] * t[k]
            row = theta[1] + theta[3] * t[k] + row_acceleration * t[k] ** 2 / 2
            dx, dy = px.X - col, px.Y - row
            inner = theta[4] - dx**2 - dy**2
            active, target, slope = px.targets(inner, theta[4])
            res.append((inner - target)[active])
            if jacobian:  # d inner / d (c_col, c_row, v_col, v_row, R^2), less d target / d R^2
                jac.append(np.stack([2 * dx, 2 * dy, 2 * dx * t[k], 2 * dy * t[k], 1 - slope], axis=-1)[active])
        return np.concatenate(res), np.concatenate(jac) if jacobian else None

    def cost(theta):
        res, _ = residuals(theta, jacobian=False)
        return float(res @ res + PRIOR_WEIGHT * (theta - origin) @ (theta - origin))

    def descend(theta):
        for _ in range(ITERATIONS):
            res, jac = residuals(theta)
            jac = jac[:, free]
            lhs = jac.T @ jac + PRIOR_WEIGHT * np.eye(free.sum())
            step = np.zeros(5)
            step[free] = -np.linalg.solve(lhs, jac.T @ res + PRIOR_WEIGHT * (theta - origin)[free])
            # the active set changes as the disc moves: halve a step that does not lower the cost
            now = cost(theta)
            for _ in range(20):
                if cost(theta + step) <= now:
                    break
                step = step / 2
            theta = theta + step
            if np.abs(step).max() < 1e-9:
                break
        return theta

    # the white pixels' constraints are not convex in the centre: a descent can stop short of the
    # path; starts around the per-frame fits' line find it
    starts = [origin] + [origin + np.r_[d, 0.0, 0.0, 0.0] for d in START_OFFSETS]
    theta = min((descend(start) for start in starts), key=cost)
    if not np.isfinite(theta).all() or theta[4] <= 0 or np.abs(theta[:2] - origin[:2]).max() > 2:
        return fitted[:, :2], float(np.mean(fitted[:, 2]))  # the fit ran away: keep the per-frame fits
    centres = np.stack([theta[0] + theta[2] * t, theta[1] + theta[3] * t + row_acceleration * t**2 / 2], axis=-1)
    return centres, float(np.sqrt(theta[4]))


def fit_frames(frames: np.ndarray, colors) -> ParsedFrames:
    """`parse_frames` with every found ball's centre and radius refined by `fit_disc` (exact mapping)."""
    return _refine(frames, colors, gravity=None)


def fit_tracks(frames: np.ndarray, colors, gravity: float = 0.0, horizontal: bool = False) -> ParsedFrames:
    """`fit_frames` with each ball's frames fitted together by `fit_track` (free flight under the known
    `gravity`, world units / s^2, at FRAME_DT a frame), for balls found in every frame; the others
    as `fit_frames` reads them. For conditioning frames, which hold no collision. `horizontal`: the
    scene moves its balls along rows (vertical velocity 0 at the first frame), so only the rest is fitted."""
    return _refine(frames, colors, gravity, horizontal)


def _refine(frames: np.ndarray, colors, gravity: float | None, horizontal: bool = False) -> ParsedFrames:
    """The threshold parser's reading with each ball fitted: over all frames at once under `gravity`
    where the ball is found in every frame, frame by frame otherwise (or when `gravity` is None)."""
    frames = np.asarray(frames)
    parsed = parse_frames(frames, colors)
    size = frames.shape[2]

    def store(t, i, col, row, radius):
        x, y = pixel_to_world(col, row, size)
        parsed.positions[t, i] = np.stack([x, y], axis=-1)
        parsed.radii[t, i] = length_to_world(radius, size)

    for i, color in enumerate(colors):
        if gravity is not None and parsed.found[:, i].all():
            row_acceleration = -gravity * FRAME_DT**2 / length_to_world(1.0, size)  # rows grow downwards
            centres, radius = fit_track(frames, color, row_acceleration, 0.0 if horizontal else None)
            store(slice(None), i, centres[:, 0], centres[:, 1], radius)
        else:
            for t in np.flatnonzero(parsed.found[:, i]):
                store(t, i, *fit_disc(frames[t], color))
    return parsed
