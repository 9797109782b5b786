"""The `physar` command line: thin wrappers that turn options into library calls.

Heavy imports live inside the commands so that `--help` stays fast. Any error a user can
cause (a bad recipe, a folder that holds another dataset, a missing file) ends with one
line on stderr and exit status 2.
"""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Phys-AR: simulate physics datasets, evaluate video generators (PhyWorld's metric).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Simulated datasets: generate splits from a recipe, preview them.", no_args_is_help=True)
app.add_typer(data_app, name="data")


class Split(str, Enum):
    train = "train"
    eval = "eval"


class Convention(str, Enum):
    exact = "exact"
    phyworld = "phyworld"


@data_app.command("generate")
def data_generate(
    recipe: Path = typer.Option(..., help="Dataset recipe YAML, e.g. datasets/uniform.yaml."),
    split: Split = typer.Option(..., help="train: the recipe's training grid or sample; eval: its ID and OOD evaluation sets."),
    out: Path = typer.Option(..., help="Output folder. Re-running the same command resumes an interrupted run."),
    count: Optional[int] = typer.Option(None, help="Number of clips: a seeded subset of a training grid, or every eval set shrunk in proportion. Default: all."),
    resolution: Optional[int] = typer.Option(None, help="Frame size in pixels (square). Default: the recipe's (64)."),
    seed: Optional[int] = typer.Option(None, help="Random seed; the same seed gives the same states. Default: the recipe's."),
    workers: int = typer.Option(2, help="Worker processes."),
):
    """Simulate, render and write one split of a recipe: lossless mp4s and metadata.jsonl."""
    from physar.data.generate import generate

    info = generate(recipe, split.value, out, count=count, resolution=resolution, seed=seed, workers=workers)
    typer.echo(f"{out}: {info['num_clips']} clips {info['buckets']}"
               + (f", {info['num_dropped']} grid points dropped (no valid placement)" if info["num_dropped"] else ""))


@data_app.command("show")
def data_show(
    data_dir: Path = typer.Argument(..., help="A dataset folder written by `physar data generate`."),
    out: Optional[Path] = typer.Option(None, help="Folder for strip.png and the GIFs. Default: DATA_DIR/previews."),
    clips: int = typer.Option(6, help="How many clips (one per bucket first)."),
    frames: int = typer.Option(8, help="Frames per clip in the strip, evenly spaced."),
    videos: Optional[Path] = typer.Option(None, help="Show the videos of this folder (same file names) instead of the dataset's own."),
    gif: bool = typer.Option(True, help="Also write one GIF per shown clip."),
):
    """Write preview strips (PNG) and GIFs of a few clips."""
    from physar.data.show import show

    typer.echo(show(data_dir, out, clips, frames, videos, gif))


@app.command("evaluate")
def evaluate_cmd(
    data_dir: Path = typer.Argument(..., help="Ground truth: a dataset folder with metadata.jsonl."),
    videos: Optional[Path] = typer.Option(None, help="Folder of videos to judge, same relative file names as DATA_DIR. Default: DATA_DIR's own videos (the parser's ground-truth floor)."),
    convention: Convention = typer.Option(Convention.exact, help="Pixel-to-world mapping: exact (pixel i at 10 i/(W-1), as rendered) or phyworld (10 i/W, PhyWorld's evaluator; for comparison with the paper)."),
    out: Optional[Path] = typer.Option(None, help="Path of report.json; report.md, report.png, clips.jsonl and failures.json go beside it. Default: VIDEOS (or DATA_DIR)/report.json."),
    keep_small: bool = typer.Option(False, help="Keep clips with small balls, which PhyWorld's evaluator leaves out (r < 0.6; collision r <= 0.5)."),
):
    """Velocity errors per scene and bucket (PhyWorld's parser and metric), with the ground-truth floor."""
    from physar.evaluation.evaluate import evaluate, markdown

    report = evaluate(data_dir, videos, convention.value, out, keep_small)
    typer.echo(markdown(report))


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("outputs/demo"), help="Report folder."),
    count: int = typer.Option(300, help="Evaluation clips per scene (ID and OOD buckets in proportion)."),
    resolution: int = typer.Option(64, help="Frame size in pixels."),
    workers: int = typer.Option(2, help="Worker processes for simulation."),
):
    """The main job: simulate a small evaluation set of each scene, evaluate it, write a report."""
    from physar.demo import run_demo

    typer.echo(run_demo(out, count, resolution, workers))


def main() -> None:
    from physar.data.generate import GenerationError
    from physar.data.recipe import RecipeError
    from physar.video import VideoReadError

    try:
        app()
    except (RecipeError, GenerationError, VideoReadError, FileNotFoundError, NotADirectoryError) as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished shards are kept; run the same command again to resume", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
