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
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import LogitsProcessor

from simulators.render import render_frames


class DrawnFrames(LogitsProcessor):
    """Forces each frame's visual tokens to the DDT tokens of that frame's states, drawn. Runs
    after a `GrammarConstraint` (whose parsers have read every row up to the last token)."""

    def __init__(self, constraint, ddt, lang):
        self.constraint, self.ddt, self.lang = constraint, ddt, lang
        self.queues: list[list[int]] | None = None  # per row, the rest of the frame being forced
        self.visual_id = [constraint.id_of[t] for t in lang.visual]

    def draw(self, parser) -> list[int]:
        """The LM-order token ids of the frame the parser is in: its balls at its last positions."""
        objects = parser.objects
        positions = np.asarray(parser.positions[-1], dtype=float)[None]
        radii = np.array([max(o["r"], 1e-3) for o in objects])
        frame = render_frames(positions, radii, np.array([o["color"] for o in objects]), self.ddt.config.resolution)
        with torch.no_grad():
            ids = self.ddt.encode(torch.from_numpy(frame))[0].tolist()
        return [self.visual_id[i] for i in reversed(ids)]  # coarse first, as the language writes them

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        parsers = self.constraint.parsers
        if self.queues is None:
            self.queues = [[] for _ in parsers]
        visual = self.lang.expect["visual"]
        for row, parser in enumerate(parsers):
            if parser.done or parser.allowed() is not visual:
                continue
            if not self.queues[row]:  # the frame's first visual token: its states are all written
                self.queues[row] = self.draw(parser)
            token = self.queues[row].pop(0)
            scores[row] = float("-inf")
            scores[row, token] = 0.0
        return scores
