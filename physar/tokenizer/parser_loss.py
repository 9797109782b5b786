"""A differentiable stand-in for the evaluator's parser, as a training loss.

The evaluator finds a ball of colour c as the pixels whose every channel is on c's side of 127,
and takes their mean position and sqrt(area / pi). A half-pixel shift of a small ball changes
the frame's MSE very little but moves that centre by half a pixel, so the pixel loss alone
plateaus near 0.5 px (measured, see checkpoints/ddt_cpu). Here the hard threshold becomes a
sigmoid of width `sharpness` (in 0..255 units): the loss compares the soft centre and radius of
every palette colour present in the original with those of the reconstruction, in pixels.
"""

from __future__ import annotations

import torch

from simulators.world import PALETTE

THRESHOLD = 127.0


def soft_color_masks(frames: torch.Tensor, sharpness: float = 8.0) -> torch.Tensor:
    """frames [B, 3, H, W] in [-1, 1] -> [B, C, H, W] in [0, 1]: the evaluator's colour rule (every
    channel on the palette colour's side of 127), each threshold a sigmoid of width `sharpness`."""
    pixels = (frames + 1) * 127.5
    palette = torch.tensor(PALETTE, dtype=frames.dtype, device=frames.device)  # [C, 3]
    side = torch.where(palette > THRESHOLD, 1.0, -1.0)[:, :, None, None]  # [C, 3, 1, 1]
    return torch.sigmoid(side * (pixels[:, None] - THRESHOLD) / sharpness).prod(2)


def soft_ball_moments(frames: torch.Tensor, sharpness: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """frames [B, 3, H, W] in [-1, 1] -> (area [B, C] in pixels, centre [B, C, 2] as (column, row)),
    one entry per palette colour."""
    mask = soft_color_masks(frames, sharpness)
    h, w = frames.shape[-2:]
    rows = torch.arange(h, dtype=frames.dtype, device=frames.device)
    cols = torch.arange(w, dtype=frames.dtype, device=frames.device)
    area = mask.sum((-1, -2))
    safe = area.clamp_min(1e-3)
    centre = torch.stack([(mask.sum(-2) * cols).sum(-1) / safe, (mask.sum(-1) * rows).sum(-1) / safe], -1)
    return area, centre


def parser_loss(reconstruction: torch.Tensor, original: torch.Tensor, sharpness: float = 8.0,
                min_area: float = 2.0, reach: float = 4.0) -> torch.Tensor:
    """Mean over the balls of `original` (palette colours covering at least `min_area` soft pixels)
    of the centre distance plus the radius difference, in pixels, each squared up to 1 px, linear
    up to `reach` px and flat beyond. The loss refines what the pixel loss has roughly placed: a
    ball further off than `reach`, or one the reconstruction lacks (less than half of
    `min_area`; its centre is undefined), is the pixel loss's job, and the early, shapeless
    renders of a fresh model should not pull on the encoder through this loss."""
    area_rec, centre_rec = soft_ball_moments(reconstruction, sharpness)
    with torch.no_grad():
        area_orig, centre_orig = soft_ball_moments(original, sharpness)
    present = area_orig >= min_area
    if not present.any():
        return reconstruction.sum() * 0.0
    shown = (area_rec >= min_area / 2).detach()
    centre = _refine(((centre_rec - centre_orig) ** 2).sum(-1).clamp_min(1e-12).sqrt(), reach) * shown
    radius = _refine((area_rec.clamp_min(0).sqrt() - area_orig.sqrt()).abs() / torch.pi**0.5, reach)
    return (centre + radius)[present].mean()


def _refine(distance: torch.Tensor, reach: float) -> torch.Tensor:
    """Squared below 1, linear (Huber) up to `reach`, flat (no gradient) beyond."""
    huber = torch.where(distance < 1, distance**2, 2 * distance - 1)
    return torch.where(distance < reach, huber, torch.full_like(distance, 2 * reach - 1))
