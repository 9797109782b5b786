"""A PyTorch dataset over a generated folder: frames read with decord, states from metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from physar.data.generate import load_metadata
from physar.video import read_video


class ClipDataset(Dataset):
    """Clip i as a dict: `frames` uint8 [T, 3, H, W] (or float in [-1, 1] with `normalize`),
    `positions` and `velocities` float32 [T, N, 2], `radii` [N], `index` and `bucket`.

    `buckets` keeps only clips of those buckets (e.g. ("in",)).
    """

    def __init__(self, root: str | Path, buckets: tuple[str, ...] | None = None, normalize: bool = False):
        self.root = Path(root)
        self.records = [r for r in load_metadata(self.root) if buckets is None or r["bucket"] in buckets]
        self.normalize = normalize

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = self.records[i]
        frames = torch.from_numpy(read_video(self.root / r["video"])).permute(0, 3, 1, 2).contiguous()
        if self.normalize:
            frames = frames.float() / 127.5 - 1.0
        return {
            "frames": frames,
            "positions": torch.from_numpy(np.asarray(r["positions"], dtype=np.float32)),
            "velocities": torch.from_numpy(np.asarray(r["velocities"], dtype=np.float32)),
            "radii": torch.tensor(r["radii"], dtype=torch.float32),
            "index": r["index"],
            "bucket": r["bucket"],
        }
