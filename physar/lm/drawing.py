"""Frames drawn from the LM's own symbolic states, not by the LM (`--draw renderer`).

The CPU LMs do not draw what their states say: given the simulator's whole trajectory (every
symbolic token forced), `sft_cpu_v2`'s video is no better than when it writes its own states
(uniform ID 1.07 against 1.02, `benchmarks/lm_given_trajectory.py`); its decoded balls sit 5-8 px
from the states it was given. So generation can draw instead: as soon as a row has written a
frame's states, the scene's renderer draws the balls of its <state> block (colour, radius) at
those positions, the DDT tokenizer encodes that picture, and those K tokens are forced in place of
the LM's visual tokens. The video still goes through the DDT tokens and decoder, and the LM keeps
reading its own (drawn) frames as it goes on, but what the video shows is the LM's symbolic
physics, to the DDT round trip's precision. It needs the symbolic format.

With a keypoint tokenizer the balls' keypoint tokens are written from the states themselves (to
the tokens' 0.015 px) rather than found in the drawn picture by the keypoint encoder (0.08 px rms
from the true centre): a ball wholly in view, whose keypoint is its centre; a ball at the edge
keeps the encoder's keypoint, the centre of what shows of it, as the tokenizer was trained. The
simulator's own states drawn so (62 evaluation clips a scene, `ddt_cpu_v6`, ID velocity error,
keypoints found -> written): uniform 0.0069 -> 0.0051, collision 0.0288 -> 0.0260, parabola
0.0165 -> 0.0127. Radius tokens stay the
encoder's: the snap sizes the decoder's ball against the encoder's own measure of a drawn ball,
and an exact radius there made collisions worse (r_out 0.047 -> 0.062).

The video of drawn frames is decoded with the snap mode "disc" (`drawn_snap_mode`): each ball
wholly in view is drawn as a disc at its keypoint and radius tokens, as the scene's renderer draws
it, rather than the decoder's ball pasted there, whose shape varies frame to frame and adds a
tenth of a pixel of noise to every position. The same clips, ID velocity error, paste -> disc:
uniform 0.0051 -> 0.0040, collision 0.0260 -> 0.0164, parabola 0.0127 -> 0.0096 (ground-truth
floor 0.0036, 0.0173, 0.0102): the video is then as precise as the states it draws
(`benchmarks/drawn_floor.py`). The coarse tokens still draw the rest of the frame.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor

from physar.tokenizer.keypoints import wholly_in_view
from simulators.render import render_frames
from simulators.world import PALETTE, length_to_world, world_to_pixel

# What an evaluation report records of the drawing, so `physar compare --reuse` draws a row again
# when it changes.
DRAWER = "renderer, keypoint tokens written from the states, balls in view decoded as discs (2026-12-01)"


class DrawnFrames(LogitsProcessor):
    """Forces each frame's visual tokens to the DDT tokens of that frame's states, drawn. Runs
    after a `GrammarConstraint` (whose parsers have read every row up to the last token)."""

    def __init__(self, constraint, ddt, lang):
        self.constraint, self.ddt, self.lang = constraint, ddt, lang
        self.queues: list[list[int]] | None = None  # per row, the rest of the frame being forced

    def draw(self, parser) -> list[int]:
        """The LM-order token ids of the frame the parser is in: its balls at its last positions."""
        objects = parser.objects
        positions = np.asarray(parser.positions[-1], dtype=float)[None]
        radii, colors = np.array([max(o["r"], 1e-3) for o in objects]), [o["color"] for o in objects]
        frame = render_frames(positions, radii, np.array(colors), self.ddt.config.resolution)
        keypoints = known_keypoints(positions[0], radii, colors, self.ddt.config)
        with torch.no_grad():
            ids = self.ddt.encode(torch.from_numpy(frame), keypoints).tolist()[0]
        return [self.constraint.id_of[t] for t in self.lang.frame_tokens(ids)]  # coarse first, as the language writes them

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        parsers = self.constraint.parsers
        if self.queues is None:
            self.queues = [[] for _ in parsers]
        for row, parser in enumerate(parsers):
            if parser.done or not self.lang.is_frame_slot(parser.allowed()):
                continue
            if not self.queues[row]:  # the frame's first visual token: its states are all written
                self.queues[row] = self.draw(parser)
            token = self.queues[row].pop(0)
            scores[row] = float("-inf")
            scores[row, token] = 0.0
        return scores


def known_keypoints(positions: np.ndarray, radii: np.ndarray, colors, config) -> torch.Tensor | None:
    """Balls at world `positions` [N, 2] with `radii` [N] and `colors` -> the keypoints [1, P, 2] to
    write (pixels; keypoint p is the ball of palette colour p), NaN for a keypoint with no ball
    wholly in view; None when the tokenizer has no keypoint tokens."""
    if not config.has_keypoints:
        return None
    size, palette = config.resolution, [tuple(c) for c in PALETTE[:config.num_keypoints]]
    centres = torch.tensor(np.stack(world_to_pixel(positions[:, 0], positions[:, 1], size), -1), dtype=torch.float32)
    in_view = wholly_in_view(centres, torch.tensor(radii / length_to_world(1.0, size), dtype=torch.float32), size)
    points = torch.full((1, config.num_keypoints, 2), float("nan"))
    for centre, shown, color in zip(centres, in_view, map(tuple, colors)):
        if shown and color in palette:
            points[0, palette.index(color)] = centre
    return points


def drawn_snap_mode(ddt) -> str | None:
    """The snap mode that decodes frames drawn from states: "disc" for a tokenizer with keypoint
    and radius tokens (their keypoints are the states' centres), else the tokenizer's own (None)."""
    cfg = ddt.config
    return "disc" if cfg.snap_to_keypoints and cfg.radius_tokens else None
