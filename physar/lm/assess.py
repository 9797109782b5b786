"""Evaluate an LM checkpoint in one call: simulate the ID and OOD evaluation sets of each recipe
(at the checkpoint's resolution), generate every clip from its conditioning frames, measure the
velocity errors with the evaluator (ground-truth floor beside them) and the agreement between the
decoded frames and the model's own symbolic states, and write one report folder."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from physar.data.generate import generate, load_metadata
from physar.evaluation.evaluate import evaluate, initial_speed, is_small, label_speed_panel, markdown, summarize
from physar.evaluation.metrics import clip_errors
from physar.language import object_order
from physar.lm.drawing import DRAWER
from physar.lm.frame_reading import STATE_READER
from physar.lm.generate import generate_dataset
from physar.tokenizer.codec import decoder_fingerprint, weights_fingerprint

READING_CAPTION = ("The model's <state> block against the simulator at the last conditioning frame: median error over "
                   "balls, world units (position and velocity as vector distances).")
EVALUATION_SEED = 0  # the seed of the evaluation sets every checkpoint is judged on (RL prompts must differ)
# PhyWorld's published velocity errors (research/phyworld.md 3.4; its 256 px convention). It reports
# OOD as one number over all OOD buckets, so these sit beside our "out" row.
PHYWORLD_DIT_S_30K_ID = {"uniform": 0.022, "collision": 0.027, "parabola": 0.051}
PHYWORLD_DIT_S_30K_OOD = {"uniform": 0.435, "collision": 0.187, "parabola": 0.307}
PHYWORLD_BEST_DIT_ID = {"uniform": 0.0124, "collision": 0.0153, "parabola": 0.0331}  # DiT-L 3M
PHYWORLD_BEST_DIT_OOD = {"uniform": 0.288, "collision": 0.153, "parabola": 0.288}  # best of S/B/L x 30K/300K/3M


def evaluate_checkpoint(checkpoint: str | Path, recipes: list[str | Path], out: str | Path, count: int | None = 150,
                        convention: str = "exact", batch_size: int = 16, greedy: bool = True, seed: int = EVALUATION_SEED,
                        workers: int = 2, progress: bool = True, data_root: str | Path | None = None,
                        state_from: str | None = None, draw: str | None = None) -> dict:
    """`data_root` (default OUT/data) holds the simulated evaluation sets; give several checkpoints
    the same one and they are judged on the same clips. `state_from`: who reads the <state> block;
    `draw`: who draws the frames (`generate_dataset`; None: the checkpoint's own setting)."""
    from physar.lm.model import generation_settings, load_checkpoint

    _, _, lang, meta = load_checkpoint(checkpoint)
    state_from, draw = generation_settings(meta, state_from, draw)
    out = Path(out)
    data_root = Path(data_root) if data_root is not None else out / "data"
    velocity, states, reading, generation, clock = {}, {}, {}, {}, time.time()
    for recipe in map(Path, recipes):
        name = recipe.stem
        data = data_root / name
        generate(recipe, "eval", data, count=count, resolution=meta["resolution"], seed=seed, workers=workers,
                 progress=progress)
        videos = out / "videos" / name
        generation[name] = generate_dataset(checkpoint, data, videos, greedy=greedy, batch_size=batch_size, seed=seed,
                                            progress=progress, state_from=state_from, draw=draw)
        velocity.update(evaluate(data, videos, convention, out / "reports" / name / "report.json", progress=progress))
        if lang.symbolic:
            states.update(symbolic_velocity_error(data, videos))
            reading.update(state_reading_error(data, videos))
    data_settings = {Path(r).stem: json.loads((data_root / Path(r).stem / "dataset.json").read_text())["settings"]
                     for r in recipes}
    report = {"checkpoint": str(checkpoint), "weights_sha256": weights_fingerprint(checkpoint),
              "tokenizer_sha256": decoder_fingerprint(meta["tokenizer"]),
              "greedy": greedy, "state_from": state_from, "state_reader": STATE_READER if state_from == "frames" else None,
              "draw": draw, "drawer": DRAWER if draw == "renderer" else None, "data_settings": data_settings, "symbolic": lang.symbolic,
              "convention": convention,
              "velocity": velocity, "symbolic_velocity": states, "state_reading": reading, "generation": generation,
              "seconds": round(time.time() - clock, 1)}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    (out / "report.md").write_text(report_markdown(report))
    return report


def finished_report(folder: str | Path, checkpoint: str | Path, recipes: list[str | Path], data_root: str | Path,
                    convention: str, greedy: bool = True, state_from: str = "model", draw: str = "lm") -> dict | None:
    """An earlier `evaluate_checkpoint` report in `folder` that still holds: the same weights and
    DDT tokenizer (weights and config, by fingerprint), pixel convention and decoding, <state> reader
    (STATE_READER, for a block read from the frames), drawing (DRAWER, for frames the renderer
    draws), and every
    recipe's clips in `data_root` simulated with the settings it recorded. None when anything
    differs or is missing (old reports too)."""
    from physar.lm.model import tokenizer_folder

    path = Path(folder) / "report.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text())
    if (report.get("weights_sha256") != weights_fingerprint(checkpoint) or report.get("convention") != convention
            or report.get("tokenizer_sha256") != decoder_fingerprint(tokenizer_folder(checkpoint))
            or report.get("greedy") != greedy or report.get("state_from", "model") != state_from
            or report.get("draw", "lm") != draw
            or (state_from == "frames" and report.get("state_reader") != STATE_READER)
            or (draw == "renderer" and report.get("drawer") != DRAWER)):
        return None
    for name in (Path(r).stem for r in recipes):
        path = Path(data_root) / name / "dataset.json"
        info = json.loads(path.read_text()) if path.is_file() else {}
        if (info.get("status") != "complete" or info.get("settings") != report.get("data_settings", {}).get(name)
                or not (Path(folder) / "reports" / name / "clips.jsonl").is_file()):
            return None
    return report


def generated_clips(data_dir: str | Path, videos_dir: str | Path):
    """(metadata record, generated trajectory) for each line of VIDEOS_DIR/trajectories.jsonl."""
    records = {r["video"]: r for r in load_metadata(data_dir)}
    for line in (Path(videos_dir) / "trajectories.jsonl").read_text().splitlines():
        generated = json.loads(line)
        yield records[generated["video"]], generated


def symbolic_velocity_error(data_dir: str | Path, videos_dir: str | Path) -> dict:
    """The evaluator's metric on the model's own symbolic states (VIDEOS_DIR/trajectories.jsonl)
    instead of its decoded frames: how well the LM learnt the physics, apart from how well it
    draws it. A ball the model did not name is handled as the evaluator handles a ball it cannot
    find (PhyWorld's edge fallback)."""
    clips = []
    for r, generated in generated_clips(data_dir, videos_dir):
        cond, frames, balls = r["conditioning_frames"], r["num_frames"], len(r["radii"])
        positions, found = np.full((frames, balls, 2), np.nan), np.zeros((frames, balls), dtype=bool)
        states = np.asarray(generated["positions"])  # [frames - cond, objects the model named, 2]
        for i, j in enumerate(object_order(generated["objects"], r["colors"])):
            if j is not None:
                positions[cond:, i], found[cond:, i] = states[:, j], True
        radii = np.asarray(r["radii"], dtype=float)
        errors = clip_errors(r["scene"], positions, np.tile(radii, (frames, 1)), found, np.asarray(r["positions"]),
                             np.asarray(r["velocities"]), radii, cond, r["frame_dt"], [tuple(c) for c in r["collisions"]])
        clips.append({**errors, "video": r["video"], "scene": r["scene"], "bucket": r["bucket"],
                      "initial_speed": initial_speed(r), "small": is_small(r)})
    return summarize(clips)


def state_reading_error(data_dir: str | Path, videos_dir: str | Path) -> dict:
    """How well the model read the scene from the conditioning frames: its <state> block (each
    ball's radius, position and velocity) against the simulator's at the last conditioning frame,
    per scene and group ("in", "out": every OOD bucket). Medians over balls, world units; balls the
    model did not name are counted in `missed`, not in the medians."""
    balls: dict[tuple[str, str], list[list[float]]] = {}
    missed: dict[tuple[str, str], int] = {}
    for r, generated in generated_clips(data_dir, videos_dir):
        key = (r["scene"], "in" if r["bucket"] == "in" else "out")
        last = r["conditioning_frames"] - 1
        for i, j in enumerate(object_order(generated["objects"], r["colors"])):
            if j is None:
                missed[key] = missed.get(key, 0) + 1
                continue
            o = generated["objects"][j]
            balls.setdefault(key, []).append([
                float(np.hypot(o["x"] - r["positions"][last][i][0], o["y"] - r["positions"][last][i][1])),
                float(np.hypot(o["vx"] - r["velocities"][last][i][0], o["vy"] - r["velocities"][last][i][1])),
                abs(o["r"] - r["radii"][i])])
    out: dict[str, dict] = {}
    for (scene, group) in sorted(set(balls) | set(missed)):
        errors = np.asarray(balls.get((scene, group), []), dtype=float).reshape(-1, 3)
        medians = np.median(errors, axis=0) if len(errors) else [None] * 3
        out.setdefault(scene, {})[group] = {"balls": len(errors), "missed": missed.get((scene, group), 0),
                                            **{k: None if m is None else float(m)
                                               for k, m in zip(("position", "velocity", "radius"), medians)}}
    return out


def report_markdown(report: dict) -> str:
    lines = [f"# Checkpoint evaluation: `{report['checkpoint']}`", "",
             f"format: {'symbolic' if report['symbolic'] else 'visual-only'}; pixel convention: {report['convention']}; "
             f"took {report['seconds']:.0f} s"
             + ("; <state> block read from the conditioning frames by the parser, not the model"
                if report.get("state_from") == "frames" else "")
             + ("; frames drawn by the renderer from the model's states" if report.get("draw") == "renderer" else ""), "",
             markdown(report["velocity"], "Velocity error of generated clips (GT floor: the parser on the true videos)"),
             "PhyWorld DiT-S trained on 30K clips, ID: "
             + ", ".join(f"{k} {v}" for k, v in PHYWORLD_DIT_S_30K_ID.items()) + " (its 256 px convention).", ""]
    if report.get("symbolic_velocity"):
        lines += [markdown(report["symbolic_velocity"], "Velocity error of the model's symbolic states (the physics it "
                                                         "wrote, before drawing it)"), ""]
    if report.get("state_reading"):
        lines += ["## Reading the scene", "", READING_CAPTION, "", "| scene | group | balls | missed | position | velocity | radius |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        fmt = (lambda x: "-" if x is None else f"{x:.3f}")
        for scene, groups in report["state_reading"].items():
            for group, e in groups.items():
                lines.append(f"| {scene} | {group} | {e['balls']} | {e['missed']} | {fmt(e['position'])} | "
                             f"{fmt(e['velocity'])} | {fmt(e['radius'])} |")
        lines.append("")
    lines += ["## Generation", "",
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
            convention: str = "exact", batch_size: int = 16, progress: bool = True, page: str | Path | None = None,
            command: str | None = None, reuse: bool = False, state_from_frames: tuple[str, ...] = (),
            drawn_by_renderer: tuple[str, ...] = (), seed: int = EVALUATION_SEED) -> str:
    """Evaluate several checkpoints (label -> checkpoint) on the same simulated clips; one table
    of velocity error per scene and bucket, one column per row, PhyWorld's published DiT errors and
    the GT floor beside them, and a plot of error against initial speed. `page`: also write the
    table and the plot as a results page (Markdown + PNG beside it) that records `command`.
    `reuse`: a row whose folder in OUT holds a `finished_report` for its checkpoint is not generated again.
    `state_from_frames`: labels of rows whose <state> block the parser reads from the conditioning frames;
    `drawn_by_renderer`: labels of rows whose frames the renderer draws from the LM's states.
    `seed`: the evaluation sets' seed (EVALUATION_SEED, the sets every result page is judged on; another
    seed gives other clips of the same buckets, to check a difference on clips nobody chose settings by)."""
    out = Path(out)
    for name, labels in (("state_from_frames", state_from_frames), ("drawn_by_renderer", drawn_by_renderer)):
        unknown = set(labels) - set(rows)
        if unknown:
            raise ValueError(f"{name}: no row labelled {', '.join(sorted(unknown))}")
    reports = {}
    for label, ckpt in rows.items():
        state_from = "frames" if label in state_from_frames else "model"
        draw = "renderer" if label in drawn_by_renderer else "lm"
        earlier = finished_report(out / label, ckpt, recipes, out / "data", convention, state_from=state_from,
                                  draw=draw) if reuse else None
        if earlier is not None and progress:
            print(f"{label}: reusing {out / label}/report.json (same weights, same clips)")
        reports[label] = earlier or evaluate_checkpoint(ckpt, recipes, out / label, count, convention, batch_size,
                                                        seed=seed, progress=progress, data_root=out / "data",
                                                        state_from=state_from, draw=draw)
    clips = {label: [json.loads(line) for recipe in map(Path, recipes)
                     for line in (out / label / "reports" / recipe.stem / "clips.jsonl").read_text().splitlines()]
             for label in rows}
    text = comparison_markdown({k: v["velocity"] for k, v in reports.items()},
                               {k: v["generation"] for k, v in reports.items()}, convention,
                               {k: v["symbolic_velocity"] for k, v in reports.items() if v["symbolic_velocity"]},
                               paired_differences(clips),
                               {k: v["state_reading"] for k, v in reports.items() if v.get("state_reading")})
    (out / "comparison.md").write_text(text)
    (out / "comparison.json").write_text(json.dumps({k: {"checkpoint": str(rows[k]), **{key: v.get(key) for key in (
        "velocity", "symbolic_velocity", "state_reading", "generation")}} for k, v in reports.items()}, indent=1))
    plot_comparison(clips, out / "velocity_vs_speed.png")
    if page is not None:
        page = Path(page)
        page.parent.mkdir(parents=True, exist_ok=True)
        figure = page.with_suffix(".png")
        shutil.copyfile(out / "velocity_vs_speed.png", figure)
        notes = {label: [n for n, on in (("<state> block read from the conditioning frames by the parser",
                                          label in state_from_frames),
                                         ("frames drawn by the renderer from the LM's states", label in drawn_by_renderer))
                         if on] for label in rows}
        rows_text = "\n".join(f"- `{label}`: `{ckpt}`" + (f" ({'; '.join(notes[label])})" if notes[label] else "")
                              for label, ckpt in rows.items())
        page.write_text(f"# Results: Phys-AR rows side by side\n\nProduced by\n\n```\n{command or 'physar compare'}\n```\n\n"
                        f"Rows (checkpoints):\n\n{rows_text}\n\n{text.split(chr(10), 2)[2]}\n"
                        f"![velocity error against initial speed]({figure.name})\n")
    return text


def paired_differences(clips: dict[str, list[dict]], resamples: int = 2000, seed: int = 0) -> list[dict]:
    """Every row against the first on the clips both judged: per scene, for ID and for OOD clips,
    the mean per-clip difference in velocity error and its 95% bootstrap interval (negative: the
    row is better). Rows judged on the same clips differ far less than their means suggest."""
    def scored(c):
        return not c["small"] and np.isfinite(c.get("vel_error", np.nan))

    labels = list(clips)
    base = {(c["scene"], c["video"]): c for c in clips[labels[0]] if scored(c)}
    rng = np.random.default_rng(seed)
    out = []
    for label in labels[1:]:
        for scene in sorted({scene for scene, _ in base}):
            for group in ("in", "out"):
                d = np.array([c["vel_error"] - base[(scene, c["video"])]["vel_error"] for c in clips[label]
                              if c["scene"] == scene and scored(c) and (scene, c["video"]) in base
                              and (c["bucket"] == "in") == (group == "in")])
                if len(d):
                    means = d[rng.integers(0, len(d), (resamples, len(d)))].mean(axis=1)
                    out.append({"row": label, "reference": labels[0], "scene": scene, "group": group, "n": len(d),
                                "mean": float(d.mean()), "low": float(np.percentile(means, 2.5)),
                                "high": float(np.percentile(means, 97.5))})
    return out


def comparison_markdown(velocity: dict[str, dict], generation: dict[str, dict], convention: str,
                        states: dict[str, dict] | None = None, paired: list[dict] | None = None,
                        reading: dict[str, dict] | None = None) -> str:
    """velocity: label -> evaluator report (scene -> bucket -> stats); generation: label -> set -> report;
    states: label -> the same report measured on the symbolic states (symbolic rows only);
    paired: `paired_differences` of the rows' clips; reading: label -> `state_reading_error`."""
    labels = list(velocity)
    first = velocity[labels[0]]
    lines = ["| scene | bucket | n | " + " | ".join(labels) + " | PhyWorld DiT-S 30K | PhyWorld best DiT | GT floor |",
             "|---|---|---:|" + "---:|" * (len(labels) + 3)]
    for scene, buckets in first.items():
        for bucket, stats in buckets.items():
            cells = []
            for label in labels:
                s = velocity[label].get(scene, {}).get(bucket, {})
                cells.append("-" if s.get("vel_error") is None else f"{s['vel_error']:.4f}")
            small, best = {"in": (PHYWORLD_DIT_S_30K_ID, PHYWORLD_BEST_DIT_ID),
                           "out": (PHYWORLD_DIT_S_30K_OOD, PHYWORLD_BEST_DIT_OOD)}.get(bucket, ({}, {}))
            floor = stats.get("floor")
            lines.append(f"| {scene} | {bucket} | {stats['n']} | " + " | ".join(cells)
                         + f" | {small.get(scene, '-')} | {best.get(scene, '-')} | {'-' if floor is None else f'{floor:.4f}'} |")
    parse = ["", "| row | parsed | s / clip | decoded vs symbolic, median px |", "|---|---:|---:|---:|"]
    for label, sets in generation.items():
        g = list(sets.values())
        median = [x["agreement_px"]["median"] for x in g if x["agreement_px"]["median"] is not None]
        parse.append(f"| {label} | {sum(x['parsed'] for x in g)}/{sum(x['clips'] for x in g)} | "
                     f"{np.mean([x['seconds_per_clip'] for x in g]):.2f} | "
                     f"{'-' if not median else f'{np.mean(median):.2f}'} |")
    if states:
        parse += ["", "Velocity error of the symbolic states the rows wrote (the physics, before drawing it):", "",
                  "| scene | bucket | " + " | ".join(states) + " |", "|---|---|" + "---:|" * len(states)]
        for scene, buckets in first.items():
            for bucket in ("in", "out"):
                if bucket in buckets:
                    cells = [states[k].get(scene, {}).get(bucket, {}).get("vel_error") for k in states]
                    parse.append(f"| {scene} | {bucket} | " + " | ".join("-" if c is None else f"{c:.4f}" for c in cells) + " |")
    if reading:
        parse += ["", READING_CAPTION + " Cells: position / velocity / radius.", "",
                  "| scene | group | " + " | ".join(reading) + " |", "|---|---|" + "---:|" * len(reading)]
        fmt = (lambda e: "-" if e is None or e["position"] is None else
               f"{e['position']:.3f} / {e['velocity']:.3f} / {e['radius']:.3f}")
        for scene in first:
            for group in ("in", "out"):
                parse.append(f"| {scene} | {group} | " + " | ".join(fmt(reading[k].get(scene, {}).get(group))
                                                                     for k in reading) + " |")
    if paired:
        parse += ["", f"Paired with `{paired[0]['reference']}` on the same clips: mean per-clip difference in velocity "
                  "error [95% bootstrap interval], negative = better than it:", "",
                  "| row | scene | ID | OOD |", "|---|---|---:|---:|"]
        cell = {(p["row"], p["scene"], p["group"]): f"{p['mean']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] (n {p['n']})"
                for p in paired}
        for row, scene in dict.fromkeys((p["row"], p["scene"]) for p in paired):
            parse.append(f"| {row} | {scene} | {cell.get((row, scene, 'in'), '-')} | {cell.get((row, scene, 'out'), '-')} |")
    return (f"# Comparison ({convention} pixel mapping, velocity error, lower is better)\n\n"
            + "\n".join(lines + parse)
            + "\n\nPhyWorld's numbers are its published ones (256 px, its own pixel convention and evaluation clips; "
              "OOD is one number over its OOD buckets, so it sits in our `out` row). Small balls are left out as "
              "PhyWorld's evaluator does.\n")


def plot_comparison(clips: dict[str, list[dict]], path: Path, bins: int = 12) -> None:
    """Velocity error against the first ball's initial speed, one panel per scene, one line per row
    (median in speed bins, clips as faint points), the GT floor dashed, training speeds shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def points(rows, scene, key):
        return np.array([(c["initial_speed"], c[key]) for c in rows if c["scene"] == scene and not c["small"]
                         and c.get(key) is not None and np.isfinite(c[key])]).reshape(-1, 2)

    def binned_median(pts):
        edges = np.linspace(pts[:, 0].min(), pts[:, 0].max() + 1e-9, bins + 1)
        which = np.digitize(pts[:, 0], edges) - 1
        filled = [b for b in range(bins) if (which == b).any()]
        return [(edges[b] + edges[b + 1]) / 2 for b in filled], [np.median(pts[which == b, 1]) for b in filled]

    first = next(iter(clips.values()))
    scenes = sorted({c["scene"] for c in first})
    fig, axes = plt.subplots(1, len(scenes), figsize=(5.5 * len(scenes), 4), squeeze=False)
    for ax, scene in zip(axes[0], scenes):
        ax.axvspan(1.0, 4.0, color="tab:green", alpha=0.08, label="training speeds")
        for i, (label, rows) in enumerate(clips.items()):
            pts = points(rows, scene, "vel_error")
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=6, color=f"C{i}", alpha=0.25)
                ax.plot(*binned_median(pts), color=f"C{i}", marker=".", label=label)
        floor = points(first, scene, "floor")  # the same clips for every row
        if len(floor):
            ax.plot(*binned_median(floor), color="grey", linestyle="--", marker=".", label="GT floor")
        label_speed_panel(ax, scene, "velocity error (median per speed bin)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
