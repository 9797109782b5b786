"""Run folders of the trl stages (SFT, RL): the guards before a run starts, and the JSON log."""

from __future__ import annotations

import json
import os
from pathlib import Path

from physar.errors import TrainingError


def last_checkpoint(folder: Path) -> Path | None:
    """trl's newest `checkpoint-N` under `folder`, or None."""
    steps = [p for p in folder.glob("checkpoint-*") if p.name.rsplit("-", 1)[1].isdigit()]
    return max(steps, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def is_main_process() -> bool:
    """Whether this is the process that writes a run's folder: the only one, or rank 0 of those that
    `accelerate launch` / `torchrun` start (they set RANK before the trainer exists)."""
    return int(os.environ.get("RANK", "0")) == 0


def check_run(run: Path, settings: dict, resume: bool, defaults: dict | None = None) -> Path | None:
    """Refuse a run the folder cannot take (not empty without --resume, nothing to resume, other
    settings than the run being resumed). A setting the resumed run did not record (added to the
    config since) counts as its default value from `defaults`. Returns the checkpoint to resume from.
    Launched as several processes, only the main one refuses a folder that is not empty: the others
    may get there after it has started writing the run."""
    trainer_dir = run / "trainer"
    last = last_checkpoint(trainer_dir) if trainer_dir.is_dir() else None
    if resume and last is None:
        raise TrainingError(f"{run}: nothing to resume (no trainer/checkpoint-*)")
    if not resume and is_main_process() and run.exists() and any(run.iterdir()):
        raise TrainingError(f"{run}: folder is not empty; pass --resume to continue its run or choose another --out")
    if resume:
        old = json.loads((run / "settings.json").read_text())
        defaults = defaults or {}
        diff = [k for k, v in settings.items() if k != "steps" and old.get(k, defaults.get(k)) != v]
        if diff:
            raise TrainingError(f"{run}: was trained with other settings ({', '.join(diff)}); resume with the same ones")
    return last


def start_run(run: Path, settings: dict) -> None:
    """Create the run folder and record its settings (once everything it needs has loaded); the main
    process only, and atomically, since the others may be reading them (check_run on --resume)."""
    if not is_main_process():
        return
    from physar.data.generate import _write_json

    run.mkdir(parents=True, exist_ok=True)
    _write_json(run / "settings.json", settings, indent=1)


def json_log_callback(path: Path):
    """A trl/transformers callback appending every logged dict, with its step, to `path`."""
    from transformers import TrainerCallback

    class JsonLog(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                with open(path, "a") as f:
                    f.write(json.dumps({"step": state.global_step, **logs}) + "\n")

    return JsonLog()
