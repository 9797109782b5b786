"""Renderer and parser: a ball drawn at a known place is parsed back there."""

from __future__ import annotations

import numpy as np
import pytest

from physar.evaluation.parse import color_mask, parse_frames
from simulators.render import render, render_frames
from simulators.world import BLUE, PALETTE, RED, WORLD_SIZE, length_to_world, pixel_to_world, world_to_pixel

# (size, max centre error, max radius error) in world units
TOLERANCES = [(64, 0.05, 0.05), (128, 0.02, 0.03), (256, 0.01, 0.03)]


def random_balls(n, seed):
    rng = np.random.default_rng(seed)
    r = rng.uniform(0.4, 1.6, n)
    xy = np.stack([rng.uniform(r, WORLD_SIZE - r), rng.uniform(r, WORLD_SIZE - r)], axis=-1)
    return xy, r


@pytest.mark.parametrize("size,tol_c,tol_r", TOLERANCES)
def test_ball_is_parsed_where_it_was_drawn(size, tol_c, tol_r):
    xy, r = random_balls(60, seed=size)
    for i in range(len(r)):
        frames = render_frames(xy[i][None, None], r[i:i + 1], np.array([RED]), size)
        assert frames.shape == (1, size, size, 3) and frames.dtype == np.uint8
        parsed = parse_frames(frames, [RED], "exact")
        assert parsed.found[0, 0]
        assert np.abs(parsed.positions[0, 0] - xy[i]).max() < tol_c, (size, xy[i], parsed.positions[0, 0])
        assert abs(parsed.radii[0, 0] - r[i]) < tol_r, (size, r[i], parsed.radii[0, 0])


def test_centre_error_shrinks_with_resolution():
    xy, r = random_balls(40, seed=1)
    worst = {}
    for size in (64, 256):
        errs = []
        for i in range(len(r)):
            p = parse_frames(render_frames(xy[i][None, None], r[i:i + 1], np.array([RED]), size), [RED])
            errs.append(np.abs(p.positions[0, 0] - xy[i]).max())
        worst[size] = max(errs)
    assert worst[256] < worst[64] / 2


@pytest.mark.parametrize("size", [64, 128, 256])
def test_phyworld_convention_scales_by_w_minus_1_over_w(size):
    xy, r = random_balls(10, seed=size + 1)
    frames = render_frames(xy[:, None, :], r[:1], np.array([RED]), size)  # one ball, 10 frames
    exact = parse_frames(frames, [RED], "exact")
    phy = parse_frames(frames, [RED], "phyworld")
    k = (size - 1) / size
    np.testing.assert_allclose(phy.positions, exact.positions * k, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(phy.radii, exact.radii * k, rtol=1e-12)
    # so the phyworld convention underestimates x by x / W: visible in a ball on the right
    assert np.all(phy.positions[..., 0] < exact.positions[..., 0])


def test_unknown_convention_raises():
    with pytest.raises(ValueError, match="convention"):
        world_to_pixel(1.0, 1.0, 64, "other")


@pytest.mark.parametrize("convention", ["exact", "phyworld"])
@pytest.mark.parametrize("size", [16, 64, 255, 256])
def test_world_pixel_mappings_are_inverses(size, convention):
    rng = np.random.default_rng(size)
    x, y = rng.uniform(0, 10, 100), rng.uniform(0, 10, 100)
    col, row = world_to_pixel(x, y, size, convention)
    x2, y2 = pixel_to_world(col, row, size, convention)
    np.testing.assert_allclose(x2, x, atol=1e-12)
    np.testing.assert_allclose(y2, y, atol=1e-12)
    cols, rows = rng.uniform(0, size - 1, 50), rng.uniform(0, size - 1, 50)
    c2, r2 = world_to_pixel(*pixel_to_world(cols, rows, size, convention), size, convention)
    np.testing.assert_allclose(c2, cols, atol=1e-9)
    np.testing.assert_allclose(r2, rows, atol=1e-9)


def test_world_pixel_mapping_corners():
    # exact: pixel centres span the world; y up, row 0 at the top
    assert np.allclose(world_to_pixel(0.0, 0.0, 64), (0.0, 63.0))
    assert np.allclose(world_to_pixel(10.0, 10.0, 64), (63.0, 0.0))
    assert np.allclose(pixel_to_world(63, 63, 64, "phyworld"), (63 * 10 / 64, 0.0))
    assert np.isclose(length_to_world(6.3, 64), 1.0)


def test_render_draws_ball_top_left_with_y_up():
    frames = render_frames(np.array([[[2.0, 8.0]]]), np.array([1.0]), np.array([RED]), 64)[0]
    ys, xs = np.nonzero(color_mask(frames, RED))
    assert xs.mean() < 32 and ys.mean() < 32  # high y is near the top of the image
    assert tuple(frames[0, 63]) == (255, 255, 255)  # far corner untouched


def test_red_and_blue_balls_are_parsed_separately():
    pos = np.array([[[3.0, 5.0], [7.0, 5.0]], [[4.0, 5.1], [6.1, 5.1]]])  # two frames; then 0.1 apart
    radii = np.array([0.8, 1.2])
    frames = render_frames(pos, radii, np.array([RED, BLUE]), 128)
    parsed = parse_frames(frames, [RED, BLUE])
    assert parsed.found.all()
    np.testing.assert_allclose(parsed.positions, pos, atol=0.03)
    np.testing.assert_allclose(parsed.radii, np.broadcast_to(radii, (2, 2)), atol=0.03)
    # each mask sees only its own colour
    red, blue = color_mask(frames, RED), color_mask(frames, BLUE)
    assert not (red & blue).any()
    assert red.sum() < blue.sum()  # the blue ball is the bigger one


def test_palette_colours_are_told_apart():
    rng = np.random.default_rng(3)
    n = len(PALETTE) - 1  # all but black, which a 2x2 grid of 3 balls would not need
    pos = np.array([[[1.5 + 2.3 * (i % 4), 2.5 + 5 * (i // 4)] for i in range(n)]])
    radii = rng.uniform(0.6, 0.9, n)
    frames = render_frames(pos, radii, np.array(PALETTE[:n]), 128)
    parsed = parse_frames(frames, PALETTE[:n])
    assert parsed.found.all()
    np.testing.assert_allclose(parsed.positions, pos, atol=0.03)


def test_empty_frame_is_not_found():
    frames = np.full((3, 64, 64, 3), 255, dtype=np.uint8)
    parsed = parse_frames(frames, [RED, BLUE])
    assert not parsed.found.any()
    assert np.isnan(parsed.positions).all() and np.isnan(parsed.radii).all()


def test_ball_missing_in_one_frame_only():
    pos = np.array([[[5.0, 5.0]], [[-5.0, 5.0]], [[5.0, 5.0]]])  # frame 1: far outside the view
    frames = render_frames(pos, np.array([1.0]), np.array([RED]), 64)
    parsed = parse_frames(frames, [RED])
    assert parsed.found[:, 0].tolist() == [True, False, True]
    assert np.isnan(parsed.positions[1]).all() and np.isfinite(parsed.positions[[0, 2]]).all()
    assert (frames[1] == 255).all()


def test_non_square_frames_rejected():
    with pytest.raises(ValueError, match="square"):
        parse_frames(np.full((1, 32, 64, 3), 255, np.uint8), [RED])


def test_render_trajectory_matches_render_frames():
    from simulators.scenes import get_scene

    traj = get_scene("collision").simulate({"r1": 1.0, "r2": 0.8, "v1": 2.0, "v2": 3.0}, np.random.default_rng(0))
    frames = render(traj, 64)
    assert frames.shape == (traj.num_frames, 64, 64, 3)
    assert np.array_equal(frames, render_frames(traj.positions, traj.radii, traj.colors, 64))
    parsed = parse_frames(frames, traj.colors.tolist())
    x, r = traj.positions[..., 0], traj.radii
    visible = (x + r > 0) & (x - r < WORLD_SIZE)  # some part of the ball in view
    assert np.array_equal(parsed.found, visible)
    assert not visible[-1, 1]  # the blue ball has left through the right edge by the end
    # Where the balls overlap (the contact frame) the blend hides part of one of them; in the
    # other frames with both balls wholly in view every centre is parsed back within 0.05.
    inside = np.all((x - r >= 0) & (x + r <= WORLD_SIZE), axis=1)
    inside[traj.collisions[0][0]] = False
    assert inside.sum() >= 10
    assert np.abs(parsed.positions[inside] - traj.positions[inside]).max() < 0.05


def test_render_rejects_tiny_size():
    with pytest.raises(ValueError):
        render_frames(np.zeros((1, 1, 2)), np.array([1.0]), np.array([RED]), 1)
