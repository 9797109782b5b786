"""Train the DDT tokenizer: `physar tokenizer train --config C --data DIR... --out RUN`.

The run folder:

    checkpoint/     the tokenizer (config.json + model.safetensors): what every other command loads
    train_state/    optimizer.safetensors + state.json (step, settings): what --resume needs
    log.jsonl       one line per logged step and per evaluation
    samples/        originals | renderer | N-step diffusion, at every evaluation (PNG)

Both checkpoint folders are replaced atomically (written beside, then renamed), so a kill at
any moment leaves the previous checkpoint whole. Batches and noise are drawn from generators
seeded by (seed, step, process), so a resumed run continues exactly where it stopped.
Runs unchanged under `accelerate launch` (one process per GPU).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from physar.tokenizer.config import ConfigError, TokenizerConfig
from physar.errors import TrainingError
from physar.tokenizer.codec import load_tokenizer
from physar.tokenizer.frames import FrameBank
from physar.tokenizer.measure import ball_errors, psnr, summarize_ball_errors
from physar.tokenizer.model import DDTTokenizer




# the config keys that shape the weights: an --init checkpoint must agree on every one
ARCHITECTURE = ("resolution", "num_tokens", "fsq_levels", "encoder_channels", "encoder_dim", "encoder_layers",
                "encoder_heads", "context_dim", "unet_channels", "unet_cross_attention_levels", "unet_head_dim",
                "global_conditioning")
# the layers whose shapes follow the number of FSQ dimensions (fsq_levels' length)
CODE_LAYERS = ("encoder.out.1.weight", "encoder.out.1.bias", "code_in.weight")


def lr_at(step: int, cfg: TokenizerConfig) -> float:
    """Linear warmup, then cosine decay to a tenth."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _replace_dir(tmp: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)


def _settings_diff(old: dict, new: dict) -> list[str]:
    """Names of the settings that differ between two runs; the number of steps may change."""
    config = [k for k in new["config"] if k != "steps" and old["config"].get(k) != new["config"][k]]
    return config + [k for k in new if k != "config" and old.get(k) != new[k]]


def save_training_state(run: Path, model: DDTTokenizer, optimizer: torch.optim.Optimizer, state: dict) -> None:
    from safetensors.torch import save_file

    tmp = run / ".checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    _replace_dir(tmp, run / "checkpoint")
    opt = optimizer.state_dict()
    tensors = {f"{i}.{k}": v.contiguous() for i, s in opt["state"].items() for k, v in s.items()
               if isinstance(v, torch.Tensor)}
    tmp = run / ".train_state.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps({**state, "param_groups": opt["param_groups"]}, indent=1))
    _replace_dir(tmp, run / "train_state")


def load_training_state(run: Path, model: DDTTokenizer, optimizer: torch.optim.Optimizer) -> dict:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(run / "checkpoint" / "model.safetensors")))
    state = json.loads((run / "train_state" / "state.json").read_text())
    tensors = load_file(str(run / "train_state" / "optimizer.safetensors"))
    per_param: dict[int, dict] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        per_param.setdefault(int(i), {})[name] = value
    optimizer.load_state_dict({"state": per_param, "param_groups": state.pop("param_groups")})
    return state


def _load_initial_weights(model: DDTTokenizer, init: Path) -> None:
    """Start from a checkpoint of the same architecture, with four exceptions.

    - It may have fewer coordinate periods (its periods a prefix of the config's): the input
      convolutions' weights for the new channels start at zero, so the model starts as exactly
      the checkpoint and learns to use them.
    - It may have other FSQ levels: the two layers that touch the codes (the encoder's last
      linear, `code_in`) start fresh when their shapes differ; the encoder's trunk and both UNets
      are the checkpoint's and learn to read the new codes.
    - It may have no fine tokens where the config has some (its tokens the config's coarse ones):
      a transformer fine encoder starts as a copy of the checkpoint's encoder trunk (it already
      finds the balls) with fresh queries and output, a keypoint encoder starts fresh; the fine
      tokens' positions and projections start fresh, and their columns of the UNets' global
      conditioning at zero.
    - It may have keypoints without radius tokens where the config has them: the radius tokens
      (the lowest indices) and the radius encoder start fresh, the rest is the checkpoint's."""
    source = load_tokenizer(init)
    src, cfg = source.config, model.config
    diff = [k for k in ARCHITECTURE if k not in ("fsq_levels", "num_tokens") and getattr(src, k) != getattr(cfg, k)]
    if src.coarse_tokens != cfg.coarse_tokens:
        diff.append(f"num_tokens: {src.coarse_tokens} coarse tokens, not {cfg.coarse_tokens}")
    grows_radius = (src.fine_encoder == cfg.fine_encoder == "keypoints" and cfg.radius_tokens and not src.radius_tokens
                    and src.num_keypoints == cfg.num_keypoints and src.fine_fsq_levels == cfg.fine_fsq_levels)
    if (src.fine_tokens and not grows_radius
            and (src.fine_tokens, src.fine_fsq_levels) != (cfg.fine_tokens, cfg.fine_fsq_levels)):
        diff.append(f"fine tokens {src.fine_tokens} of {src.fine_fsq_levels}, not {cfg.fine_tokens} of {cfg.fine_fsq_levels}")
    old, new = list(src.coordinate_periods), list(cfg.coordinate_periods)
    if new[:len(old)] != old:
        diff.append(f"coordinate_periods {old} is not a prefix of {new}")
    if diff:
        raise TrainingError(f"--init {init}: its architecture differs from the config's ({', '.join(diff)})")
    state, merged = source.state_dict(), {}
    m = cfg.fine_tokens - src.fine_tokens  # new fine tokens, at the lowest indices
    for name, target in model.state_dict().items():
        key = name
        if name.startswith("fine_encoder.") and name not in state:
            key = "encoder." + name[len("fine_encoder."):]
        weight = state.get(key)
        if weight is None or weight.shape == target.shape:
            merged[name] = target if weight is None else weight
        elif name in CODE_LAYERS or name.startswith("fine_encoder.") and weight.shape[0] != target.shape[0]:
            merged[name] = target  # a layer that touches the codes or the queries: fresh
        elif name == "token_pos":
            merged[name] = torch.cat([target[:m], weight])
        elif name.endswith("class_embedding.linear_1.weight"):  # the flattened tokens, fine ones first
            merged[name] = torch.cat([torch.zeros_like(target[:, :target.shape[1] - weight.shape[1]]), weight], 1)
        else:  # an input convolution, wider by the new channels
            grown = torch.zeros_like(target)
            grown[:, :weight.shape[1]] = weight
            merged[name] = grown
    model.load_state_dict(merged)


@torch.no_grad()
def evaluate_reconstruction(model: DDTTokenizer, bank: FrameBank, steps: int = 0, num_tokens: int | None = None,
                            batch: int = 64, seed: int = 0) -> tuple[dict, np.ndarray, np.ndarray]:
    """Encode and decode every frame of `bank`: (PSNR and the parser's ball errors, originals,
    reconstructions)."""
    model.eval()
    originals, recons = [], []
    g = torch.Generator().manual_seed(seed)
    for i in range(0, len(bank), batch):
        frames = bank.frames[i:i + batch]
        ids = model.encode(frames)
        recons.append(model.decode(ids, steps=steps, num_tokens=num_tokens, generator=g).numpy())
        originals.append(frames.numpy())
    originals, recons = np.concatenate(originals), np.concatenate(recons)
    parts = []
    for c in np.unique(bank.clip):  # frames of one clip share ball colours
        idx = np.flatnonzero(bank.clip == c)
        parts.append(ball_errors(originals[idx], recons[idx], bank.records[c]["colors"]))
    return {"psnr": psnr(originals, recons), **summarize_ball_errors(parts)}, originals, recons


def _sample_sheet(path: Path, rows: list[np.ndarray]) -> None:
    from PIL import Image

    sheet = np.concatenate([np.concatenate(list(r), axis=1) for r in rows], axis=0)
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(path)


def train(config: TokenizerConfig | str | Path, data: list[str | Path], out: str | Path, resume: bool = False,
          steps: int | None = None, clips_per_dataset: int | None = None, frames_per_clip: int | None = None,
          progress: bool = True, init: str | Path | None = None) -> dict:
    """Train (or resume) a tokenizer run in `out`; returns the last evaluation. `init`: start
    from that checkpoint's weights (its architecture must be the config's)."""
    from accelerate import Accelerator
    from tqdm import tqdm

    cfg = config if isinstance(config, TokenizerConfig) else TokenizerConfig.from_yaml(config)
    if steps is not None:
        cfg.steps = steps
    run = Path(out)
    settings = {"config": cfg.to_dict(), "data": [str(d) for d in data], "clips_per_dataset": clips_per_dataset,
                "frames_per_clip": frames_per_clip}
    if init is not None:  # recorded only when used, so runs from before still resume
        settings["init"] = str(init)
    has_state = (run / "train_state" / "state.json").is_file()
    if has_state and not resume:
        raise TrainingError(f"{run}: holds a training run; pass --resume to continue it or choose another --out")
    if resume and not has_state:
        raise TrainingError(f"{run}: nothing to resume (no train_state/)")
    if run.exists() and not has_state and any(p.name not in ("log.jsonl", "samples") for p in run.iterdir()):
        raise TrainingError(f"{run}: folder is not empty and holds no training run; choose another --out")

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    torch.manual_seed(cfg.seed)
    model = DDTTokenizer(cfg)
    if init is not None and not resume:
        _load_initial_weights(model, Path(init))
    bank = FrameBank.load(data, clips_per_dataset, frames_per_clip, cfg.resolution, cfg.seed, progress and accelerator.is_main_process)
    train_bank, held = bank.split(cfg.eval_frames, cfg.seed)
    trained = [p for p in model.parameters() if p.requires_grad]  # not a frozen coarse encoder
    optimizer = torch.optim.AdamW(trained, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    start = 0
    elapsed = 0.0
    if resume:
        diff = _settings_diff(json.loads((run / "train_state" / "state.json").read_text())["settings"], settings)
        if diff:
            raise TrainingError(f"{run}: was trained with other settings ({', '.join(diff)}); resume with the same ones")
        state = load_training_state(run, model, optimizer)
        start, elapsed = state["step"], state.get("train_seconds", 0.0)
    run.mkdir(parents=True, exist_ok=True)
    (run / "samples").mkdir(exist_ok=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model)
    n_params = sum(p.numel() for p in raw.parameters())
    log = open(run / "log.jsonl", "a") if accelerator.is_main_process else None

    def write(entry):
        if log:
            log.write(json.dumps(entry) + "\n")
            log.flush()

    write({"event": "start", "step": start, "params": n_params, "train_frames": len(train_bank),
           "held_out_frames": len(held), "time": time.time()})
    bar = tqdm(total=cfg.steps, initial=start, unit="step", desc="tokenizer", disable=not (progress and accelerator.is_main_process))
    last_eval, clock = {}, time.time()
    for step in range(start, cfg.steps):
        model.train()
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step * 101 + accelerator.process_index)
        idx = torch.randint(0, len(train_bank), (cfg.batch_size,), generator=g)
        frames = DDTTokenizer.to_model_range(train_bank.frames[idx]).to(accelerator.device)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss, logs = model(frames, generator=g)
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        bar.update(1)
        bar.set_postfix(loss=f"{logs['loss']:.4f}", render=f"{logs['render']:.4f}")
        done = step + 1
        if done % 25 == 0:
            write({"step": done, "lr": lr_at(step, cfg), **logs})
        if done % cfg.eval_every == 0 or done == cfg.steps:
            if accelerator.is_main_process:
                last_eval, originals, recons = evaluate_reconstruction(raw, held)
                diffusion, _, sampled = evaluate_reconstruction(raw, held.subset(np.arange(len(held)) < 8), steps=20)
                last_eval["diffusion20_psnr"] = diffusion["psnr"]
                write({"event": "eval", "step": done, **last_eval})
                _sample_sheet(run / "samples" / f"step_{done:06d}.png", [originals[:8], recons[:8], sampled[:8]])
                bar.write(f"step {done}: renderer PSNR {last_eval['psnr']:.2f} dB, centre error median "
                          f"{last_eval['centre_px_median']:.3f} px (p95 {last_eval['centre_px_p95']:.3f}), "
                          f"found {last_eval['found_rate']:.3f}; 20-step diffusion PSNR {diffusion['psnr']:.2f} dB")
        if done % cfg.save_every == 0 or done == cfg.steps:
            accelerator.wait_for_everyone()
            if accelerator.is_main_process:
                elapsed_now = elapsed + time.time() - clock
                save_training_state(run, raw, optimizer, {"step": done, "settings": settings,
                                                          "train_seconds": elapsed_now, "last_eval": last_eval})
    bar.close()
    write({"event": "end", "step": cfg.steps, "train_seconds": elapsed + time.time() - clock})
    if log:
        log.close()
    return last_eval


__all__ = ["train", "TrainingError", "ConfigError", "evaluate_reconstruction", "lr_at"]
