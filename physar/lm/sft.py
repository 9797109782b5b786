"""Stage 1: supervised fine-tuning on simulated clips written in the physics language (trl's
SFTTrainer, loss on the completion only). The run folder holds trl's checkpoints (trainer/,
for --resume), log.jsonl, loss.png, and the final checkpoint/ that generation loads."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

from physar.errors import ConfigError
from physar.language import OPTIONS as LANGUAGE_OPTIONS, PhysicsLanguage
from physar.lm.batching import BucketedSampler
from physar.lm.config import LMConfig
from physar.lm.model import build_model, build_tokenizer, save_checkpoint
from physar.lm.runs import check_run, json_log_callback, start_run
from physar.lm.sequences import jump_examples, load_examples, reading_examples, split_examples
from physar.tokenizer.codec import checkpoint_folder, weights_fingerprint


def bucketed_trainer(trainer_class):
    """`trainer_class` (trl's SFTTrainer) whose batches each hold sequences of one length bucket,
    in random order (physar/lm/batching.py)."""

    class BucketedTrainer(trainer_class):
        def _get_train_sampler(self, train_dataset=None):
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            lengths = [len(ids) for ids in dataset["input_ids"]]
            return BucketedSampler(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                   seed=self.args.seed)

    return BucketedTrainer


def ddt_config(tokenizer_path: str | Path):
    """The DDT tokenizer's config (no weights): its K and codebook size define the vocabulary."""
    from physar.tokenizer.config import TokenizerConfig

    path = checkpoint_folder(tokenizer_path)
    if not (path / "config.json").is_file():
        raise ConfigError(f"tokenizer: {path} is not a DDT tokenizer checkpoint (no config.json)")
    return path, TokenizerConfig.from_dict(json.loads((path / "config.json").read_text()), str(path / "config.json"))


def _check_lengths(tok, examples: list[dict], max_length: int) -> int:
    """trl drops examples whose completion is truncated away, silently; refuse them instead."""
    longest = max(len(tok(e["prompt"] + e["completion"])["input_ids"]) + 1 for e in examples)
    if longest > max_length:
        raise ConfigError(f"max_length: {max_length} is shorter than the longest sequence ({longest} tokens)")
    return longest


def train_sft(config: LMConfig | str | Path, out: str | Path, data: list[str | Path] | None = None, resume: bool = False,
              steps: int | None = None, base_model: str | None = None, symbolic: bool | None = None,
              progress: bool = True) -> dict:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    cfg = config if isinstance(config, LMConfig) else LMConfig.from_yaml(config)
    overrides = {"data": [str(d) for d in data] if data else None, "steps": steps, "base_model": base_model,
                 "symbolic": symbolic}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})  # validated again
    if not cfg.data:
        raise ConfigError("data: no dataset folders (give --data or set data: in the config)")
    run = Path(out)
    last = check_run(run, cfg.to_dict(), resume, LMConfig().to_dict())

    ddt_path, ddt = ddt_config(cfg.tokenizer)
    lang = PhysicsLanguage(ddt.codebook_size, ddt.num_tokens, fine_tokens=ddt.fine_tokens,
                           **{k: getattr(cfg, k) for k in LANGUAGE_OPTIONS})
    if cfg.keypoint_tokens and not (ddt.fine_tokens and math.prod(ddt.fine_fsq_levels) == ddt.codebook_size):
        raise ConfigError(f"keypoint_tokens: {cfg.tokenizer} has no fine (keypoint) tokens with a codebook of "
                          f"{ddt.codebook_size} ids (fine_tokens {ddt.fine_tokens}, fine_fsq_levels {ddt.fine_fsq_levels})")
    tok = build_tokenizer(lang, cfg.base_model)
    examples = load_examples(cfg.data, lang, cfg.token_file, weights_fingerprint(ddt_path))
    longest = _check_lengths(tok, examples, cfg.max_length)
    train_examples, eval_examples = split_examples(examples, cfg.eval_clips, cfg.seed)
    reading = reading_examples(lang, train_examples, cfg.reading_examples, cfg.seed) if cfg.reading_examples else []
    jumps = jump_examples(lang, train_examples, cfg.jump_examples) if cfg.jump_examples else []
    model = build_model(cfg, tok, ddt.fsq_levels, ddt.fine_fsq_levels if cfg.keypoint_tokens else None)
    start_run(run, cfg.to_dict())

    columns = ("prompt", "completion")
    train_ds = Dataset.from_list([{k: e[k] for k in columns} for e in train_examples + reading + jumps])
    eval_ds = Dataset.from_list([{k: e[k] for k in columns} for e in eval_examples]) if eval_examples else None
    args = SFTConfig(
        output_dir=str(run / "trainer"), max_steps=cfg.steps, per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size, gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate, weight_decay=cfg.weight_decay, lr_scheduler_type="cosine",
        warmup_steps=cfg.warmup_steps, logging_steps=max(1, min(50, cfg.eval_every // 5)),
        eval_strategy="steps" if eval_ds is not None else "no", eval_steps=cfg.eval_every,
        save_strategy="steps", save_steps=cfg.save_every, save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed,
        report_to="none", use_cpu=not torch.cuda.is_available(), bf16=False, activation_checkpointing=False,
        max_length=cfg.max_length, completion_only_loss=True, packing=False, disable_tqdm=not progress,
        dataloader_num_workers=0)
    log_path = run / "log.jsonl"
    # batch similar lengths together (reading examples are ~10x shorter than clips, jump ones about half; scenes differ too)
    trainer_class = bucketed_trainer(SFTTrainer) if reading or jumps or cfg.group_by_length else SFTTrainer
    trainer = trainer_class(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tok,
                            callbacks=[json_log_callback(log_path)])
    clock = time.time()
    trainer.train(resume_from_checkpoint=str(last) if resume else None)
    seconds = time.time() - clock
    metrics = trainer.evaluate() if eval_ds is not None else {}
    if trainer.is_world_process_zero():
        previous = json.loads((run / "checkpoint" / "physar.json").read_text()).get("train_seconds", 0.0) \
            if resume and (run / "checkpoint" / "physar.json").is_file() else 0.0
        info = {"conditioning_frames": examples[0]["conditioning_frames"], "num_frames": examples[0]["num_frames"],
                "resolution": ddt.resolution, "max_objects": max(e["num_objects"] for e in examples),
                "train_seconds": round(previous + seconds, 1), "steps": cfg.steps, "train_clips": len(train_examples),
                "reading_examples": len(reading), "jump_examples": len(jumps),
                "eval_clips": len(eval_examples), "eval_loss": metrics.get("eval_loss"), "longest_sequence": longest,
                "parameters": sum(p.numel() for p in model.parameters()), "config": cfg.to_dict()}
        save_checkpoint(run / "checkpoint", trainer.model, tok, lang, ddt_path, info)
        plot_losses(log_path, run / "loss.png")
        return info
    return {}


def plot_losses(log_path: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    held = [(r["step"], r["eval_loss"]) for r in rows if "eval_loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for points, label in ((train, "train"), (held, "held-out clips")):
        if points:
            ax.plot(*zip(*points), marker="o" if label != "train" else None, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("completion loss (nats/token)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
