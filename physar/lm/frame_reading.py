"""The <state> block read from the conditioning frames, not by the LM.

The LM reads each ball's position and velocity from the conditioning frames' visual tokens, and
reads them coarsely: its <state> block misses the velocity by 0.5-0.65 units/s (median, uniform ID,
`docs/results_v2.md`). `generate_dataset(..., state_from="frames")` forces this block in place of
the model's own (as `benchmarks/lm_given_state.py` forces the simulator's), so the LM writes only
the roll-out and the frames. Label-free: it uses nothing but the conditioning frames, as the
label-free rewards do (`physar.rl.rewards.reference_from_conditioning`), and the scene's known gravity.

Each ball is read by fitting the renderer's disc to its pixels (`physar.evaluation.disc_fit`).
On 40 evaluation clips per scene at 64 px (median; tests/test_frame_reading.py): uniform
position 0.00002 units and velocity 0.0002 units/s, parabola 0.00002 and 0.013, collision (smaller
balls, fewer rim pixels) 0.004 and 0.035. The evaluator's threshold centroid, used here before
2026-11-30, read them to 0.01 and 0.06-0.09 (docs/results_v6.md: what that changed).
"""

from __future__ import annotations

import numpy as np

from physar.evaluation.disc_fit import fit_frames
from physar.evaluation.parse import color_mask, touches_border
from physar.rl.rewards import reference_from_conditioning
from simulators.world import FRAME_DT, GRAVITY_PARABOLA, PALETTE


def read_state(frames: np.ndarray, scene: str, reader=fit_frames) -> dict | None:
    """What `PhysicsLanguage.state_block(state, len(frames) - 1)` needs, from the conditioning
    frames [C, H, W, 3] (uint8, C >= 2): the colours of the palette seen in every frame (in palette
    order, as the datasets list their balls), each ball's mean parsed radius, its positions and its
    velocity at the last frame. None when no ball is seen or one reaches the border (partly out of
    view, its centre cannot be read): the LM then reads the scene itself. `reader`: frames, colours ->
    ParsedFrames (the disc fit; `parse_frames`, the threshold centroid, to compare)."""
    frames = np.asarray(frames)
    colors = [c for c in PALETTE if color_mask(frames, c).any(axis=(1, 2)).all()]
    if not colors or touches_border(frames, colors):
        return None
    parsed = reader(frames, colors)
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
