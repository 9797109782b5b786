"""Frames for the tokenizer: every frame of some clips of some dataset folders, in memory,
with the ground-truth ball states that the parser-based measures need."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from physar.data.generate import load_metadata
from physar.errors import FrameDataError
from physar.video import read_video




@dataclass
class FrameBank:
    frames: torch.Tensor  # uint8 [N, H, W, 3]
    clip: np.ndarray  # [N] index of the frame's clip in `records`
    frame: np.ndarray  # [N] frame number within its clip
    records: list[dict]  # metadata of the clips, each with "root" (its dataset folder)

    def __len__(self) -> int:
        return len(self.frames)

    @classmethod
    def load(cls, roots: list[str | Path], clips_per_dataset: int | None = None, frames_per_clip: int | None = None,
             resolution: int | None = None, seed: int = 0, progress: bool = False) -> "FrameBank":
        """Read clips of each folder (an even spread of `clips_per_dataset`, all by default) and
        keep `frames_per_clip` evenly spaced frames of each (all by default)."""
        from tqdm import tqdm

        frames, clip, frame, records = [], [], [], []
        for root in roots:
            rows = load_metadata(root)
            if clips_per_dataset is not None and clips_per_dataset < len(rows):
                keep = np.random.default_rng(seed).choice(len(rows), clips_per_dataset, replace=False)
                rows = [rows[i] for i in sorted(keep)]
            for r in tqdm(rows, desc=f"read {root}", unit="clip", disable=not progress):
                if resolution is not None and r["resolution"] != resolution:
                    raise FrameDataError(f"{root}: clips are {r['resolution']} px, the tokenizer takes {resolution} px")
                video = read_video(Path(root) / r["video"])
                ks = np.arange(len(video)) if frames_per_clip is None else \
                    np.unique(np.linspace(0, len(video) - 1, frames_per_clip).round().astype(int))
                frames.append(video[ks])
                clip += [len(records)] * len(ks)
                frame += list(ks)
                records.append({**r, "root": str(root)})
        if not frames:
            raise FrameDataError(f"no clips in {', '.join(map(str, roots))}")
        return cls(torch.from_numpy(np.concatenate(frames)), np.array(clip), np.array(frame), records)

    def split(self, holdout: int, seed: int = 0) -> tuple["FrameBank", "FrameBank"]:
        """(train, held-out) by whole clips, about `holdout` held-out frames."""
        order = np.random.default_rng(seed).permutation(len(self.records))
        per_clip = max(1, len(self) // len(self.records))
        held = set(order[: max(1, -(-holdout // per_clip))].tolist())
        mask = np.array([c in held for c in self.clip])
        return self.subset(~mask), self.subset(mask)

    def subset(self, mask: np.ndarray) -> "FrameBank":
        idx = np.flatnonzero(mask)
        return FrameBank(self.frames[torch.from_numpy(idx)], self.clip[idx], self.frame[idx], self.records)

    def states(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Ground truth of frame i: positions [N, 2] (world), radii [N], colors [N, 3]."""
        r = self.records[self.clip[i]]
        return np.asarray(r["positions"])[self.frame[i]], np.asarray(r["radii"]), np.asarray(r["colors"])
