"""The <state> block read from the conditioning frames by the evaluator's parser, not by the LM.

The LM reads each ball's position and velocity from the conditioning frames' visual tokens, and
reads them coarsely: its <state> block misses the velocity by 0.5-0.65 units/s (median, uniform ID,
`docs/results_v2.md`), where the parser, on the three 64 px frames themselves, reads it to about
0.05. `generate_dataset(..., state_from="frames")` forces this block in place of the model's own
(as `benchmarks/lm_given_state.py` forces the simulator's), so the LM writes only the roll-out and
the frames. Label-free: it uses nothing but the conditioning frames, as the label-free rewards do
(`physar.rl.rewards.reference_from_conditioning`), and the scene's known gravity.
Measured on the evaluation clips of `docs/results_v3.md`: position 0.012 units, velocity 0.05-0.08
units/s, radius 0.009 (median). The CPU LMs do not carry such a state forward (their videos got no
better, collision worse): it is here for an LM that does, and as the test of whether one does.
"""

from __future__ import annotations

import numpy as np

from physar.evaluation.parse import color_mask, parse_frames, touches_border
from physar.rl.rewards import reference_from_conditioning
from simulators.world import FRAME_DT, GRAVITY_PARABOLA, PALETTE


def read_state(frames: np.ndarray, scene: str) -> dict | None:
    """What `PhysicsLanguage.state_block(state, len(frames) - 1)` needs, from the conditioning
    frames [C, H, W, 3] (uint8, C >= 2): the colours of the palette seen in every frame (in palette
    order, as the datasets list their balls), each ball's mean parsed radius, its positions and its
    velocity at the last frame. None when no ball is seen or one reaches the border (partly out of
    view, its centre cannot be read): the LM then reads the scene itself."""
    frames = np.asarray(frames)
    colors = [c for c in PALETTE if color_mask(frames, c).any(axis=(1, 2)).all()]
    if not colors or touches_border(frames, colors):
        return None
    parsed = parse_frames(frames, colors)
    velocities = np.zeros_like(parsed.positions)
    # uniform and collision have none; a box clip's gravity is a parameter its frames do not name: taken as none
    gravity = GRAVITY_PARABOLA if scene == "parabola" else 0.0
    velocities[-1] = reference_from_conditioning(parsed.positions, FRAME_DT, gravity)
    # the step into the last frame, for frame_acceleration's block: the mean step, moved on to the
    # last one by the second difference g dt^2 that every step adds
    steps = np.diff(parsed.positions, axis=0)
    last_steps = steps.mean(axis=0)
    last_steps[:, 1] += gravity * FRAME_DT**2 * (len(steps) - 1) / 2
    return {"positions": parsed.positions.tolist(), "velocities": velocities.tolist(), "last_steps": last_steps.tolist(),
            "radii": parsed.radii.mean(axis=0).tolist(), "colors": [list(c) for c in colors]}
