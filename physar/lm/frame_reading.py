"""The <state> block read from the conditioning frames, not by the LM.

The LM reads each ball's position and velocity from the conditioning frames' visual tokens, and
reads them coarsely: its <state> block misses the velocity by 0.5-0.65 units/s (median, uniform ID,
`docs/results_v2.md`). `generate_dataset(..., state_from="frames")` forces this block in place of
the model's own (as `benchmarks/lm_given_state.py` forces the simulator's), so the LM writes only
the roll-out and the frames. Label-free: it uses nothing but the conditioning frames, as the
label-free rewards do (`physar.rl.rewards.reference_from_conditioning`), and the scene's known gravity.

Each ball is read by fitting the renderer's disc to its pixels in all conditioning frames at once,
one radius on one free-flight path (`physar.evaluation.disc_fit.fit_tracks`), along a row in the
scenes that move their balls along one (HORIZONTAL_SCENES: PhyWorld's uniform motion and collision
are one-dimensional; as the scene's gravity is known, so is its direction, while what varies out of
distribution, speed and size, is read). Three frames of a 2-4 px ball leave its free path a tenth of
a pixel a frame loose: a read vertical drift of 0.16 units/s sent an ID collision's balls 0.6 units/s
off their line (clip 12 of the 62, sft_cpu_v11: video error 0.17 against 0.036 for the round trip).

Velocity error on 62 evaluation clips per scene at 64 px (`python benchmarks/reader_precision.py
--count 60`; median / 95th percentile, units/s): uniform 0.0001 / 0.004, collision 0.0002 / 0.092
(ID p95 0.050), parabola 0.0125 / 0.033 (the 0.0125 is pymunk's recorded velocity against the mean
step). The free joint fit (until 2026-12-01, session 17): uniform 0.0001 / 0.035, collision 0.0003 /
0.132; fitted frame by frame (until session 11): 0.0002 / 0.096, 0.034 / 0.140, 0.0126 / 0.082; the
evaluator's threshold centroid (before that): 0.046, 0.084, 0.075 medians (docs/results_v6.md).
"""

from __future__ import annotations

import numpy as np

from physar.evaluation.disc_fit import fit_tracks
from physar.evaluation.parse import color_mask, touches_border
from physar.rl.rewards import reference_from_conditioning
from simulators.world import FRAME_DT, GRAVITY_PARABOLA, PALETTE

HORIZONTAL_SCENES = ("uniform", "collision")  # simulators/scenes.py: balls start and stay on a row
# What an evaluation report records of the reader, so `physar compare --reuse` regenerates a row read otherwise.
STATE_READER = "fit_tracks, along a row in uniform and collision (2026-12-01)"


def read_state(frames: np.ndarray, scene: str, reader=None) -> dict | None:
    """What `PhysicsLanguage.state_block(state, len(frames) - 1)` needs, from the conditioning
    frames [C, H, W, 3] (uint8, C >= 2): the colours of the palette seen in every frame (in palette
    order, as the datasets list their balls), each ball's mean parsed radius, its positions and its
    velocity at the last frame. None when no ball is seen or one reaches the border (partly out of
    view, its centre cannot be read): the LM then reads the scene itself. `reader`: frames, colours,
    gravity -> ParsedFrames (default `fit_tracks`, each ball's frames fitted together, along a row in
    HORIZONTAL_SCENES; `benchmarks/reader_precision.py` compares the others)."""
    frames = np.asarray(frames)
    colors = [c for c in PALETTE if color_mask(frames, c).any(axis=(1, 2)).all()]
    if not colors or touches_border(frames, colors):
        return None
    # uniform and collision have none; a box clip's gravity is a parameter its frames do not name: taken as none
    gravity = GRAVITY_PARABOLA if scene == "parabola" else 0.0
    if reader is None:
        parsed = fit_tracks(frames, colors, gravity, horizontal=scene in HORIZONTAL_SCENES)
    else:
        parsed = reader(frames, colors, gravity)
    velocities = np.zeros_like(parsed.positions)
    velocities[-1] = reference_from_conditioning(parsed.positions, FRAME_DT, gravity)
    # the step into the last frame, for frame_acceleration's block: the mean step, moved on to the
    # last one by the second difference g dt^2 that every step adds
    steps = np.diff(parsed.positions, axis=0)
    last_steps = steps.mean(axis=0)
    last_steps[:, 1] += gravity * FRAME_DT**2 * (len(steps) - 1) / 2
    return {"positions": parsed.positions.tolist(), "velocities": velocities.tolist(), "last_steps": last_steps.tolist(),
            "radii": parsed.radii.mean(axis=0).tolist(), "colors": [list(c) for c in colors]}
