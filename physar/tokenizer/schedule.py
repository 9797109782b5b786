"""k(t): which tokens the diffusion decoder sees at noise level t. One function, shared by
training and sampling.

DDT/Selftok convention: token index 0 is the finest and always visible; the visible set
grows with the noise level (diffusers timesteps, t = T - 1 the noisiest), so the coarse
tokens (high index) are seen only near pure noise, where coarse attributes are destroyed.
The language model reads a frame's tokens coarse to fine, i.e. in reversed index order.
"""

from __future__ import annotations

import torch


def max_visible_index(t: torch.Tensor, num_tokens: int, num_train_timesteps: int) -> torch.Tensor:
    """k(t) = min(K - 1, floor(t K / T)): tokens 0..k(t) are visible at timestep t."""
    return torch.clamp(torch.div(t.long() * num_tokens, num_train_timesteps, rounding_mode="floor"),
                       0, num_tokens - 1)


def visible_mask(t: torch.Tensor, num_tokens: int, num_train_timesteps: int) -> torch.Tensor:
    """[B] timesteps -> [B, K] bool, True where the decoder may see token j (j <= k(t))."""
    k = max_visible_index(t, num_tokens, num_train_timesteps)
    return torch.arange(num_tokens, device=t.device)[None, :] <= k[:, None]


def coarsest_mask(num_kept: torch.Tensor, num_tokens: int) -> torch.Tensor:
    """[B] counts n -> [B, K] bool: the first n tokens in the LM's order (coarse first), i.e.
    indices K - n .. K - 1. n = K keeps every token, n = 0 none."""
    j = torch.arange(num_tokens, device=num_kept.device)[None, :]
    return j >= (num_tokens - num_kept.long())[:, None]


def lm_order(ids: torch.Tensor) -> torch.Tensor:
    """Token ids [..., K] in index order -> the LM's order (coarse to fine), and back."""
    return ids.flip(-1)
