"""`physar demo --train`: every stage at the tiny preset, each handing its output to the next."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

from physar.errors import ConfigError
from physar.pipeline import run_pipeline


def test_demo_train_runs_simulate_tokenizer_sft_rl_evaluate(tmp_path):
    out = tmp_path / "pipeline"
    report = run_pipeline(out, train_count=16, eval_count=6, steps={"tokenizer": 20, "sft": 12, "rl": 2},
                          progress=False).read_text()
    runs = out / "runs"
    sft, rl = runs / "sft" / "checkpoint", runs / "rl" / "checkpoint"
    assert (runs / "tokenizer" / "checkpoint" / "config.json").is_file()
    assert (out / "data" / "parabola_train" / "tokens" / "ddt.safetensors").is_file()
    # the RL checkpoint starts from the SFT one and GRPO moved it
    assert json.loads((rl / "physar.json").read_text())["sft_checkpoint"].endswith("sft/checkpoint")
    a, b = load_file(sft / "model.safetensors"), load_file(rl / "model.safetensors")
    assert a.keys() == b.keys() and any(not np.array_equal(a[k], b[k]) for k in a)
    # both rows judged on the same clips of every scene
    for scene in ("uniform", "collision", "parabola"):
        row = next(line for line in report.splitlines() if line.startswith(f"| {scene} | in |"))
        assert len(row.split("|")) == 10
    assert "| sft+rl |" in report and set(json.loads((out / "timings.json").read_text())) == {
        "simulate", "tokenizer", "sft", "rl", "evaluate"}
    # a second run into the same folder is refused before anything is touched
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ConfigError, match="not empty"):
        run_pipeline(out, train_count=16, progress=False)
    assert sorted(p.name for p in out.iterdir()) == before
