"""Keypoint fine tokens: points found by a spatial soft-argmax, written as fixed-point tokens.

An 8-level FSQ dimension steps a large fraction of the frame, so the coarse tokens hold a ball
to about 0.4 px (an MLP probe on ddt_cpu_v2's codes), where issue 3 asks for 0.25. Here a small
convolutional net at full resolution scores every pixel for each of P keypoints; the softmax of
the scores weights the pixel coordinates (a spatial soft-argmax, as in deep spatial autoencoders
and keypoint bottlenecks): the mean position of what the scores pick, to a fraction of a pixel,
the way the evaluator's parser takes a ball's centre. Each keypoint becomes two tokens of a
two-dimensional FSQ of L levels (the same L * L ids as the coarse codebook): a `hi` token holds
(x, y) to (S - 1) / (L - 1) px, a `lo` token the rest, so together they hold x and y to
(S - 1) / (L * L - 1) px (64 px, L = 64: 0.015 px). In index order the lo tokens come first
(finest), then the hi ones, so the LM, which reads coarse to fine, writes hi before lo.

The decoder side reads the keypoints back from their codes. `snap_to_keypoints` moves each ball
the renderer drew so that its centre is its keypoint: the renderer places a ball to about 0.45 px
(what the coarse tokens hold), the keypoints hold it to about 0.1 px. A learned alternative, a
refiner UNet reading each keypoint's distance map (`distance_maps`), did not learn that move in
800 steps (configs/tokenizer/cpu_v5.yaml).

Keypoint p is trained toward the centre of the ball of palette colour p (red, then blue: the
world's convention for the first and second object), as the soft parser finds it in the
original frame (`keypoint_loss`). Without that target the keypoints found nothing: trained only
through a refiner that starts at zero and an MLP probe reading the codes (since removed), they sat
30-60 px from the balls after 400 steps (configs/tokenizer/cpu_v5.yaml).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from physar.tokenizer.parser_loss import soft_ball_moments


class KeypointEncoder(nn.Module):
    """Frames [B, C_in, H, W] (RGB plus coordinate channels) -> keypoints [B, P, 2] as (column,
    row) in pixels, each the softmax-weighted mean position of its score map."""

    def __init__(self, in_channels: int, num_keypoints: int, channels: int = 32):
        super().__init__()
        self.scores = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(),
            nn.Conv2d(channels, num_keypoints, 1))
        # the scores' scale, learnt on a log scale: the softmax must come to pick a ball's few dozen
        # pixels out of thousands, and plain weights grow only about a learning rate a step
        self.log_sharpness = nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        weights = (self.scores(x) * self.log_sharpness.exp()).flatten(2).softmax(-1).view(b, -1, h, w)
        cols = torch.arange(w, dtype=x.dtype, device=x.device)
        rows = torch.arange(h, dtype=x.dtype, device=x.device)
        return torch.stack([(weights.sum(-2) * cols).sum(-1), (weights.sum(-1) * rows).sum(-1)], -1)


def keypoint_digits(points: torch.Tensor, size: int, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints [B, P, 2] in pixels -> (hi, lo) digits [B, P, 2], each 0 .. levels - 1: the
    position on a grid of levels * levels steps across the frame, as hi * levels + lo.

    The lo digit carries a straight-through gradient (d lo / d position = steps per pixel), so
    the decoded position `keypoints_from_digits(hi, lo)` passes the gradient through unchanged."""
    steps = levels * levels - 1
    scaled = points.clamp(0, size - 1) * (steps / (size - 1))
    q = scaled + (scaled.round() - scaled).detach()
    hi = torch.div(q.detach(), levels, rounding_mode="floor")
    return hi, q - hi * levels


def keypoints_from_digits(hi: torch.Tensor, lo: torch.Tensor, size: int, levels: int) -> torch.Tensor:
    """(hi, lo) digits [B, P, 2] -> keypoints [B, P, 2] in pixels."""
    return (hi * levels + lo) * ((size - 1) / (levels * levels - 1))


def distance_maps(points: torch.Tensor, size: int) -> torch.Tensor:
    """Keypoints [B, P, 2] (column, row) in pixels -> [B, P, H, W]: every pixel's distance from
    each keypoint, in pixels."""
    axis = torch.arange(size, dtype=points.dtype, device=points.device)
    dx = axis[None, None, None, :] - points[..., 0, None, None]
    dy = axis[None, None, :, None] - points[..., 1, None, None]
    return (dx**2 + dy**2).clamp_min(1e-6).sqrt()


def keypoint_loss(points: torch.Tensor, frames: torch.Tensor, min_area: float = 2.0) -> torch.Tensor:
    """Mean distance (Huber, squared below 1 px) of keypoint p from the centre of the ball of
    palette colour p in `frames` [B, 3, H, W] (the soft parser's), over the balls shown."""
    with torch.no_grad():
        area, centre = soft_ball_moments(frames)
    p = points.shape[1]
    present = area[:, :p] >= min_area
    if not present.any():
        return points.sum() * 0.0
    return F.huber_loss(points[present], centre[:, :p][present], delta=1.0)


def snap_to_keypoints(frames: torch.Tensor, points: torch.Tensor, known: torch.Tensor, margin: float = 2.5,
                      min_area: float = 2.0) -> torch.Tensor:
    """Frames [B, 3, H, W] in [-1, 1] with the ball of palette colour p moved (bilinear resampling)
    so that its soft-parser centre is keypoint p [B, P, 2] (column, row, pixels), where `known`
    [B, P] and the frame shows that colour. A ball's pixels are those within its radius plus
    `margin` of its centre (the nearer ball's, where two meet); the rest of the frame is kept."""
    b, _, h, w = frames.shape
    area, centre = soft_ball_moments(frames)
    rows, cols = torch.meshgrid(torch.arange(h, dtype=frames.dtype, device=frames.device),
                                torch.arange(w, dtype=frames.dtype, device=frames.device), indexing="ij")
    flow = torch.zeros(b, h, w, 2, dtype=frames.dtype, device=frames.device)
    nearest = torch.full((b, h, w), float("inf"), dtype=frames.dtype, device=frames.device)
    for p in range(points.shape[1]):
        moved = known[:, p] & (area[:, p] >= min_area)
        radius = (area[:, p].clamp_min(0) / torch.pi).sqrt()
        d = ((cols - centre[:, p, 0, None, None]) ** 2 + (rows - centre[:, p, 1, None, None]) ** 2).sqrt()
        mine = moved[:, None, None] & (d < radius[:, None, None] + margin) & (d < nearest)
        flow = torch.where(mine[..., None], (points[:, p] - centre[:, p])[:, None, None, :], flow)
        nearest = torch.where(mine, d, nearest)
    # output pixel q takes the value the frame has at q - shift
    grid = torch.stack([(cols - flow[..., 0]) * (2 / (w - 1)) - 1, (rows - flow[..., 1]) * (2 / (h - 1)) - 1], -1)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=True)
