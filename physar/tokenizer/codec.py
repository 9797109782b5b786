"""Use a trained tokenizer on datasets: encode clips to token ids (saved beside the dataset, for
the LM stages), decode ids to videos, reconstruct a dataset for `physar evaluate`, and inspect
the recursive (coarse-to-fine) property and the codebook usage."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from physar.data.generate import load_metadata
from physar.tokenizer.measure import ball_errors, codebook_usage, psnr, summarize_ball_errors
from physar.tokenizer.model import CONFIG, WEIGHTS, CheckpointError, DDTTokenizer
from physar.video import read_video, write_video

TOKENS_DIR = "tokens"


def checkpoint_folder(path: str | Path) -> Path:
    """A checkpoint folder as given, or the checkpoint/ of a run folder."""
    path = Path(path)
    return path / "checkpoint" if (path / "checkpoint" / CONFIG).is_file() else path


def load_tokenizer(checkpoint: str | Path) -> DDTTokenizer:
    """A checkpoint folder, or a run folder holding checkpoint/."""
    return DDTTokenizer.from_pretrained(checkpoint_folder(checkpoint))


def weights_fingerprint(checkpoint: str | Path) -> str:
    """The first 16 hex digits of the sha256 of a checkpoint's weights: which tokenizer wrote a
    token file (two tokenizers of the same shape write ids that look alike and mean different things)."""
    import hashlib

    digest = hashlib.sha256()
    with open(checkpoint_folder(checkpoint) / WEIGHTS, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def decoder_fingerprint(checkpoint: str | Path) -> str:
    """Like `weights_fingerprint`, over the weights and config.json together: what the frames a
    tokenizer decodes depend on (a config key such as `snap_mode` changes them, not the ids)."""
    import hashlib

    config = json.loads((checkpoint_folder(checkpoint) / "config.json").read_text())
    text = weights_fingerprint(checkpoint) + json.dumps(config, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_resolution(model: DDTTokenizer, record: dict, data_dir: Path) -> None:
    if record["resolution"] != model.config.resolution:
        raise CheckpointError(f"{data_dir}: clips are {record['resolution']} px, the tokenizer takes "
                         f"{model.config.resolution} px (generate the data with --resolution {model.config.resolution})")


def encode_clip(model: DDTTokenizer, frames: np.ndarray, batch: int = 64) -> np.ndarray:
    """uint8 frames [T, H, W, 3] -> token ids [T, K] (index order: 0 the finest)."""
    t = torch.from_numpy(np.ascontiguousarray(frames))
    return torch.cat([model.encode(t[i:i + batch]) for i in range(0, len(t), batch)]).numpy()


def decode_clip(model: DDTTokenizer, ids: np.ndarray, steps: int = 0, num_tokens: int | None = None,
                seed: int = 0, batch: int = 64, snap_mode: str | None = None) -> np.ndarray:
    """Token ids [T, K] -> uint8 frames [T, H, W, 3] (`snap_mode`: None, the tokenizer's own)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.as_tensor(ids)
    return torch.cat([model.decode(t[i:i + batch], steps, num_tokens, g, snap_mode)
                      for i in range(0, len(t), batch)]).numpy()


def encode_dataset(data_dir: str | Path, checkpoint: str | Path, name: str = "ddt", progress: bool = True) -> Path:
    """Token ids of every clip of a dataset, saved as DATA_DIR/tokens/<name>.safetensors:
    `ids` int32 [clips, frames, K] in metadata order, with the checkpoint (path and weights
    fingerprint) and the order in its metadata."""
    from safetensors.torch import save_file
    from tqdm import tqdm

    data_dir = Path(data_dir)
    model = load_tokenizer(checkpoint)
    records = load_metadata(data_dir)
    ids = []
    for r in tqdm(records, desc=f"encode {data_dir}", unit="clip", disable=not progress):
        _check_resolution(model, r, data_dir)
        ids.append(encode_clip(model, read_video(data_dir / r["video"])[: r["num_frames"]]))
    out = data_dir / TOKENS_DIR / f"{name}.safetensors"
    out.parent.mkdir(exist_ok=True)
    info = {"checkpoint": str(checkpoint), "tokenizer_sha256": weights_fingerprint(checkpoint),
            "num_tokens": model.config.num_tokens,
            "codebook_size": model.config.codebook_size, "order": "index order, 0 = finest; the LM reads reversed",
            "videos": json.dumps([r["video"] for r in records])}
    tmp = out.with_name(f".{out.name}.tmp")
    save_file({"ids": torch.from_numpy(np.stack(ids).astype(np.int32))}, str(tmp), metadata={k: str(v) for k, v in info.items()})
    tmp.replace(out)
    return out


def load_tokens(path: str | Path) -> tuple[np.ndarray, dict]:
    """(ids [clips, frames, K], metadata) of a file written by `encode_dataset`."""
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        return f.get_tensor("ids"), dict(f.metadata())


def decode_tokens(tokens: str | Path, checkpoint: str | Path, out: str | Path, steps: int = 0,
                  num_tokens: int | None = None, progress: bool = True) -> Path:
    """Write one video per clip of a tokens file, under the video names it records."""
    from tqdm import tqdm

    model = load_tokenizer(checkpoint)
    ids, info = load_tokens(tokens)
    if int(info["codebook_size"]) != model.config.codebook_size or ids.shape[-1] != model.config.num_tokens:
        raise CheckpointError(f"{tokens}: {ids.shape[-1]} tokens of a {info['codebook_size']}-code codebook; the checkpoint "
                         f"has {model.config.num_tokens} of {model.config.codebook_size}")
    out = Path(out)
    for video, clip_ids in tqdm(list(zip(json.loads(info["videos"]), ids)), desc="decode", unit="clip", disable=not progress):
        (out / video).parent.mkdir(parents=True, exist_ok=True)
        write_video(out / video, decode_clip(model, clip_ids, steps, num_tokens, seed=0))
    return out


def reconstruct(data_dir: str | Path, checkpoint: str | Path, out: str | Path, steps: int = 0,
                num_tokens: int | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """Encode and decode every clip of a dataset; write the videos under the same file names
    in `out` (so `physar evaluate DATA_DIR --videos OUT` measures them) and
    `out/tokenizer_report.json|md`: PSNR and the parser's ball errors per scene and bucket."""
    from tqdm import tqdm

    data_dir, out = Path(data_dir), Path(out)
    model = load_tokenizer(checkpoint)
    records = load_metadata(data_dir)[:limit]
    groups: dict[tuple, list] = defaultdict(list)
    all_ids = []
    for r in tqdm(records, desc=f"reconstruct {data_dir}", unit="clip", disable=not progress):
        _check_resolution(model, r, data_dir)
        frames = read_video(data_dir / r["video"])[: r["num_frames"]]
        ids = encode_clip(model, frames)
        all_ids.append(ids)
        recon = decode_clip(model, ids, steps, num_tokens, seed=r["index"])
        (out / r["video"]).parent.mkdir(parents=True, exist_ok=True)
        write_video(out / r["video"], recon)
        errors = ball_errors(frames, recon, r["colors"])
        err = float(np.mean((frames.astype(np.float64) - recon) ** 2))
        for key in ((r["scene"], r["bucket"]), (r["scene"], "all")):
            groups[key].append((errors, err))
    report: dict = {"checkpoint": str(checkpoint), "steps": steps, "num_tokens": num_tokens or model.config.num_tokens,
                    "tokens_per_frame": model.config.num_tokens, "codebook_size": model.config.codebook_size,
                    "scenes": {}}
    for (scene, bucket), rows in sorted(groups.items()):
        mse = float(np.mean([e for _, e in rows]))
        report["scenes"].setdefault(scene, {})[bucket] = {
            "clips": len(rows), "psnr": float(10 * np.log10(255.0**2 / mse)) if mse > 0 else float("inf"),
            **summarize_ball_errors([e for e, _ in rows])}
    report["usage"] = codebook_usage(np.concatenate(all_ids), model.config.codebook_size)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tokenizer_report.json").write_text(json.dumps(report, indent=1))
    (out / "tokenizer_report.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = [f"# Tokenizer reconstruction ({'renderer, 1 step' if report['steps'] == 0 else str(report['steps']) + '-step diffusion'}, "
             f"{report['num_tokens']} of {report['tokens_per_frame']} tokens, codebook {report['codebook_size']})", "",
             "| scene | bucket | clips | PSNR (dB) | centre err median (px) | p95 (px) | radius err median (px) | found |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for scene, buckets in report["scenes"].items():
        for bucket, s in buckets.items():
            lines.append(f"| {scene} | {bucket} | {s['clips']} | {s['psnr']:.2f} | {s['centre_px_median']:.3f} | "
                         f"{s['centre_px_p95']:.3f} | {s['radius_px_median']:.3f} | {s['found_rate']:.4f} |")
    usage = report.get("usage")
    if usage:
        lines += ["", f"Codebook usage: {usage['total_distinct']} of {usage['codebook_size']} codes; per position "
                  f"(index 0 = finest) distinct {usage['distinct']}, perplexity "
                  f"{[round(p, 1) for p in usage['perplexity']]}"]
    return "\n".join(lines) + "\n"


def inspect_prefixes(data_dir: str | Path, checkpoint: str | Path, out: str | Path, clips: int = 24,
                     steps: int = 20, progress: bool = True) -> dict:
    """The recursive property: decode from only the first n tokens in LM order (coarse first),
    n = 0..K, with the renderer and with N-step diffusion; table, figure, example strip, usage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    data_dir, out = Path(data_dir), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = load_tokenizer(checkpoint)
    records = load_metadata(data_dir)
    pick = np.linspace(0, len(records) - 1, min(clips, len(records))).round().astype(int)
    frames, colors = [], []
    for i in pick:
        video = read_video(data_dir / records[i]["video"])
        frames.append(video[[0, len(video) // 2, len(video) - 1]])
        colors.append(records[i]["colors"])
    frames = np.stack(frames)  # [C, 3, H, W, 3]
    flat = frames.reshape(-1, *frames.shape[2:])
    ids = encode_clip(model, flat)
    K = model.config.num_tokens
    rows, examples = [], []
    for n in range(K + 1):
        row = {"num_tokens": n}
        for label, s in (("renderer", 0), (f"diffusion{steps}", steps)):
            recon = decode_clip(model, ids, s, n, seed=0)
            parts = [ball_errors(frames[c], recon.reshape(frames.shape)[c], colors[c]) for c in range(len(frames))]
            summary = summarize_ball_errors(parts)
            row[label] = {"psnr": psnr(flat, recon), "centre_px_median": summary["centre_px_median"],
                          "found_rate": summary["found_rate"]}
            if label == "renderer":
                examples.append(recon[:6])
        rows.append(row)
    usage = codebook_usage(ids, model.config.codebook_size)
    result = {"rows": rows, "usage": usage, "frames": int(len(flat))}
    (out / "prefixes.json").write_text(json.dumps(result, indent=1))
    labels = [k for k in rows[0] if k != "num_tokens"]
    md = ["| first n tokens (LM order) | " + " | ".join(f"{l} PSNR | {l} centre err (px) | {l} found" for l in labels) + " |",
          "|---:|" + "---:|" * (3 * len(labels))]
    for row in rows:
        md.append(f"| {row['num_tokens']} | " + " | ".join(
            f"{row[l]['psnr']:.2f} | {row[l]['centre_px_median']:.3f} | {row[l]['found_rate']:.3f}" for l in labels) + " |")
    (out / "prefixes.md").write_text("\n".join(md) + "\n")

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for label in labels:
        axes[0].plot([r["num_tokens"] for r in rows], [r[label]["psnr"] for r in rows], marker="o", label=label)
    axes[0].set_xlabel("tokens kept (first n in LM order, coarse first)")
    axes[0].set_ylabel("PSNR (dB)")
    axes[0].grid(alpha=0.3)
    axes[0].legend()
    axes[1].bar(range(K), usage["perplexity"], color="tab:blue", label="perplexity")
    axes[1].bar(range(K), usage["distinct"], color="tab:orange", alpha=0.4, label="distinct codes")
    axes[1].set_xlabel("token index (0 = finest)")
    axes[1].set_title(f"codebook usage over {len(flat)} frames")
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(out / "prefixes.png", dpi=110)
    plt.close(fig)
    strip = np.concatenate([np.concatenate(list(flat[:6]), axis=1)] + [np.concatenate(list(e), axis=1) for e in examples], axis=0)
    Image.fromarray(strip).resize((strip.shape[1] * 2, strip.shape[0] * 2), Image.NEAREST).save(out / "prefix_strip.png")
    return result
