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

Radius tokens (`radius_tokens`): a second small net (`RadiusEncoder`) draws a soft mask of each
keypoint's ball, trained toward the ball's palette colour (`radius_loss`); the radius is sqrt(area
/ pi) of the mask, as the evaluator sizes a ball, written as one more token a keypoint (a coarse and
a fine digit of 0..max_radius px) at the lowest indices, last in the LM's order. With it the snap
scales the decoder's ball to its radius and draws a ball the decoder lost.

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

from physar.tokenizer.config import SNAP_MODES
from physar.tokenizer.parser_loss import soft_ball_moments, soft_color_masks
from simulators.world import PALETTE

# the snap with radius tokens: a ball drawn with less than LOST_AREA of its area is drawn anew, a ball
# whose radius token says less than MIN_DRAWN_RADIUS pixels (absent, or out of view) is left alone
LOST_AREA, MIN_DRAWN_RADIUS = 0.25, 1.0


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


def fixed_point_digits(values: torch.Tensor, top: float, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Values in [0, top] -> (hi, lo) digits of the same shape, each 0 .. levels - 1: the value on
    a grid of levels * levels steps, as hi * levels + lo.

    The lo digit carries a straight-through gradient (d lo / d value = steps per unit), so the
    decoded value `from_fixed_point(hi, lo)` passes the gradient through unchanged."""
    steps = levels * levels - 1
    scaled = values.clamp(0, top) * (steps / top)
    q = scaled + (scaled.round() - scaled).detach()
    hi = torch.div(q.detach(), levels, rounding_mode="floor")
    return hi, q - hi * levels


def from_fixed_point(hi: torch.Tensor, lo: torch.Tensor, top: float, levels: int) -> torch.Tensor:
    return (hi * levels + lo) * (top / (levels * levels - 1))


def keypoint_digits(points: torch.Tensor, size: int, levels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints [B, P, 2] in pixels -> (hi, lo) digits [B, P, 2]: x and y across the frame."""
    return fixed_point_digits(points, size - 1, levels)


def keypoints_from_digits(hi: torch.Tensor, lo: torch.Tensor, size: int, levels: int) -> torch.Tensor:
    """(hi, lo) digits [B, P, 2] -> keypoints [B, P, 2] in pixels."""
    return from_fixed_point(hi, lo, size - 1, levels)


class RadiusEncoder(nn.Module):
    """Frames [B, C_in, H, W] -> ball-mask logits [B, P, H, W]; keypoint p's radius is sqrt(area / pi)
    of its mask, the way the evaluator's parser sizes a ball (`mask_radii`)."""

    def __init__(self, in_channels: int, num_keypoints: int, channels: int = 16):
        super().__init__()
        self.masks = nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.SiLU(),
                                   nn.Conv2d(channels, num_keypoints, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.masks(x)


def mask_radii(logits: torch.Tensor) -> torch.Tensor:
    """Ball-mask logits [B, P, H, W] -> radii [B, P] in pixels."""
    return (torch.sigmoid(logits).sum((-1, -2)) / torch.pi).sqrt()


def radius_loss(logits: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Each ball mask against the soft colour mask of its palette colour in `frames` [B, 3, H, W]
    (binary cross-entropy per pixel), plus the radius error in pixels (Huber): the pixels teach the
    mask, the radius term its sum, where a few uncertain edge pixels add up."""
    with torch.no_grad():
        target = soft_color_masks(frames)[:, :logits.shape[1]]
    radius = F.huber_loss(mask_radii(logits), (target.sum((-1, -2)) / torch.pi).sqrt(), delta=1.0)
    return F.binary_cross_entropy_with_logits(logits, target) + radius


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


def wholly_in_view(points: torch.Tensor, radii: torch.Tensor, size: int) -> torch.Tensor:
    """Balls at keypoints [..., 2] with radii [...] (pixels) -> bool [...]: the whole disc inside a
    size x size frame, so its keypoint (the centre of what shows) is its centre."""
    return ((points - radii[..., None] >= 0) & (points + radii[..., None] <= size - 1)).all(-1)


def snap_to_keypoints(frames: torch.Tensor, points: torch.Tensor, known: torch.Tensor, margin: float = 2.5,
                      min_area: float = 2.0, mode: str = "paste", radii: torch.Tensor | None = None,
                      radius_known: torch.Tensor | None = None, radius_tolerance: float = 0.0) -> torch.Tensor:
    """Frames [B, 3, H, W] in [-1, 1] with the ball of palette colour p moved (bilinear resampling)
    so that its soft-parser centre is keypoint p [B, P, 2] (column, row, pixels), where `known`
    [B, P] and the frame shows that colour; the rest of the frame is kept.

    mode "paste": the ball's pixels (`ball_alphas`) are wiped to the white background and pasted,
    shifted, over the result, so a ball moves any distance whole. With `radii` [B, P] (pixels,
    where `radius_known`), the pasted ball is also scaled to that radius (unless drawn within
    `radius_tolerance` pixels of it), and a ball the decoder lost (drawn with under a quarter of its
    area) is drawn anew: a disc of its colour.
    mode "disc": as "paste", but a ball whose keypoint and radius say it lies wholly in view is drawn
    anew as a disc there, as the scene's renderer draws it, not pasted: when the keypoint tokens are
    the true centres (frames drawn from known states, `physar.lm.drawing`), the decoded ball is then
    as precise as the simulator's own frames (the evaluator's floor), where the decoder's pasted
    ball adds its own shape's noise (collision ID 0.026 against a floor of 0.017). With keypoints
    the encoder found (0.08 px rms) "paste" is the better of the two (collision ID 0.029 against
    0.030). A ball at the frame's edge, whose keypoint is the centre of what shows, is pasted.
    mode "shift" (before 2026-12-01): the pixels within the ball's radius plus `margin` of its drawn
    centre take the shifted frame; a move longer than about `margin` cut the ball (a collision
    whose renderer left a ball 5 px behind lost most of it)."""
    if mode not in SNAP_MODES:
        raise ValueError(f"snap mode must be one of {SNAP_MODES}, got {mode!r}")
    if mode == "disc" and radii is None:
        raise ValueError("snap mode 'disc' draws each ball at its radius token: radii are needed")
    b, _, h, w = frames.shape
    area, centre = soft_ball_moments(frames)
    p_count = points.shape[1]
    area, centre = area[:, :p_count], centre[:, :p_count]
    moved = known & (area >= min_area)  # [B, P]
    rows, cols = torch.meshgrid(torch.arange(h, dtype=frames.dtype, device=frames.device),
                                torch.arange(w, dtype=frames.dtype, device=frames.device), indexing="ij")

    def sample(images: torch.Tensor, x: torch.Tensor, y: torch.Tensor, padding: str) -> torch.Tensor:
        """images [B, C, H, W] read at the source positions x, y [B, H, W] (pixels) of every output pixel."""
        grid = torch.stack([x * (2 / (w - 1)) - 1, y * (2 / (h - 1)) - 1], -1)
        return F.grid_sample(images, grid, mode="bilinear", padding_mode=padding, align_corners=True)

    if mode == "shift":
        shift = torch.where(moved[..., None], points - centre, torch.zeros_like(points))  # [B, P, 2]
        flow = torch.zeros(b, h, w, 2, dtype=frames.dtype, device=frames.device)
        nearest = torch.full((b, h, w), float("inf"), dtype=frames.dtype, device=frames.device)
        radius, distance = (area.clamp_min(0) / torch.pi).sqrt(), distance_maps(centre, w)
        for p in range(p_count):
            d = distance[:, p]
            mine = moved[:, p, None, None] & (d < radius[:, p, None, None] + margin) & (d < nearest)
            flow = torch.where(mine[..., None], shift[:, p, None, None, :], flow)
            nearest = torch.where(mine, d, nearest)
        return sample(frames, cols - flow[..., 0], rows - flow[..., 1], "border")

    scale = torch.ones_like(area)  # drawn radius / wanted radius: the source steps that much per output pixel
    drawn_anew = torch.zeros_like(moved)
    if radii is not None:
        wanted = known & radius_known & (radii >= MIN_DRAWN_RADIUS)
        drawn = (area.clamp_min(0) / torch.pi).sqrt()
        drawn_anew = wanted & (area < LOST_AREA * torch.pi * radii**2)
        if mode == "disc":
            drawn_anew = drawn_anew | (wanted & wholly_in_view(points, radii, w))
        moved = moved & ~drawn_anew
        resize = wanted & moved & ((drawn - radii).abs() > radius_tolerance)
        scale = torch.where(resize, (drawn / radii.clamp_min(1e-3)).clamp(0.5, 2.0), scale)
    alpha = ball_alphas(frames, p_count) * (moved | drawn_anew)[..., None, None]  # [B, P, H, W]
    # the moved balls wiped to white (and what is left of a lost one)
    out = torch.where((alpha > 0).any(1, keepdim=True), torch.ones_like(frames), frames)
    palette = torch.tensor(PALETTE[:p_count], dtype=frames.dtype, device=frames.device) / 127.5 - 1  # [P, 3]
    for p in range(p_count):
        # the ball premultiplied: its pixels' difference from white (a rim pixel's is alpha * (colour - white)),
        # read about its drawn centre, so that centre lands on the keypoint
        ball = (frames - 1) * (alpha[:, p, None] > 0)
        s = scale[:, p, None, None]
        x = centre[:, p, 0, None, None] + (cols - points[:, p, 0, None, None]) * s
        y = centre[:, p, 1, None, None] + (rows - points[:, p, 1, None, None]) * s
        layer = sample(torch.cat([ball, alpha[:, p, None]], 1), x, y, "zeros")  # nothing comes from outside the frame
        if drawn_anew[:, p].any():  # a lost ball (or in "disc" mode one in view): a disc with a one-pixel soft edge
            cover = (radii[:, p, None, None] - distance_maps(points[:, p:p + 1], w)[:, 0] + 0.5).clamp(0, 1)[:, None]
            disc = torch.cat([cover * (palette[p, :, None, None] - 1), cover], 1)
            layer = torch.where(drawn_anew[:, p, None, None, None], disc, layer)
        out = 1 + layer[:, :3] + (out - 1) * (1 - layer[:, 3:])  # the ball over what shows through it
    return out


def ball_alphas(frames: torch.Tensor, count: int) -> torch.Tensor:
    """Frames [B, 3, H, W] in [-1, 1] -> [B, P, H, W]: how much of each pixel is palette colour p
    (p < count) over the white background. A soft edge's pixel is alpha * colour + (1 - alpha) *
    white, so alpha is the pixel's distance from white along the colour's direction; a pixel
    counts for the one colour whose direction its own lies closest to, so the pixels where two
    balls meet are not moved twice and a decoder's dark or off-colour pixels still count."""
    away = 1 - frames  # from white, [B, 3, H, W]
    palette = torch.tensor(PALETTE[:count], dtype=frames.dtype, device=frames.device) / 127.5 - 1
    directions = 1 - palette  # [P, 3]
    along = torch.einsum("bchw,pc->bphw", away, directions / directions.norm(dim=1, keepdim=True))
    alpha = (along / directions.norm(dim=1)[None, :, None, None]).clamp(0, 1)
    return alpha * F.one_hot(along.argmax(1), count).permute(0, 3, 1, 2).to(frames.dtype)
