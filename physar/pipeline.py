"""`physar demo --train`: the whole Phys-AR pipeline at the tiny preset, in one folder.

    simulate  training clips of the three scenes at 32 px
    tokenizer train the DDT tokenizer (configs/tokenizer/tiny.yaml), encode the training clips
    sft       the symbolic LM (configs/lm/tiny.yaml)
    rl        GRPO with physics rewards from the SFT checkpoint (configs/rl/tiny.yaml)
    evaluate  SFT and SFT + RL side by side on the same ID and OOD evaluation clips (seed 0)

The tiny preset shows that every stage runs and hands its output to the next (minutes on 2 cores);
its models are far too small to mean anything. The presets under configs/*/cpu.yaml are the real ones.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from physar.data.generate import generate
from physar.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SCENES = ("uniform", "collision", "parabola")


def run_pipeline(out: str | Path = "outputs/pipeline", train_count: int = 60, eval_count: int = 12,
                 workers: int = 2, steps: dict[str, int] | None = None, progress: bool = True) -> Path:
    """Run every stage into `out` (data/, runs/{tokenizer,sft,rl}/, evaluation/); returns report.md.
    `steps` overrides the presets' step counts: {"tokenizer": n, "sft": n, "rl": n}."""
    from physar.lm.assess import compare
    from physar.lm.config import LMConfig
    from physar.lm.sft import train_sft
    from physar.rl.config import RLConfig
    from physar.rl.grpo import train_rl
    from physar.tokenizer.codec import encode_dataset
    from physar.tokenizer.config import TokenizerConfig
    from physar.tokenizer.train import train as train_tokenizer

    out = Path(out)
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out}: not empty (a pipeline run is there); remove it or give another --out")
    tokenizer_cfg = TokenizerConfig.from_yaml(ROOT / "configs" / "tokenizer" / "tiny.yaml")
    steps = steps or {}
    tokenizer_cfg.steps = steps.get("tokenizer", tokenizer_cfg.steps)
    size, seconds = tokenizer_cfg.resolution, {}

    clock = time.time()
    train_dirs = [out / "data" / f"{scene}_train" for scene in SCENES]
    for scene, folder in zip(SCENES, train_dirs):
        generate(ROOT / "datasets" / f"{scene}_small.yaml", "train", folder, count=train_count, resolution=size,
                 workers=workers, progress=progress)
    seconds["simulate"] = time.time() - clock

    clock = time.time()
    runs = out / "runs"
    train_tokenizer(tokenizer_cfg, train_dirs, runs / "tokenizer", progress=progress)
    for d in train_dirs:
        encode_dataset(d, runs / "tokenizer", progress=progress)
    seconds["tokenizer"] = time.time() - clock

    clock = time.time()
    lm_cfg = LMConfig.from_yaml(ROOT / "configs" / "lm" / "tiny.yaml")
    lm_cfg.data, lm_cfg.tokenizer = [str(d) for d in train_dirs], str(runs / "tokenizer" / "checkpoint")
    lm_cfg.steps = steps.get("sft", lm_cfg.steps)
    train_sft(lm_cfg, runs / "sft", progress=progress)
    seconds["sft"] = time.time() - clock

    clock = time.time()
    rl_cfg = RLConfig.from_yaml(ROOT / "configs" / "rl" / "tiny.yaml")
    rl_cfg.checkpoint, rl_cfg.prompts = str(runs / "sft"), [str(d) for d in train_dirs]  # supervised: ID prompts
    rl_cfg.steps = rl_cfg.save_every = steps.get("rl", rl_cfg.steps)
    train_rl(rl_cfg, runs / "rl", progress=progress)
    seconds["rl"] = time.time() - clock

    clock = time.time()
    table = compare({"sft": runs / "sft", "sft+rl": runs / "rl"}, [ROOT / "datasets" / f"{s}.yaml" for s in SCENES],
                    out / "evaluation", count=eval_count, progress=progress)
    seconds["evaluate"] = time.time() - clock

    (out / "timings.json").write_text(json.dumps({k: round(v, 1) for k, v in seconds.items()}, indent=1))
    lines = ["# Phys-AR pipeline at the tiny preset (`physar demo --train`)", "",
             f"{train_count} training clips per scene at {size} px; tokenizer, SFT and RL runs under `runs/`; "
             f"evaluation on {eval_count} clips per scene under `evaluation/`. The tiny models only show that every "
             "stage runs; see configs/*/cpu.yaml for the real presets.", "",
             "| stage | seconds |", "|---|---:|", *[f"| {k} | {v:.0f} |" for k, v in seconds.items()], "",
             table.replace("# Comparison", "## Comparison")]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    return out / "report.md"
