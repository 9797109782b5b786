"""The renderer's disc fitted to the pixels (physar/evaluation/disc_fit.py)."""

from __future__ import annotations

import numpy as np
import pytest

from physar.evaluation.disc_fit import fit_disc, fit_frames, fit_track, fit_tracks
from physar.evaluation.parse import parse_frames
from simulators.render import render_frames
from simulators.world import FRAME_DT, length_to_world, world_to_pixel

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


def _tracks(radii: tuple[float, float], gravity: float, n: int = 30, seed: int = 2):
    """Three frames of a ball in free flight: per-frame fits and the joint fit, as the worst error
    (pixels) of the displacement across them; the joint fit's worst centre error and its radius error."""
    rng = np.random.default_rng(seed)
    per_frame, joint, centre, radius_error = [], [], [], []
    t = np.arange(3) * FRAME_DT
    for _ in range(n):
        x, y, r, vx = rng.uniform(2.5, 7.5), rng.uniform(2.5, 7.5), rng.uniform(*radii), rng.uniform(-2, 2)
        positions = np.stack([x + vx * t, y + gravity * t**2 / 2], axis=-1)[:, None]
        frames = render_frames(positions, np.array([r]), np.array([RED]), 64)
        truth = np.stack(world_to_pixel(positions[:, 0, 0], positions[:, 0, 1], 64), axis=-1)
        fitted = np.array([fit_disc(frame, RED)[:2] for frame in frames])
        track, radius = fit_track(frames, RED, -gravity * FRAME_DT**2 / length_to_world(1.0, 64))
        per_frame.append(np.abs((fitted[-1] - fitted[0]) - (truth[-1] - truth[0])).max())
        joint.append(np.abs((track[-1] - track[0]) - (truth[-1] - truth[0])).max())
        centre.append(np.abs(track - truth).max())
        radius_error.append(abs(radius - r * 63 / 10))
    return np.array(per_frame), np.array(joint), np.array(centre), np.array(radius_error)


@pytest.mark.parametrize("gravity", [0.0, -2.5])
def test_joint_fit_pins_the_path_where_one_frame_leaves_the_disc_loose(gravity):
    per_frame, joint, centre, radius_error = _tracks((0.7, 1.4), gravity)
    # a frame whose rim holds a pixel or none leaves its own fit a tenth of a pixel loose; the other
    # frames pin it, but for the odd clip whose pixels all leave the path a few hundredths free
    assert np.percentile(per_frame, 90) > 0.05
    assert np.percentile(joint, 90) < 0.005 and joint.max() < per_frame.max() / 2
    assert np.median(centre) < 0.001 and np.median(radius_error) < 0.001


def test_joint_fit_is_no_worse_than_per_frame_fits_on_small_discs():
    per_frame, joint, _, radius_error = _tracks((0.3, 0.45), 0.0, seed=3)  # radius 2-3 px: the inequalities decide
    assert np.median(joint) <= np.median(per_frame) + 0.01
    assert np.median(radius_error) < 0.1


def test_along_a_row_the_fit_reads_no_vertical_drift_and_the_speed_no_worse():
    # three frames of a 2-3 px ball moving along a row leave its free path a tenth of a pixel a frame
    # loose (a read vertical drift a collision turns into a bounce off the line); a scene that fixes
    # the row velocity (uniform, collision) fits the other four unknowns
    rng = np.random.default_rng(4)
    t = np.arange(3) * FRAME_DT
    free, along = [], []
    for _ in range(30):
        x, y, r, vx = rng.uniform(2.5, 7.5), rng.uniform(2.5, 7.5), rng.uniform(0.3, 0.45), rng.uniform(0.5, 6)
        positions = np.stack([x + vx * t, np.full(3, y)], axis=-1)[:, None]
        frames = render_frames(positions, np.array([r]), np.array([RED]), 64)
        for out, horizontal in ((free, False), (along, True)):
            read = fit_tracks(frames, [RED], 0.0, horizontal=horizontal).positions[:, 0]
            v = (read[-1] - read[0]) / (2 * FRAME_DT)
            out.append([abs(v[0] - vx), abs(v[1])])
    free, along = np.array(free), np.array(along)
    assert np.percentile(free[:, 1], 90) > 0.02  # the free fit drifts off the row
    assert along[:, 1].max() < 1e-9  # held at 0
    assert np.mean(along[:, 0]) <= np.mean(free[:, 0]) + 0.005  # the speed no worse (0.039 against 0.041 units/s)
