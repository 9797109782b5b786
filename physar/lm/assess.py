"""Evaluate an LM checkpoint in one call: simulate the ID and OOD evaluation sets of each recipe
(at the checkpoint's resolution), generate every clip from its conditioning frames, measure the
velocity errors with the evaluator (ground-truth floor beside them) and the agreement between the
decoded frames and the model's own symbolic states, and write one report folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from physar.data.generate import generate
from physar.evaluation.evaluate import evaluate, markdown
from physar.lm.generate import generate_dataset

# PhyWorld's smallest DiT (DiT-S) trained on 30K clips, ID velocity error (research/phyworld.md)
PHYWORLD_DIT_S_30K_ID = {"uniform": 0.022, "collision": 0.027, "parabola": 0.051}


def evaluate_checkpoint(checkpoint: str | Path, recipes: list[str | Path], out: str | Path, count: int | None = 150,
                        convention: str = "exact", batch_size: int = 16, greedy: bool = True, seed: int = 0,
                        workers: int = 2, progress: bool = True, data_root: str | Path | None = None) -> dict:
    """`data_root` (default OUT/data) holds the simulated evaluation sets; give several checkpoints
    the same one and they are judged on the same clips."""
    from physar.lm.model import load_checkpoint

    _, _, lang, meta = load_checkpoint(checkpoint)
    out = Path(out)
    data_root = Path(data_root) if data_root is not None else out / "data"
    velocity, generation, clock = {}, {}, time.time()
    for recipe in map(Path, recipes):
        name = recipe.stem
        data = data_root / name
        generate(recipe, "eval", data, count=count, resolution=meta["resolution"], seed=seed, workers=workers,
                 progress=progress)
        videos = out / "videos" / name
        generation[name] = generate_dataset(checkpoint, data, videos, greedy=greedy, batch_size=batch_size, seed=seed,
                                            progress=progress)
        velocity.update(evaluate(data, videos, convention, out / "reports" / name / "report.json", progress=progress))
    report = {"checkpoint": str(checkpoint), "symbolic": lang.symbolic, "convention": convention,
              "velocity": velocity, "generation": generation, "seconds": round(time.time() - clock, 1)}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    return report


def report_markdown(report: dict) -> str:
    lines = [f"# Checkpoint evaluation: `{report['checkpoint']}`", "",
             f"format: {'symbolic' if report['symbolic'] else 'visual-only'}; pixel convention: {report['convention']}; "
             f"took {report['seconds']:.0f} s", "",
             markdown(report["velocity"], "Velocity error of generated clips (GT floor: the parser on the true videos)"),
             "PhyWorld DiT-S trained on 30K clips, ID: "
             + ", ".join(f"{k} {v}" for k, v in PHYWORLD_DIT_S_30K_ID.items()) + " (its 256 px convention).", "",
             "## Generation", "",
             "| set | clips | parsed | s / clip | decoded vs symbolic, median px | p95 px | balls found |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, g in report["generation"].items():
        a = g["agreement_px"]
        fmt = (lambda x: "-" if x is None else f"{x:.2f}")
        lines.append(f"| {name} | {g['clips']} | {g['parse_rate']:.1%} | {g['seconds_per_clip']:.2f} | {fmt(a['median'])} | "
                     f"{fmt(a['p95'])} | {fmt(g['agreement_found'])} |")
    lines += ["", "Per-scene plots: `reports/<set>/report.png`; previews: `videos/<set>/previews/strip.png`."]
    return "\n".join(lines) + "\n"


def compare(rows: dict[str, str | Path], recipes: list[str | Path], out: str | Path, count: int | None = 150,
            convention: str = "exact", batch_size: int = 16, progress: bool = True) -> str:
    """Evaluate several checkpoints (label -> checkpoint) on the same simulated clips; one table
    of velocity error per scene and bucket, one column per row, the GT floor beside them."""
    out = Path(out)
    reports = {label: evaluate_checkpoint(ckpt, recipes, out / label, count, convention, batch_size, progress=progress,
                                          data_root=out / "data")
               for label, ckpt in rows.items()}
    first = next(iter(reports.values()))["velocity"]
    labels = list(reports)
    lines = ["| scene | bucket | n | " + " | ".join(labels) + " | GT floor |",
             "|---|---|---:|" + "---:|" * (len(labels) + 1)]
    for scene, buckets in first.items():
        for bucket, stats in buckets.items():
            cells = []
            for label in labels:
                s = reports[label]["velocity"].get(scene, {}).get(bucket, {})
                cells.append("-" if s.get("vel_error") is None else f"{s['vel_error']:.4f}")
            floor = stats.get("floor")
            lines.append(f"| {scene} | {bucket} | {stats['n']} | " + " | ".join(cells)
                         + f" | {'-' if floor is None else f'{floor:.4f}'} |")
    parse = ["", "| row | parsed | s / clip | decoded vs symbolic, median px |", "|---|---:|---:|---:|"]
    for label, r in reports.items():
        g = list(r["generation"].values())
        median = [x["agreement_px"]["median"] for x in g if x["agreement_px"]["median"] is not None]
        parse.append(f"| {label} | {sum(x['parsed'] for x in g)}/{sum(x['clips'] for x in g)} | "
                     f"{np.mean([x['seconds_per_clip'] for x in g]):.2f} | "
                     f"{'-' if not median else f'{np.mean(median):.2f}'} |")
    text = (f"# Comparison ({convention} pixel mapping, velocity error, lower is better)\n\n"
            + "\n".join(lines + parse) + "\n\nPhyWorld DiT-S at 30K clips, ID: "
            + ", ".join(f"{k} {v}" for k, v in PHYWORLD_DIT_S_30K_ID.items()) + "\n")
    (out / "comparison.md").write_text(text)
    (out / "comparison.json").write_text(json.dumps({k: v["velocity"] for k, v in reports.items()}, indent=1))
    return text
