"""The `physar` command line: thin wrappers that turn options into library calls.

Heavy imports live inside the commands so that `--help` stays fast. Any error a user can
cause (a bad recipe, a folder that holds another dataset, a missing file) ends with one
line on stderr and exit status 2.
"""

from __future__ import annotations

import shlex
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(help="Phys-AR: simulate physics datasets, evaluate video generators (PhyWorld's metric).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
data_app = typer.Typer(help="Simulated datasets: generate splits from a recipe, preview them.", no_args_is_help=True)
app.add_typer(data_app, name="data")
tokenizer_app = typer.Typer(help="The DDT tokenizer: train it, encode datasets to token ids, decode and reconstruct.",
                            no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")


class Split(str, Enum):
    train = "train"
    eval = "eval"


class Convention(str, Enum):
    exact = "exact"
    phyworld = "phyworld"


class StateFrom(str, Enum):
    model = "model"
    frames = "frames"


class Draw(str, Enum):
    lm = "lm"
    renderer = "renderer"


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
    data_dir: Optional[Path] = typer.Argument(None, help="Ground truth: a dataset folder with metadata.jsonl (not with --checkpoint)."),
    videos: Optional[Path] = typer.Option(None, help="Folder of videos to judge, same relative file names as DATA_DIR. Default: DATA_DIR's own videos (the parser's ground-truth floor)."),
    convention: Convention = typer.Option(Convention.exact, help="Pixel-to-world mapping: exact (pixel i at 10 i/(W-1), as rendered) or phyworld (10 i/W, PhyWorld's evaluator; for comparison with the paper)."),
    out: Optional[Path] = typer.Option(None, help="Path of report.json; report.md, report.png, clips.jsonl and failures.json go beside it (for another name, e.g. r_uniform.json: r_uniform.md, r_uniform.png, r_uniform.clips.jsonl, r_uniform.failures.json). Default: VIDEOS (or DATA_DIR)/report.json. With --checkpoint: the report folder (default outputs/eval)."),
    keep_small: bool = typer.Option(False, help="Keep clips with small balls, which PhyWorld's evaluator leaves out (r < 0.6; collision r <= 0.5)."),
    checkpoint: Optional[Path] = typer.Option(None, help="Evaluate an LM checkpoint: simulate each --recipe's eval sets, generate from them, evaluate."),
    recipe: Optional[list[Path]] = typer.Option(None, help="With --checkpoint: dataset recipe(s), e.g. --recipe datasets/uniform.yaml datasets/collision.yaml."),
    count: Optional[int] = typer.Option(150, min=1, help="With --checkpoint: evaluation clips per recipe (ID and OOD in proportion)."),
    batch_size: int = typer.Option(16, min=1, help="With --checkpoint: clips generated together."),
    state_from: Optional[StateFrom] = typer.Option(None, help="With --checkpoint: who reads the scene into the <state> block (see `physar generate --help`)."),
    draw: Optional[Draw] = typer.Option(None, help="With --checkpoint: who draws the generated frames (see `physar generate --help`)."),
):
    """Velocity errors per scene and bucket (PhyWorld's parser and metric), with the ground-truth floor;
    or, with --checkpoint and --recipe, the whole evaluation of an LM checkpoint."""
    if checkpoint is not None:
        from physar.lm.assess import evaluate_checkpoint, report_markdown

        if data_dir is not None or not recipe:
            raise typer.BadParameter("with --checkpoint give --recipe (and no DATA_DIR)")
        report = evaluate_checkpoint(checkpoint, recipe, out or Path("outputs/eval"), count, convention.value, batch_size,
                                     state_from=state_from and state_from.value, draw=draw and draw.value)
        typer.echo(report_markdown(report))
        return
    if data_dir is None:
        raise typer.BadParameter("give DATA_DIR, or --checkpoint with --recipe")
    from physar.evaluation.evaluate import evaluate, markdown

    report = evaluate(data_dir, videos, convention.value, out, keep_small)
    typer.echo(markdown(report))


@app.command("demo")
def demo_cmd(
    out: Path = typer.Option(Path("outputs/demo"), help="Report folder."),
    count: int = typer.Option(300, help="Evaluation clips per scene (ID and OOD buckets in proportion)."),
    resolution: int = typer.Option(64, help="Frame size in pixels."),
    workers: int = typer.Option(2, help="Worker processes for simulation."),
    checkpoint: Optional[Path] = typer.Option(None, help="LM checkpoint to generate with. Default: the shipped checkpoints/sft_cpu_v11 when present (with its own generation settings: the parser reads the <state> block, the renderer draws the frames)."),
    model: bool = typer.Option(True, "--model/--no-model", help="Also generate and evaluate clips with the LM checkpoint."),
    model_count: int = typer.Option(30, min=1, help="Clips per scene the LM generates (ID and OOD in proportion; about 1 s each)."),
    state_from: Optional[StateFrom] = typer.Option(None, help="Who reads the scene into the LM's <state> block (see `physar generate --help`)."),
    draw: Optional[Draw] = typer.Option(None, help="Who draws the LM's generated frames (see `physar generate --help`)."),
    train: bool = typer.Option(False, "--train", help="Instead: run the whole pipeline (simulate, tokenizer, SFT, RL, evaluate) at the tiny preset into OUT/pipeline (a few minutes)."),
):
    """The main job: simulate evaluation sets of each scene, measure the ground-truth floor, generate clips
    at seen and unseen velocities with the shipped LM, evaluate them, write a report. --train: train everything first, at the tiny preset."""
    from physar.demo import SHIPPED_LM, run_demo

    if train:
        from physar.pipeline import run_pipeline

        typer.echo(run_pipeline(out / "pipeline", workers=workers))
        return

    if model and checkpoint is None and (SHIPPED_LM / "physar.json").is_file():
        checkpoint = SHIPPED_LM
    typer.echo(run_demo(out, count, resolution, workers, checkpoint if model else None, model_count, state_from and state_from.value,
                           draw and draw.value))


@tokenizer_app.command("train")
def tokenizer_train(
    config: Path = typer.Option(..., help="Tokenizer config YAML, e.g. configs/tokenizer/cpu.yaml."),
    data: list[Path] = typer.Option(..., help="Dataset folder(s) to take frames from: --data A B C (or --data A --data B)."),
    out: Path = typer.Option(Path("runs/tokenizer"), help="Run folder: checkpoint/, train_state/, log.jsonl, samples/."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last checkpoint."),
    steps: Optional[int] = typer.Option(None, help="Override the config's number of training steps."),
    clips_per_dataset: Optional[int] = typer.Option(None, help="Use this many clips of each folder (an even random spread). Default: all."),
    frames_per_clip: Optional[int] = typer.Option(8, help="Evenly spaced frames kept per clip (memory: 12 KB a frame at 64 px)."),
    init: Optional[Path] = typer.Option(None, help="Start from this tokenizer checkpoint's weights (same architecture) "
                                        "with a fresh optimizer and schedule: fine-tune it with the config's losses."),
):
    """Train the DDT tokenizer (encoder, FSQ, diffusion decoder, one-step renderer); runs under `accelerate launch`."""
    from physar.tokenizer.train import train

    result = train(config, data, out, resume=resume, steps=steps, clips_per_dataset=clips_per_dataset,
                   frames_per_clip=frames_per_clip, init=init)
    typer.echo(f"{out / 'checkpoint'}: {result}")


CHECKPOINT_HELP = "Tokenizer checkpoint folder (config.json + model.safetensors), or a run folder holding checkpoint/."
STEPS_HELP = "Decoder: 0 = the one-step renderer (deterministic, fast); N >= 1 = N-step DDIM with the diffusion decoder."
NUM_TOKENS_HELP = "Decode from only the first n tokens in the LM's order (coarse first). Default: all."


@tokenizer_app.command("encode")
def tokenizer_encode(
    data_dir: Path = typer.Argument(..., help="A dataset folder (metadata.jsonl + videos)."),
    checkpoint: Path = typer.Option(..., help=CHECKPOINT_HELP),
    name: str = typer.Option("ddt", help="Token file name: DATA_DIR/tokens/NAME.safetensors."),
):
    """Encode every clip of a dataset to token ids (an array of clips x frames x K), saved beside it."""
    from physar.tokenizer.codec import encode_dataset

    typer.echo(encode_dataset(data_dir, checkpoint, name))


@tokenizer_app.command("decode")
def tokenizer_decode(
    tokens: Path = typer.Argument(..., help="A token file written by `physar tokenizer encode` (or by a generator)."),
    checkpoint: Path = typer.Option(..., help=CHECKPOINT_HELP),
    out: Path = typer.Option(..., help="Folder for the videos (the file names recorded in the token file)."),
    steps: int = typer.Option(0, min=0, help=STEPS_HELP),
    num_tokens: Optional[int] = typer.Option(None, min=0, help=NUM_TOKENS_HELP),
):
    """Decode token ids to videos."""
    from physar.tokenizer.codec import decode_tokens

    typer.echo(decode_tokens(tokens, checkpoint, out, steps, num_tokens))


@tokenizer_app.command("reconstruct")
def tokenizer_reconstruct(
    data_dir: Path = typer.Argument(..., help="A dataset folder (metadata.jsonl + videos)."),
    checkpoint: Path = typer.Option(..., help=CHECKPOINT_HELP),
    out: Path = typer.Option(..., help="Folder for the reconstructed videos (same file names) and tokenizer_report.md."),
    steps: int = typer.Option(0, min=0, help=STEPS_HELP),
    num_tokens: Optional[int] = typer.Option(None, min=0, help=NUM_TOKENS_HELP),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N clips."),
):
    """Encode and decode every clip; then `physar evaluate DATA_DIR --videos OUT` measures them."""
    from physar.tokenizer.codec import reconstruct, report_markdown

    typer.echo(report_markdown(reconstruct(data_dir, checkpoint, out, steps, num_tokens, limit)))


@tokenizer_app.command("inspect")
def tokenizer_inspect(
    data_dir: Path = typer.Argument(..., help="A dataset folder to take frames from."),
    checkpoint: Path = typer.Option(..., help=CHECKPOINT_HELP),
    out: Path = typer.Option(..., help="Folder for prefixes.md/json/png and prefix_strip.png."),
    clips: int = typer.Option(24, min=1, help="Clips to take three frames from."),
    steps: int = typer.Option(20, min=1, help="DDIM steps for the diffusion rows."),
):
    """The recursive property: reconstruction error when decoding from the first n tokens, and codebook usage."""
    from physar.tokenizer.codec import inspect_prefixes

    inspect_prefixes(data_dir, checkpoint, out, clips, steps)
    typer.echo((out / "prefixes.md").read_text())


@app.command("sft")
def sft_cmd(
    config: Path = typer.Option(..., help="LM config YAML, e.g. configs/lm/cpu.yaml (model size, language, training)."),
    out: Path = typer.Option(Path("runs/sft"), help="Run folder: trainer/ (trl checkpoints, for --resume), log.jsonl, loss.png, checkpoint/."),
    data: Optional[list[Path]] = typer.Option(None, help="Tokenized dataset folder(s) (`physar tokenizer encode`): --data A B C. Default: the config's."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last trl checkpoint."),
    steps: Optional[int] = typer.Option(None, min=1, help="Override the config's number of optimizer steps."),
    base_model: Optional[Path] = typer.Option(None, help="Start from this local Hugging Face causal LM folder (its vocabulary is extended) instead of a fresh Llama."),
    visual_only: bool = typer.Option(False, "--visual-only", help="Train on the visual-only format (no symbolic states): the ablation."),
):
    """Stage 1: supervised fine-tuning of the LM on simulated clips (trl SFTTrainer, completion-only loss); runs
    unchanged under `accelerate launch` / `torchrun` (batch_size is per process)."""
    from physar.lm.runs import is_main_process
    from physar.lm.sft import train_sft

    info = train_sft(config, out, data=data, resume=resume, steps=steps,
                     base_model=str(base_model) if base_model else None, symbolic=False if visual_only else None)
    if is_main_process():  # under accelerate launch / torchrun the others return no summary
        typer.echo(f"{out / 'checkpoint'}: {info['train_clips']} clips, {info['steps']} steps, eval loss {info['eval_loss']}, "
                   f"{info['train_seconds']:.0f} s")


@app.command("rl")
def rl_cmd(
    config: Path = typer.Option(..., help="RL config YAML, e.g. configs/rl/cpu.yaml (SFT checkpoint, prompts, rewards, GRPO settings)."),
    out: Path = typer.Option(Path("runs/rl"), help="Run folder: trainer/ (trl checkpoints, for --resume), log.jsonl, rewards.png, checkpoint/."),
    resume: bool = typer.Option(False, help="Continue the run in --out from its last trl checkpoint."),
    steps: Optional[int] = typer.Option(None, min=1, help="Override the config's number of GRPO steps."),
):
    """Stage 2: GRPO from the SFT checkpoint with physics-consistency rewards (trl GRPOTrainer); runs unchanged
    under `accelerate launch` / `torchrun` (prompts_per_step is per process)."""
    from physar.lm.runs import is_main_process
    from physar.rl.grpo import train_rl

    info = train_rl(config, out, resume=resume, steps=steps)
    if is_main_process():
        typer.echo(f"{out / 'checkpoint'}: {info['prompts']} prompts, {info['rl']['steps']} steps, {info['rl_seconds']:.0f} s")


@app.command("generate")
def generate_cmd(
    checkpoint: Path = typer.Option(..., help="LM checkpoint folder (written by `physar sft`), or its run folder."),
    out: Path = typer.Option(..., help="Folder for the generated videos (same file names as the input), trajectories.jsonl, generation_report.json and previews/."),
    data: Optional[Path] = typer.Option(None, help="Continue every clip of this dataset folder from its conditioning frames."),
    video: Optional[Path] = typer.Option(None, help="Continue one video file from its first frames (at the tokenizer's resolution)."),
    scene: Optional[str] = typer.Option(None, help="Simulate the conditioning frames of one clip of this scene: uniform, collision or parabola. With --video: the scene the video shows (the model is told it)."),
    velocity: float = typer.Option(3.0, help="--scene: speed of the (first) ball, world units/s."),
    radius: float = typer.Option(1.0, help="--scene: radius of the (first) ball, world units."),
    velocity2: float = typer.Option(2.0, help="--scene collision: speed of the second ball (moving left)."),
    radius2: float = typer.Option(1.0, help="--scene collision: radius of the second ball."),
    greedy: bool = typer.Option(True, "--greedy/--sample", help="Greedy decoding, or sampling with --temperature and --top-k."),
    temperature: float = typer.Option(1.0, min=0.01, help="Sampling temperature (with --sample)."),
    top_k: Optional[int] = typer.Option(None, min=1, help="Sample among the k most likely allowed tokens (with --sample)."),
    batch_size: int = typer.Option(16, min=1, help="Clips generated together."),
    limit: Optional[int] = typer.Option(None, min=1, help="--data: only the first N clips."),
    decoder_steps: int = typer.Option(0, min=0, help="DDT decoder: 0 = one-step renderer; N = N-step DDIM."),
    seed: int = typer.Option(0, help="Seed for sampling and for the simulated placement."),
    state_from: Optional[StateFrom] = typer.Option(None, help="Who reads the scene into the <state> block: the LM (model), or the evaluator's parser from the conditioning frames (frames: label-free; the LM then writes only the roll-out). Default: the checkpoint's own setting (physar.json \"generation\"), else model."),
    draw: Optional[Draw] = typer.Option(None, help="Who draws each generated frame: the LM (lm: its visual tokens) or the renderer (renderer: the balls of the LM's own states drawn and DDT-encoded in place of its visual tokens, their keypoint tokens written from the states and each ball in view decoded as a disc there, so the video shows its symbolic physics; physar/lm/drawing.py). Default: the checkpoint's own setting, else lm."),
):
    """Generate the rest of clips with the LM and decode them to videos (constrained decoding: every output parses)."""
    from physar.lm.generate import generate_dataset, single_clip_dataset

    sources = [x for x in (data, video, scene if video is None else None) if x is not None]
    if len(sources) != 1:
        raise typer.BadParameter("give exactly one of --data, --video (with --scene), --scene")
    if data is None:
        data = single_clip_dataset(out / "input", checkpoint, video=video, scene=scene, seed=seed,
                                   params=dict(velocity=velocity, radius=radius, velocity2=velocity2, radius2=radius2))
    report = generate_dataset(checkpoint, data, out, greedy=greedy, temperature=temperature, top_k=top_k,
                              batch_size=batch_size, seed=seed, limit=limit, decoder_steps=decoder_steps,
                              state_from=state_from and state_from.value, draw=draw and draw.value)
    typer.echo(f"{out}: {report['parsed']}/{report['clips']} clips parsed, {report['seconds_per_clip']:.2f} s per clip; "
               f"decoded frames vs symbolic states: {report['agreement_px']} px")


@app.command("compare")
def compare_cmd(
    row: list[str] = typer.Option(..., help="LABEL=CHECKPOINT, one per row: --row symbolic=runs/sft_cpu --row visual=runs/sft_visual."),
    recipe: list[Path] = typer.Option(..., help="Dataset recipe(s) whose eval sets every row is judged on: --recipe A B C."),
    out: Path = typer.Option(Path("outputs/compare"), help="Report folder: comparison.md/json, data/, one folder per row."),
    count: int = typer.Option(150, min=1, help="Evaluation clips per recipe (ID and OOD in proportion)."),
    convention: Convention = typer.Option(Convention.exact, help="Pixel-to-world mapping (see `physar evaluate --help`)."),
    batch_size: int = typer.Option(16, min=1, help="Clips generated together."),
    page: Optional[Path] = typer.Option(None, help="Also write a results page (Markdown, with this command line) and its plot (same name, .png), e.g. docs/results.md."),
    reuse: bool = typer.Option(False, "--reuse", help="Do not generate again a row whose folder in --out already holds its report for the same weights and clips (earlier compares into the same --out)."),
    state_from_frames: list[str] = typer.Option([], help="LABEL of a row whose <state> block the evaluator's parser reads from the conditioning frames instead of the LM (see `physar generate --state-from`); repeat for several."),
    drawn_by_renderer: list[str] = typer.Option([], help="LABEL of a row whose frames the renderer draws from the LM's states instead of the LM (see `physar generate --draw`); repeat for several."),
    seed: int = typer.Option(0, help="Seed of the simulated evaluation sets: 0 is the sets every results page uses; another gives other clips of the same buckets (use a new --out, and not an RL prompt pool's seed)."),
):
    """Judge several LM checkpoints on the same simulated clips: velocity error per scene and bucket
    beside PhyWorld's published DiT errors and the GT floor, and velocity error against initial speed."""
    from physar.lm.assess import compare

    rows = {}
    for item in row:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise typer.BadParameter(f"--row {item!r}: expected LABEL=CHECKPOINT")
        rows[label] = Path(path)
    for option, labels in (("--state-from-frames", state_from_frames), ("--drawn-by-renderer", drawn_by_renderer)):
        for label in labels:
            if label not in rows:
                raise typer.BadParameter(f"{option} {label!r}: no --row has that label")
    command = "physar compare " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    typer.echo(compare(rows, recipe, out, count, convention.value, batch_size, page=page, command=command, reuse=reuse,
                       state_from_frames=tuple(state_from_frames), drawn_by_renderer=tuple(drawn_by_renderer),
                       seed=seed))


MULTI_VALUE_OPTIONS = ("--data", "--recipe")


def _expand_multi_value_options(argv: list[str]) -> list[str]:
    """`--data A B C` -> `--data A --data B --data C` (click takes one value per option)."""
    out, current = [], None
    for arg in argv:
        if arg in MULTI_VALUE_OPTIONS:
            current = arg
            continue
        if current and not arg.startswith("-"):
            out += [current, arg]
            continue
        current = None
        out.append(arg)
    return out


def main() -> None:
    from physar.data.generate import GenerationError
    from physar.data.recipe import RecipeError
    from physar.errors import CheckpointError, ConfigError, FrameDataError, TrainingError
    from physar.language import LanguageError
    from physar.video import VideoReadError

    try:
        app(args=_expand_multi_value_options(sys.argv[1:]), prog_name="physar")
    except (RecipeError, GenerationError, VideoReadError, ConfigError, CheckpointError, TrainingError, FrameDataError,
            LanguageError, FileNotFoundError, NotADirectoryError) as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted: finished work is kept; run the same command again to resume (training: add --resume)", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
