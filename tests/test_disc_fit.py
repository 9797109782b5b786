"""The renderer's disc fitted to the pixels (physar/evaluation/disc_fit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from physar.evaluation.disc_fit import fit_disc, fit_frames
from physar.evaluation.parse import parse_frames
from simulators.render import render_frames
from simulators.world import world_to_pixel

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _errors(size: int, radii: tuple[float, float], color=RED, n: int = 60, seed: int = 0):
    """Centre errors in pixels of the threshold centroid and of the fit, on discs drawn at random."""
    rng = np.random.default_rng(seed)
    centroid, fitted, radius = [], [], []
    for _ in range(n):
        x, y, r = rng.uniform(2.5, 7.5), rng.uniform(2.5, 7.5), rng.uniform(*radii)
        frame = render_frames(np.array([[[x, y]]]), np.array([r]), np.array([color]), size)[0]
        col, row = world_to_pixel(x, y, size)
        parsed = parse_frames(frame[None], [color])
        pcol, prow = world_to_pixel(*parsed.positions[0, 0], size)
        centroid.append(np.hypot(pcol - col, prow - row))
        fcol, frow, fr = fit_disc(frame, color)
        fitted.append(np.hypot(fcol - col, frow - row))
        radius.append(abs(fr - r * (size - 1) / 10))
    return np.array(centroid), np.array(fitted), np.array(radius)


@pytest.mark.parametrize("color", [RED, BLUE])
def test_fit_reads_in_distribution_discs_far_below_a_pixel(color):
    centroid, fitted, radius = _errors(64, (0.7, 1.4), color)
    # the threshold centroid moves in pixel jumps: a twentieth of a pixel off and more
    assert np.median(centroid) > 0.03
    # the rim pixels pin the disc: typically a thousandth of a pixel
    assert np.median(fitted) < 0.005 and np.median(radius) < 0.005
    assert np.mean(fitted) < np.mean(centroid) / 3


def test_fit_is_never_much_worse_than_the_centroid_on_small_discs():
    centroid, fitted, _ = _errors(64, (0.3, 0.6), seed=1)  # few rim pixels: the inequalities decide
    assert np.median(fitted) < np.median(centroid)
    assert np.percentile(fitted, 95) <= np.percentile(centroid, 95) + 0.02


def test_fit_frames_keeps_what_the_parser_did_not_find():
    frames = render_frames(np.array([[[5.13, 4.71]]]), np.array([1.07]), np.array([RED]), 64)  # no blue ball
    fitted = fit_frames(frames, [RED, BLUE])
    assert fitted.found[0].tolist() == [True, False]
    assert np.isnan(fitted.positions[0, 1]).all()
    assert fitted.positions[0, 0] == pytest.approx([5.13, 4.71], abs=1e-3)
    assert fitted.radii[0, 0] == pytest.approx(1.07, abs=1e-3)
