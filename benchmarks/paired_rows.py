"""One row against another, clip by clip, over one or more `physar compare` folders, and pooled.

`physar compare` pairs every row with its first row on the folder's own clips. To judge another
pair (e.g. an RL run against its own SFT start), or the same pair on a second evaluation set
(`physar compare --seed 3 --out ...`), this reads each folder's per-clip reports
(`<folder>/<row>/reports/<scene>/clips.jsonl`) and prints, per scene and for ID / OOD clips, the mean
velocity error of both rows and the mean per-clip difference (row minus reference) with its 95%
bootstrap interval: for each folder, then for all folders pooled (clips of different folders are
different clips; two folders holding one scene's clips of the same seed are refused, those would count twice).

    python benchmarks/paired_rows.py --reference sft-v11-lm-reads --row rl-v11-reading-velocity \\
        --compare outputs/compare_v6 outputs/compare_seed3_pc [--scene collision parabola]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from physar.lm.assess import paired_differences


def row_clips(folder: Path, row: str, scenes: list[str] | None) -> list[dict]:
    reports = folder / row / "reports"
    if not reports.is_dir():
        raise SystemExit(f"error: {folder} has no row {row!r} (no {reports})")
    clips = []
    for path in sorted(reports.glob("*/clips.jsonl")):
        if scenes is None or path.parent.name in scenes:
            clips += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return clips


def evaluation_sets(folder: Path, clips: list[dict]) -> set:
    """The (scene, seed) of each evaluation set these clips of the folder come from."""
    def seed(scene):
        dataset = folder / "data" / scene / "dataset.json"
        return json.loads(dataset.read_text()).get("seed") if dataset.is_file() else None
    return {(scene, seed(scene)) for scene in {c["scene"] for c in clips}}


def mean_error(clips: list[dict], scene: str, group: str, videos: set) -> float:
    return float(np.mean([c["vel_error"] for c in clips if c["scene"] == scene and (c["scene"], c["video"]) in videos
                          and (c["bucket"] == "in") == (group == "in")]))


def table(title: str, reference: list[dict], row: list[dict], ref_label: str, row_label: str) -> str:
    pairs = paired_differences({ref_label: reference, row_label: row})
    scored = lambda c: not c["small"] and np.isfinite(c.get("vel_error", np.nan))  # noqa: E731 (as paired_differences)
    both = {(c["scene"], c["video"]) for c in reference if scored(c)} & {(c["scene"], c["video"]) for c in row if scored(c)}
    lines = [f"\n{title}", f"| scene | clips | n | {ref_label} | {row_label} | difference [95% interval] |",
             "|---|---|---:|---:|---:|---|"]
    for p in pairs:
        lines.append(f"| {p['scene']} | {'ID' if p['group'] == 'in' else 'OOD'} | {p['n']} | "
                     f"{mean_error(reference, p['scene'], p['group'], both):.3f} | "
                     f"{mean_error(row, p['scene'], p['group'], both):.3f} | "
                     f"{p['mean']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="label of the row to compare against (e.g. the SFT start)")
    parser.add_argument("--row", required=True, help="label of the row judged against it")
    parser.add_argument("--compare", type=Path, nargs="+", required=True,
                        help="`physar compare --out` folders holding both rows (several: also pooled)")
    parser.add_argument("--scene", nargs="+", help="only these scenes (default: every scene both rows were judged on)")
    args = parser.parse_args(argv)

    seen: dict = {}
    pooled_ref, pooled_row = [], []
    for k, folder in enumerate(args.compare):
        reference, row = row_clips(folder, args.reference, args.scene), row_clips(folder, args.row, args.scene)
        sets = evaluation_sets(folder, reference)
        for scene, seed in sets:
            if (scene, seed) in seen:
                raise SystemExit(f"error: {folder} and {seen[scene, seed]} hold the same {scene} clips (seed {seed}): "
                                 "pooled, they would count twice")
            seen[scene, seed] = folder
        names = ", ".join(f"{scene} seed {seed}" for scene, seed in sorted(sets, key=str))
        print(table(f"{folder} ({names})", reference, row, args.reference, args.row))
        prefix = lambda clips: [{**c, "video": f"{k}/{c['video']}"} for c in clips]  # noqa: E731
        pooled_ref += prefix(reference)
        pooled_row += prefix(row)
    if len(args.compare) > 1:
        print(table("pooled", pooled_ref, pooled_row, args.reference, args.row))


if __name__ == "__main__":
    sys.exit(main())
