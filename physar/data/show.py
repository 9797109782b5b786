"""Preview strips and GIFs of a dataset (or of generated videos beside their ground truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from physar.data.generate import load_metadata
from physar.data.recipe import BUCKETS
from physar.video import VideoReadError, read_video

MIN_TILE = 96  # small frames are scaled up (nearest) so a person can see them
LABEL_HEIGHT = 14


def pick_clips(records: list[dict], n: int) -> list[dict]:
    """One clip of every bucket first (in PhyWorld's order), then more in index order."""
    chosen, seen = [], set()
    for bucket in BUCKETS + tuple(sorted({r["bucket"] for r in records} - set(BUCKETS))):
        first = next((r for r in records if r["bucket"] == bucket), None)
        if first is not None and len(chosen) < n:
            chosen.append(first)
            seen.add(first["index"])
    chosen += [r for r in records if r["index"] not in seen][: max(0, n - len(chosen))]
    return sorted(chosen, key=lambda r: r["index"])


def _label(record: dict) -> str:
    params = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in record["params"].items())
    return f"#{record['index']} {record['scene']} {record['bucket']}: {params}"


def _row(frames: np.ndarray, columns: list[int], tile: int, text: str, conditioning: int) -> Image.Image:
    """One clip: the chosen frames side by side, conditioning frames framed in blue."""
    tiles = [Image.fromarray(frames[k]).resize((tile, tile), Image.NEAREST) for k in columns]
    row = Image.new("RGB", (tile * len(tiles) + 2 * (len(tiles) - 1), tile + LABEL_HEIGHT), (235, 235, 235))
    draw = ImageDraw.Draw(row)
    for i, (k, t) in enumerate(zip(columns, tiles)):
        x = i * (tile + 2)
        row.paste(t, (x, LABEL_HEIGHT))
        if k < conditioning:
            draw.rectangle([x, LABEL_HEIGHT, x + tile - 1, LABEL_HEIGHT + tile - 1], outline=(40, 90, 230), width=2)
    draw.text((2, 1), text, fill=(0, 0, 0))
    return row


def show(data_dir: str | Path, out: str | Path | None = None, clips: int = 6, frames: int = 8,
         videos: str | Path | None = None, gif: bool = True, among: list[dict] | None = None) -> Path:
    """Write `strip.png` (one row per clip, `frames` evenly spaced frames, the conditioning
    frames framed in blue) and a GIF per clip.

    With `videos`, each clip shows two rows: the ground truth and the video of the same name
    under `videos` (a generator's output); `among` limits the choice to these records.
    Returns the path of the strip.
    """
    data_dir = Path(data_dir)
    out = Path(out) if out is not None else data_dir / "previews"
    records = pick_clips(among if among is not None else load_metadata(data_dir), clips)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in records:
        sources = [("", data_dir)] + ([("generated ", Path(videos))] if videos is not None else [])
        clip_frames = []
        for prefix, root in sources:
            try:
                f = read_video(root / r["video"])
            except VideoReadError as e:
                f = np.full((1, r["resolution"], r["resolution"], 3), 128, np.uint8)
                prefix = f"UNREADABLE ({e}) "
            clip_frames.append(f)
            tile = max(MIN_TILE, f.shape[1])
            columns = sorted({int(round(x)) for x in np.linspace(0, len(f) - 1, min(frames, len(f)))})
            rows.append(_row(f, columns, tile, prefix + _label(r), r["conditioning_frames"]))
        if gif:
            both = np.concatenate([np.asarray(f[: min(len(x) for x in clip_frames)]) for f in clip_frames], axis=2)
            scale = max(1, MIN_TILE // both.shape[1])
            images = [Image.fromarray(np.kron(x, np.ones((scale, scale, 1), np.uint8))) for x in both]
            images[0].save(out / f"clip_{r['index']:06d}.gif", save_all=True, append_images=images[1:],
                           duration=100, loop=0)
    width = max(row.width for row in rows)
    strip = Image.new("RGB", (width, sum(row.height + 4 for row in rows)), (255, 255, 255))
    y = 0
    for row in rows:
        strip.paste(row, (0, y))
        y += row.height + 4
    strip.save(out / "strip.png")
    return out / "strip.png"
