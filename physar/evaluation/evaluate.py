"""Evaluate any generator against a dataset folder: per-clip errors, buckets, report files.

`evaluate(data_dir, videos_dir)` reads the ground truth from `data_dir/metadata.jsonl` and, for
every clip, the video at the same relative path under `videos_dir` (the dataset's own videos
when `videos_dir` is None, which measures the parser's floor). It writes

    report.json    {scene: {bucket: {"vel_error": float, "n": int, ...}}}
    report.md      the same as Markdown tables, with the ground-truth floor beside each error
    report.png     velocity error against initial speed, training range shaded
    clips.jsonl    every clip's errors
    failures.json  every video that could not be read or has too few frames, by name

(report.json is the default name; for out = NAME.json the files are NAME.md, NAME.png,
NAME.clips.jsonl and NAME.failures.json, so several reports can share a folder.)

Buckets are PhyWorld's: in, out (the union of the next four), r_out, v_out, rv_out, zero. Like
PhyWorld, clips with a small ball (r < 0.6 for one ball, r <= 0.5 for a collision) are left
out of the buckets unless `keep_small`; they are counted as `skipped`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from physar.data.generate import load_metadata
from physar.evaluation.metrics import clip_errors
from physar.evaluation.parse import parse_frames
from physar.video import VideoReadError, read_video

BUCKET_ORDER = ("in", "out", "r_out", "v_out", "rv_out", "zero")
OOD_BUCKETS = ("r_out", "v_out", "rv_out", "zero")
# PhyWorld's published ground-truth floor (256 px, its pixel convention) and DiT-S at 30K clips.
PHYWORLD_FLOOR = {"uniform": 0.0099, "collision": 0.0117, "parabola": 0.0210}


def is_small(record: dict) -> bool:
    """PhyWorld's evaluator drops balls this small ('disappearing balls')."""
    radii = record["radii"]
    if record["scene"] == "collision":
        return min(radii) <= 0.5
    if record["scene"] in ("uniform", "parabola"):
        return radii[0] < 0.6
    return False


def initial_speed(record: dict) -> float:
    """The x axis of the report plot: the (first) ball's initial speed."""
    v = record["velocities"][0][0]
    return float(math.hypot(v[0], v[1]))


def clip_result(record: dict, frames: np.ndarray, convention: str) -> dict:
    """Errors of one clip given the frames to judge (generated or ground truth)."""
    parsed = parse_frames(frames[: record["num_frames"]], record["colors"], convention)
    return clip_errors(
        record["scene"], parsed.positions, parsed.radii, parsed.found,
        np.asarray(record["positions"]), np.asarray(record["velocities"]), np.asarray(record["radii"]),
        record["conditioning_frames"], record["frame_dt"], [tuple(c) for c in record["collisions"]],
    )


def _judge(record: dict, root: Path, convention: str) -> dict:
    """Read one video and measure it; a bad video gives {"error": message}."""
    try:
        frames = read_video(root / record["video"])
    except VideoReadError as e:
        return {"error": str(e)}
    if len(frames) < record["num_frames"]:
        return {"error": f"{root / record['video']}: {len(frames)} frames, expected {record['num_frames']}"}
    if frames.shape[1] != frames.shape[2]:
        return {"error": f"{root / record['video']}: frames are {frames.shape[2]}x{frames.shape[1]}, not square"}
    return clip_result(record, frames, convention)


def _aggregate(rows: list[dict], key: str) -> float | None:
    vals = np.array([r[key] for r in rows if key in r], dtype=float)
    vals = vals[np.isfinite(vals)]
    return float(vals.mean()) if len(vals) else None


def summarize(clips: list[dict]) -> dict:
    """{scene: {bucket: stats}} from per-clip results (each with scene, bucket, small, errors)."""
    report: dict[str, dict] = {}
    for scene in sorted({c["scene"] for c in clips}):
        by_bucket: dict[str, list[dict]] = defaultdict(list)
        for c in clips:
            if c["scene"] == scene:
                by_bucket[c["bucket"]].append(c)
                if c["bucket"] in OOD_BUCKETS:
                    by_bucket["out"].append(c)
        report[scene] = {}
        for bucket in BUCKET_ORDER:
            rows = by_bucket.get(bucket, [])
            if not rows:
                continue
            kept = [r for r in rows if not r["small"] and "error" not in r]
            scored = [r for r in kept if math.isfinite(r.get("vel_error", float("nan")))]
            stats = {"vel_error": _aggregate(scored, "vel_error"), "n": len(scored),
                     "failed": sum("error" in r for r in rows), "skipped": sum(r["small"] for r in rows),
                     "no_valid_frames": len(kept) - len(scored)}
            for key in ("floor", "x_vel_error", "y_vel_error", "pre_vel_error", "momentum_error", "energy_error",
                        "x_err", "y_err", "delta_r", "found_rate"):
                value = _aggregate(scored, key)
                if value is not None:
                    stats[key] = value
            report[scene][bucket] = stats
    return report


def evaluate(data_dir: str | Path, videos_dir: str | Path | None = None, convention: str = "exact",
             out: str | Path | None = None, keep_small: bool = False, progress: bool = True) -> dict:
    """Measure the videos of `videos_dir` (default: the dataset's own) against `data_dir`."""
    from tqdm import tqdm

    data_dir = Path(data_dir)
    records = load_metadata(data_dir)
    judged_root = Path(videos_dir) if videos_dir is not None else data_dir
    out = Path(out) if out is not None else judged_root / "report.json"
    clips, failures = [], []
    for record in tqdm(records, desc=f"evaluate {judged_root}", unit="clip", disable=not progress):
        result = _judge(record, judged_root, convention)
        if videos_dir is not None and "error" not in result:  # the ground-truth floor of the same clip
            floor = _judge(record, data_dir, convention)
            if "vel_error" in floor:
                result["floor"] = floor["vel_error"]
        if "error" in result:
            failures.append({"video": record["video"], "error": result["error"]})
        result.update(video=record["video"], scene=record["scene"], bucket=record["bucket"],
                      params=record["params"], initial_speed=initial_speed(record),
                      small=(not keep_small) and is_small(record))
        clips.append(result)
    if videos_dir is None:  # the dataset's own videos: every error is the floor itself
        for c in clips:
            if "vel_error" in c:
                c["floor"] = c["vel_error"]
    report = summarize(clips)
    write_report(report, clips, failures, out, data_dir, judged_root, convention)
    return report


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def markdown(report: dict, title: str = "Velocity error") -> str:
    lines = [f"## {title}", "",
             "| scene | bucket | n | vel_error | GT floor | failed | skipped (small r) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for scene, buckets in report.items():
        for bucket, s in buckets.items():
            lines.append(f"| {scene} | {bucket} | {s['n']} | {_fmt(s['vel_error'])} | {_fmt(s.get('floor'))} | "
                         f"{s['failed']} | {s['skipped']} |")
    return "\n".join(lines) + "\n"


def write_report(report: dict, clips: list[dict], failures: list[dict], out: Path, data_dir: Path,
                 judged_root: Path, convention: str, id_boxes: dict | None = None) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    # beside report.json: clips.jsonl, failures.json; beside another name (several reports in one folder) NAME.clips.jsonl ...
    prefix = "" if out.stem == "report" else out.stem + "."
    with open(out.with_name(prefix + "clips.jsonl"), "w") as f:
        for c in clips:
            f.write(json.dumps(c) + "\n")
    out.with_name(prefix + "failures.json").write_text(json.dumps(failures, indent=1))
    header = (f"# Evaluation report\n\nground truth: `{data_dir}`  \nvideos judged: `{judged_root}`  \n"
              f"pixel convention: `{convention}`  \nunreadable or short videos: {len(failures)}\n\n")
    out.with_suffix(".md").write_text(header + markdown(report))
    info = data_dir / "dataset.json"
    id_box = json.loads(info.read_text()).get("id_box") if info.is_file() else None
    plot_velocity_error(clips, out.with_suffix(".png"), id_box)


def plot_velocity_error(clips: list[dict], path: Path, id_box: dict | None = None) -> None:
    """Per-clip velocity error against initial speed, one panel per scene, ID speeds shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenes = sorted({c["scene"] for c in clips})
    fig, axes = plt.subplots(1, len(scenes), figsize=(5.5 * len(scenes), 4), squeeze=False)
    colors = {"in": "tab:green", "r_out": "tab:orange", "v_out": "tab:red", "rv_out": "tab:purple", "zero": "tab:brown"}
    for ax, scene in zip(axes[0], scenes):
        rows = [c for c in clips if c["scene"] == scene and not c["small"] and np.isfinite(c.get("vel_error", np.nan))]
        if id_box:
            ax.axvspan(*id_box["v"], color="tab:green", alpha=0.08, label="training speeds")
        for bucket, color in colors.items():
            pts = [(c["initial_speed"], c["vel_error"]) for c in rows if c["bucket"] == bucket]
            if pts:
                x, y = zip(*pts)
                ax.scatter(x, y, s=10, color=color, alpha=0.7, label=bucket)
        floor = [(c["initial_speed"], c["floor"]) for c in rows if "floor" in c and c["floor"] is not None]
        if floor and any(c.get("floor") != c.get("vel_error") for c in rows):
            x, y = zip(*floor)
            ax.scatter(x, y, s=6, color="grey", marker="x", alpha=0.5, label="GT floor")
        label_speed_panel(ax, scene, "velocity error")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def label_speed_panel(ax, scene: str, ylabel: str) -> None:
    """Titles, axes and legend of one scene's panel of error against initial speed."""
    ax.set_title(scene)
    ax.set_xlabel("initial speed of the first ball (world units / s)")
    ax.set_ylabel(ylabel)
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
