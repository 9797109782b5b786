"""The evaluator end to end: report files, the floor, and a folder of imperfect 'generated' videos."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from physar.data.generate import generate, load_metadata
from physar.evaluation.evaluate import BUCKET_ORDER, OOD_BUCKETS, evaluate, is_small
from physar.video import write_video
from simulators.render import render_frames
from simulators.world import FRAME_DT, WORLD_SIZE

BASE_BUCKETS = ("in",) + OOD_BUCKETS  # "out" is their union and counts every OOD clip again
BIAS = 0.5


def read_clips(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_floor_report_structure(uniform_eval_dataset, tmp_path):
    out = tmp_path / "floor" / "report.json"
    report = evaluate(uniform_eval_dataset, out=out, progress=False)
    assert json.loads(out.read_text()) == report
    for name in ("report.md", "report.png", "clips.jsonl", "failures.json"):
        assert (out.parent / name).is_file() and (out.parent / name).stat().st_size > 0, name
    assert (out.parent / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list(report) == ["uniform"]
    buckets = report["uniform"]
    assert list(buckets) == [b for b in BUCKET_ORDER if b in buckets]
    assert set(buckets) == set(BUCKET_ORDER)
    records = load_metadata(uniform_eval_dataset)
    for bucket, stats in buckets.items():
        assert {"vel_error", "n", "failed", "skipped"} <= set(stats)
        assert stats["failed"] == 0
        assert stats["vel_error"] is not None and 0 <= stats["vel_error"] < 0.02, (bucket, stats)
        assert stats["floor"] == stats["vel_error"]  # the dataset's own videos are the floor
        assert stats["found_rate"] == 1.0
    for bucket in BASE_BUCKETS:
        rows = [r for r in records if r["bucket"] == bucket]
        s = buckets[bucket]
        assert s["n"] + s["skipped"] + s["no_valid_frames"] == len(rows)
        assert s["skipped"] == sum(is_small(r) for r in rows)
    assert buckets["out"]["n"] == sum(buckets[b]["n"] for b in OOD_BUCKETS)
    assert buckets["zero"]["vel_error"] == 0.0  # a ball at rest is parsed at rest
    assert json.loads((out.parent / "failures.json").read_text()) == []
    assert "| uniform | in |" in (out.parent / "report.md").read_text()
    assert len(read_clips(out.parent / "clips.jsonl")) == len(records)
    # another report name in the same folder: its own files, the first report's untouched
    (out.parent / "clips.jsonl").write_text("")
    evaluate(uniform_eval_dataset, out=out.parent / "again.json", progress=False)
    assert len(read_clips(out.parent / "again.clips.jsonl")) == len(records)
    assert (out.parent / "again.failures.json").is_file() and (out.parent / "again.md").is_file()
    assert (out.parent / "clips.jsonl").read_text() == ""


def test_default_report_goes_into_the_dataset(uniform_eval_copy):
    evaluate(uniform_eval_copy, progress=False)
    assert (uniform_eval_copy / "report.json").is_file() and (uniform_eval_copy / "report.png").is_file()


def test_exact_floor_is_far_below_phyworld_convention(uniform_eval_dataset, tmp_path):
    exact = evaluate(uniform_eval_dataset, convention="exact", out=tmp_path / "e" / "report.json", progress=False)
    phy = evaluate(uniform_eval_dataset, convention="phyworld", out=tmp_path / "p" / "report.json", progress=False)
    for bucket in ("in", "out", "v_out"):
        e, p = exact["uniform"][bucket]["vel_error"], phy["uniform"][bucket]["vel_error"]
        assert e < p / 4, (bucket, e, p)
    # the phyworld convention reads speeds (W-1)/W too slow: error about mean speed / 64
    records = [r for r in load_metadata(uniform_eval_dataset) if r["bucket"] == "in" and not is_small(r)]
    mean_v = np.mean([r["params"]["v"] for r in records])
    assert phy["uniform"]["in"]["vel_error"] == pytest.approx(mean_v / 64, rel=0.25)


@pytest.mark.parametrize("name", ["collision", "parabola"])
def test_floor_of_other_scenes_is_small(tmp_path, name):
    from conftest import recipe_path

    generate(recipe_path(name), "eval", tmp_path / name, count=15, progress=False)
    report = evaluate(tmp_path / name, progress=False)
    stats = report[name]["in"]
    assert stats["n"] >= 3 and stats["failed"] == 0
    assert stats["vel_error"] < 0.05, stats


def pick_biased_clip(records):
    """An ID clip whose ball, moving BIAS faster, stays wholly in view in every valid frame."""
    for r in records:
        if r["bucket"] != "in" or is_small(r):
            continue
        pos, rad = np.asarray(r["positions"]), r["radii"][0]
        shifted = pos[:, 0, 0] + BIAS * np.arange(len(pos)) * FRAME_DT
        inside = (pos[:, 0, 0] - rad >= 0) & (pos[:, 0, 0] + rad <= WORLD_SIZE)
        if np.all(shifted[inside] + rad <= WORLD_SIZE - 0.2) and inside[3:].sum() >= 10:
            return r
    raise AssertionError("no suitable clip")


def test_generated_folder_with_bad_videos(uniform_eval_dataset, tmp_path):
    records = load_metadata(uniform_eval_dataset)
    gen = tmp_path / "generated"
    shutil.copytree(uniform_eval_dataset / "videos", gen / "videos")
    biased = pick_biased_clip(records)
    others = [r for r in records if r["bucket"] == "in" and r is not biased]
    missing, truncated = others[0], others[1]
    (gen / missing["video"]).unlink()
    data = (gen / truncated["video"]).read_bytes()
    (gen / truncated["video"]).write_bytes(data[: len(data) // 2])
    pos = np.asarray(biased["positions"]).copy()
    pos[:, 0, 0] += BIAS * np.arange(len(pos)) * FRAME_DT
    write_video(gen / biased["video"],
                render_frames(pos, np.asarray(biased["radii"]), np.asarray(biased["colors"]), biased["resolution"]))

    report = evaluate(uniform_eval_dataset, gen, progress=False)
    assert (gen / "report.json").is_file() and (gen / "report.md").is_file() and (gen / "report.png").is_file()
    failures = json.loads((gen / "failures.json").read_text())
    assert sorted(f["video"] for f in failures) == sorted([missing["video"], truncated["video"]])
    assert all(f["error"] for f in failures)
    stats = report["uniform"]
    assert sum(stats[b]["failed"] for b in BASE_BUCKETS if b in stats) == 2
    assert stats["in"]["failed"] == 2
    assert "unreadable or short videos: 2" in (gen / "report.md").read_text()

    clips = {c["video"]: c for c in read_clips(gen / "clips.jsonl")}
    assert len(clips) == len(records)
    assert "error" in clips[missing["video"]] and "error" in clips[truncated["video"]]
    b = clips[biased["video"]]
    assert b["vel_error"] == pytest.approx(BIAS, abs=0.03)
    assert b["floor"] < 0.03
    # the untouched clips score their floor exactly
    for r in others[2:]:
        c = clips[r["video"]]
        if np.isfinite(c.get("vel_error", np.nan)):
            assert c["vel_error"] == c["floor"]
    # the in bucket averages the bias in: about BIAS / n above the floor
    n = stats["in"]["n"]
    assert stats["in"]["vel_error"] == pytest.approx(stats["in"]["floor"] + (BIAS - b["floor"]) / n, abs=0.01)


def test_short_video_is_a_failure(uniform_eval_dataset, tmp_path):
    records = load_metadata(uniform_eval_dataset)
    gen = tmp_path / "gen"
    shutil.copytree(uniform_eval_dataset / "videos", gen / "videos")
    r = records[0]
    frames = render_frames(np.asarray(r["positions"])[:20], np.asarray(r["radii"]), np.asarray(r["colors"]), 64)
    write_video(gen / r["video"], frames)
    evaluate(uniform_eval_dataset, gen, out=tmp_path / "rep" / "report.json", progress=False)
    failures = json.loads((tmp_path / "rep" / "failures.json").read_text())
    assert [f["video"] for f in failures] == [r["video"]]
    assert "20 frames" in failures[0]["error"]


def test_keep_small_scores_small_balls(uniform_eval_dataset, tmp_path):
    dropped = evaluate(uniform_eval_dataset, out=tmp_path / "a" / "report.json", progress=False)
    kept = evaluate(uniform_eval_dataset, out=tmp_path / "b" / "report.json", keep_small=True, progress=False)
    small = sum(dropped["uniform"][b]["skipped"] for b in BASE_BUCKETS)
    assert small > 0
    assert sum(kept["uniform"][b]["skipped"] for b in BASE_BUCKETS) == 0
    assert sum(kept["uniform"][b]["n"] for b in BASE_BUCKETS) == sum(dropped["uniform"][b]["n"] for b in BASE_BUCKETS) + small
