"""How well tokens keep what the velocity metric needs: parser-based errors of reconstructed
frames against the original frames, PSNR, and per-position codebook usage. Pure functions."""

from __future__ import annotations

import numpy as np

from physar.evaluation.parse import parse_frames
from simulators.world import WORLD_SIZE


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 image stacks."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ball_errors(original: np.ndarray, reconstructed: np.ndarray, colors: list) -> dict:
    """Per-ball errors of one group of frames sharing ball colours, in pixels.

    Both stacks are parsed with the evaluator's parser; a ball counts where the original shows
    it. Returns arrays: centre error, radius error, and whether the reconstruction shows it.
    """
    size = original.shape[1]
    px = (size - 1) / WORLD_SIZE  # pixels per world unit (exact convention)
    a, b = parse_frames(original, colors), parse_frames(reconstructed, colors)
    seen = a.found
    found = b.found[seen]
    centre = np.linalg.norm(a.positions - b.positions, axis=-1)[seen] * px
    radius = np.abs(a.radii - b.radii)[seen] * px
    return {"centre": centre[found], "radius": radius[found], "found": found}


def summarize_ball_errors(parts: list[dict]) -> dict:
    centre = np.concatenate([p["centre"] for p in parts]) if parts else np.zeros(0)
    radius = np.concatenate([p["radius"] for p in parts]) if parts else np.zeros(0)
    found = np.concatenate([p["found"] for p in parts]) if parts else np.zeros(0, bool)
    pick = lambda x, q: float(np.quantile(x, q)) if len(x) else float("nan")
    return {"centre_px_median": pick(centre, 0.5), "centre_px_p95": pick(centre, 0.95),
            "radius_px_median": pick(radius, 0.5), "found_rate": float(found.mean()) if len(found) else float("nan"),
            "balls": int(len(found))}


def codebook_usage(ids: np.ndarray, codebook_size: int) -> dict:
    """ids [N, K] -> per position: distinct codes used, and perplexity (exp of entropy)."""
    distinct, perplexity = [], []
    for k in range(ids.shape[1]):
        counts = np.bincount(ids[:, k], minlength=codebook_size)
        p = counts[counts > 0] / counts.sum()
        distinct.append(int((counts > 0).sum()))
        perplexity.append(float(np.exp(-(p * np.log(p)).sum())))
    return {"distinct": distinct, "perplexity": perplexity, "codebook_size": codebook_size,
            "total_distinct": int(len(np.unique(ids)))}
