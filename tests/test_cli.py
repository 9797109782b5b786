"""The `physar` command line, run as a user would (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, recipe_path


def physar(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "physar.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


@pytest.mark.parametrize("command", [[], ["data"], ["data", "generate"], ["data", "show"], ["evaluate"], ["demo"],
                                     ["tokenizer", "train"], ["tokenizer", "encode"], ["tokenizer", "reconstruct"],
                                     ["sft"], ["generate"], ["rl"], ["compare"]])
def test_help_of_every_command(command):
    result = physar(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    if command == ["data", "generate"]:
        for option in ("--recipe", "--split", "--out", "--count", "--resolution", "--seed", "--workers"):
            assert option in result.stdout
    if command == ["evaluate"]:
        assert "--convention" in result.stdout and "--videos" in result.stdout


def test_bad_recipe_is_one_error_line(tmp_path):
    data = yaml.safe_load(recipe_path("uniform").read_text())
    data["eval"][0]["params"]["r"] = {"uniform": [-0.7, 1.4]}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = physar("data", "generate", "--recipe", bad, "--split", "eval", "--out", tmp_path / "out")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:") and "bad.yaml" in lines[0] and "radius" in lines[0]
    assert not (tmp_path / "out").exists()


def test_foreign_output_folder_is_one_error_line(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    result = physar("data", "generate", "--recipe", recipe_path("uniform"), "--split", "eval", "--out", tmp_path,
                    "--count", "5")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "not empty" in lines[0]


def test_evaluate_missing_dataset_is_one_error_line(tmp_path):
    result = physar("evaluate", tmp_path / "nothing")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr


def test_bad_option_value_exits_nonzero(tmp_path):
    result = physar("data", "generate", "--recipe", recipe_path("uniform"), "--split", "test", "--out", tmp_path / "o")
    assert result.returncode != 0
    assert not (tmp_path / "o").exists()


def test_generate_evaluate_show(tmp_path):
    data = tmp_path / "data"
    result = physar("data", "generate", "--recipe", recipe_path("uniform"), "--split", "eval", "--out", data,
                    "--count", "12", "--workers", "2")
    assert result.returncode == 0, result.stderr
    info = json.loads((data / "dataset.json").read_text())
    assert info["status"] == "complete" and info["count"] == 12
    lines = (data / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == info["num_clips"] >= 10
    assert f"{info['num_clips']} clips" in result.stdout

    result = physar("evaluate", data)
    assert result.returncode == 0, result.stderr
    report = json.loads((data / "report.json").read_text())
    assert report["uniform"]["in"]["n"] > 0 and report["uniform"]["in"]["vel_error"] < 0.02
    assert "| uniform | in |" in result.stdout
    for name in ("report.md", "report.png", "clips.jsonl", "failures.json"):
        assert (data / name).is_file()

    out = tmp_path / "phy" / "report.json"
    result = physar("evaluate", data, "--convention", "phyworld", "--out", out)
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text())["uniform"]["in"]["vel_error"] > report["uniform"]["in"]["vel_error"]

    result = physar("data", "show", data, "--clips", "3", "--frames", "4")
    assert result.returncode == 0, result.stderr
    strip = data / "previews" / "strip.png"
    assert strip.is_file() and strip.read_bytes()[:4] == b"\x89PNG"
    assert len(list((data / "previews").glob("*.gif"))) == 3


def test_package_sources_are_not_git_ignored():
    import shutil

    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    sources = sorted(str(p.relative_to(ROOT)) for d in ("physar", "simulators") for p in (ROOT / d).rglob("*.py"))
    assert "physar/data/generate.py" in sources
    result = subprocess.run(["git", "check-ignore", "--no-index", *sources], cwd=ROOT, capture_output=True, text=True)
    ignored = result.stdout.split()
    assert ignored == [], f"git ignores package sources: {ignored}"


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*/*.yaml")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_config_loads(path):
    from physar.lm.config import LMConfig
    from physar.rl.config import RLConfig
    from physar.tokenizer.config import TokenizerConfig

    kind = {"tokenizer": TokenizerConfig, "lm": LMConfig, "rl": RLConfig}[path.parent.name]
    cfg = kind.from_yaml(path)
    assert cfg.to_dict() == kind.from_dict(cfg.to_dict()).to_dict()
