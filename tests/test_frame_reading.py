"""The <state> block read from the conditioning frames by the parser (physar/lm/frame_reading.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import trajectories

from physar.language import PhysicsLanguage
from physar.lm.frame_reading import read_state
from simulators.render import render, render_frames

COND = 3


@pytest.mark.parametrize("scene", ["uniform", "collision", "parabola"])
def test_parser_reads_the_state_the_simulator_wrote(scene):
    errors = {"position": [], "velocity": [], "radius": [], "step": []}
    read = 0
    for plan, traj, bucket in trajectories(scene, "eval")[:20]:
        frames = render(traj, 64)[:COND]
        state = read_state(frames, scene)
        if state is None:  # a ball at the border
            continue
        read += 1
        assert [list(c) for c in traj.colors] == state["colors"]  # the datasets' order: palette order
        errors["position"].append(np.abs(np.asarray(state["positions"][-1]) - traj.positions[COND - 1]).max())
        errors["velocity"].append(np.abs(np.asarray(state["velocities"][-1]) - traj.velocities[COND - 1]).max())
        errors["radius"].append(np.abs(np.asarray(state["radii"]) - traj.radii).max())
        # frame_acceleration's block: the step into the last frame
        errors["step"].append(np.abs(np.asarray(state["last_steps"]) - np.diff(traj.positions, axis=0)[COND - 2]).max())
        # the block it makes is one the language reads back
        lang = PhysicsLanguage(48, 4, decimals=3, frame_displacement=True)
        tokens = lang.state_block(state, COND - 1)
        assert tokens[0] == "<state>" and tokens.count("<obj>") == len(traj.colors)
    assert read >= 10
    # a pixel at 64 px is 0.16 units: the threshold centroid read centres to 0.01 and velocities to
    # 0.06-0.09 units/s from three frames (the LM's own reading: 0.5-0.65, docs/results_v2.md); the
    # renderer's disc fitted to the pixels of the three frames together (disc_fit.py fit_track) reads
    # them to a thousandth, collision's smaller balls too (fitted frame by frame: 0.004 and 0.035)
    assert np.median(errors["position"]) < 0.001 and np.median(errors["radius"]) < 0.001
    # parabola: pymunk's recorded velocity is 0.0125 off the mean step
    assert np.median(errors["velocity"]) < (0.02 if scene == "parabola" else 0.005)
    # a step is a tenth of a velocity; parabola: gravity moves the mean step on to the last one (without it 0.0125 off)
    assert np.median(errors["step"]) < 0.001

def test_no_state_when_a_ball_is_cut_by_the_border_or_absent():
    positions = np.array([[[0.3, 5.0]], [[0.6, 5.0]], [[0.9, 5.0]]])  # radius 1: past the left edge
    frames = render_frames(positions, np.array([1.0]), np.array([[255, 0, 0]]), 64)
    assert read_state(frames, "uniform") is None
    assert read_state(np.full((3, 64, 64, 3), 255, np.uint8), "uniform") is None
    inside = render_frames(positions + [4.0, 0.0], np.array([1.0]), np.array([[255, 0, 0]]), 64)
    state = read_state(inside, "uniform")
    assert state is not None and state["velocities"][-1][0][0] == pytest.approx(3.0, abs=0.15)  # ball 0, vx
