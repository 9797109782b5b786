"""Finite scalar quantization (Mentzer et al. 2023): no codebook to collapse, no auxiliary loss.

Each of the d code dimensions is bounded with tanh and rounded to one of L_i levels (straight-
through gradient); a code is one of prod(L_i) ids.
"""

from __future__ import annotations

import torch
from torch import nn


class FSQ(nn.Module):
    def __init__(self, levels: list[int]):
        super().__init__()
        levels_t = torch.tensor(levels, dtype=torch.long)
        self.register_buffer("levels", levels_t, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor([1] + levels[:-1]), 0), persistent=False)
        self.dim = len(levels)
        self.codebook_size = int(torch.prod(levels_t))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z [..., d] -> quantized codes in [-1, 1], same shape, straight-through gradient."""
        levels = self.levels.to(z.dtype)
        half = (levels - 1) * (1 - 1e-3) / 2
        offset = (self.levels % 2 == 0).to(z.dtype) * 0.5
        bounded = torch.tanh(z + torch.atanh(offset / half)) * half - offset
        quantized = bounded + (bounded.round() - bounded).detach()
        return quantized / (self.levels // 2).to(z.dtype)

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        half = self.levels // 2
        digits = (codes * half + half).round().long()
        return (digits * self.basis).sum(-1)

    def ids_to_digits(self, ids: torch.Tensor) -> torch.Tensor:
        """ids [...] -> [..., d] each dimension's level, 0..L_i - 1."""
        if ids.min() < 0 or ids.max() >= self.codebook_size:
            raise ValueError(f"token ids must lie in [0, {self.codebook_size}), got {int(ids.min())}..{int(ids.max())}")
        return (ids[..., None] // self.basis) % self.levels

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        half = self.levels // 2
        return (self.ids_to_digits(ids) - half).float() / half.float()
