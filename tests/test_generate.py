"""Dataset generation: files, exact videos, determinism, resumability, folder checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from conftest import UNIFORM_EVAL_COUNT, recipe_path

from physar.data.generate import GenerationError, generate, load_metadata, shard_size_for
from physar.data.recipe import RecipeError
from physar.video import VideoReadError, read_video, write_video
from simulators.render import render_frames

REQUIRED = {"video", "scene", "split", "bucket", "params", "positions", "velocities", "radii", "colors",
            "index", "set", "seed", "resolution", "num_frames", "conditioning_frames", "frame_dt", "masses",
            "collisions"}


def metadata_text(root):
    return (root / "metadata.jsonl").read_text()


def test_metadata_has_every_field(uniform_eval_dataset):
    records = load_metadata(uniform_eval_dataset)
    assert UNIFORM_EVAL_COUNT - 3 <= len(records) <= UNIFORM_EVAL_COUNT + 3
    assert [r["index"] for r in records] == list(range(len(records)))
    assert {r["bucket"] for r in records} == {"in", "r_out", "v_out", "rv_out", "zero"}
    for r in records:
        assert REQUIRED <= set(r), REQUIRED - set(r)
        assert r["scene"] == "uniform" and r["split"] == "eval" and r["resolution"] == 64
        T, N = r["num_frames"], len(r["radii"])
        assert (T, N) == (32, 1)
        assert np.asarray(r["positions"]).shape == (T, N, 2)
        assert np.asarray(r["velocities"]).shape == (T, N, 2)
        assert np.asarray(r["colors"]).shape == (N, 3) and r["colors"][0] == [255, 0, 0]
        assert set(r["params"]) == {"r", "v"} and r["radii"][0] == r["params"]["r"]
        assert r["velocities"][0][0][0] == r["params"]["v"]
        assert r["video"].startswith("videos/s") and (uniform_eval_dataset / r["video"]).is_file()
    info = json.loads((uniform_eval_dataset / "dataset.json").read_text())
    assert info["status"] == "complete" and info["num_clips"] == len(records)
    assert sum(info["buckets"].values()) == len(records)
    assert info["num_shards"] == len(list((uniform_eval_dataset / ".shards").glob("s*.json"))) > 1


def test_videos_equal_render_of_metadata_exactly(uniform_eval_dataset):
    for r in load_metadata(uniform_eval_dataset):
        frames = read_video(uniform_eval_dataset / r["video"])
        expected = render_frames(np.asarray(r["positions"]), np.asarray(r["radii"]), np.asarray(r["colors"]),
                                 r["resolution"])
        assert frames.shape == expected.shape == (32, 64, 64, 3)
        assert frames.dtype == np.uint8
        assert np.abs(frames.astype(int) - expected.astype(int)).max() == 0, r["video"]


@pytest.mark.parametrize("size", [64, 128, 256])
def test_video_round_trip_is_lossless(tmp_path, size):
    rng = np.random.default_rng(size)
    frames = rng.integers(0, 256, (5, size, size, 3), dtype=np.uint8)  # worst case: noise
    write_video(tmp_path / "a.mp4", frames)
    assert np.array_equal(read_video(tmp_path / "a.mp4"), frames)
    assert not list(tmp_path.glob(".*partial"))


def test_video_errors(tmp_path):
    with pytest.raises(VideoReadError, match="no such video"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "junk.mp4").write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoReadError, match="junk.mp4"):
        read_video(tmp_path / "junk.mp4")
    with pytest.raises(ValueError):
        write_video(tmp_path / "f.mp4", np.zeros((2, 8, 8, 3), dtype=np.float32))


def test_same_seed_twice_gives_identical_metadata(uniform_eval_dataset, tmp_path):
    generate(recipe_path("uniform"), "eval", tmp_path / "again", count=UNIFORM_EVAL_COUNT, workers=2, progress=False)
    assert metadata_text(tmp_path / "again") == metadata_text(uniform_eval_dataset)


def test_workers_do_not_change_the_data(uniform_eval_dataset, tmp_path):
    generate(recipe_path("uniform"), "eval", tmp_path / "one", count=UNIFORM_EVAL_COUNT, workers=1, progress=False)
    assert metadata_text(tmp_path / "one") == metadata_text(uniform_eval_dataset)
    # and the videos are byte for byte the same
    for r in load_metadata(tmp_path / "one")[::7]:
        assert (tmp_path / "one" / r["video"]).read_bytes() == (uniform_eval_dataset / r["video"]).read_bytes()


def test_other_seed_gives_other_clips(uniform_eval_dataset, tmp_path):
    generate(recipe_path("uniform"), "eval", tmp_path / "s1", count=UNIFORM_EVAL_COUNT, seed=1, progress=False)
    a, b = load_metadata(uniform_eval_dataset), load_metadata(tmp_path / "s1")
    assert len(a) == len(b) and [r["bucket"] for r in a] == [r["bucket"] for r in b]
    assert all(x["positions"] != y["positions"] for x, y in zip(a, b))


def test_resume_after_a_kill(uniform_eval_copy):
    root = uniform_eval_copy
    before = metadata_text(root)
    # simulate a run killed in shard 1: its record and videos gone, a half-written folder left
    (root / ".shards" / "s0001.json").unlink()
    shutil.rmtree(root / "videos" / "s0001")
    partial = root / "videos" / ".s0001.partial"
    partial.mkdir()
    (partial / "000016.mp4").write_bytes(b"half a video")
    (root / "metadata.jsonl").unlink()
    shard0 = (root / "videos" / "s0000" / "000000.mp4").stat().st_mtime_ns
    generate(recipe_path("uniform"), "eval", root, count=UNIFORM_EVAL_COUNT, workers=2, progress=False)
    assert metadata_text(root) == before
    assert not partial.exists()
    assert (root / "videos" / "s0001").is_dir() and (root / ".shards" / "s0001.json").is_file()
    assert (root / "videos" / "s0000" / "000000.mp4").stat().st_mtime_ns == shard0  # finished shards kept
    assert json.loads((root / "dataset.json").read_text())["status"] == "complete"
    for r in load_metadata(root):
        read_video(root / r["video"])


def test_rerun_of_a_complete_dataset_changes_nothing(uniform_eval_copy):
    before = metadata_text(uniform_eval_copy)
    generate(recipe_path("uniform"), "eval", uniform_eval_copy, count=UNIFORM_EVAL_COUNT, progress=False)
    assert metadata_text(uniform_eval_copy) == before


@pytest.mark.parametrize("change", [{"seed": 5}, {"count": 20}, {"resolution": 32}, {"split": "train"}])
def test_rerun_with_other_settings_raises(uniform_eval_copy, change):
    kw = {"split": "eval", "count": UNIFORM_EVAL_COUNT, **change}
    split = kw.pop("split")
    with pytest.raises(GenerationError, match="other settings") as info:
        generate(recipe_path("uniform"), split, uniform_eval_copy, progress=False, **kw)
    assert (next(iter(change)) if "split" not in change else "split") in str(info.value)


def test_rerun_with_other_recipe_raises(uniform_eval_copy):
    with pytest.raises(GenerationError, match="recipe"):
        generate(recipe_path("parabola"), "eval", uniform_eval_copy, count=UNIFORM_EVAL_COUNT, progress=False)


def test_foreign_folder_raises(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(GenerationError, match="not empty"):
        generate(recipe_path("uniform"), "eval", tmp_path, count=5, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_empty_existing_folder_is_fine(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    info = generate(recipe_path("uniform"), "eval", out, count=5, progress=False)
    assert info["num_clips"] == len(load_metadata(out)) >= 5


def test_bad_arguments_raise_recipe_error(tmp_path):
    with pytest.raises(RecipeError, match="resolution"):
        generate(recipe_path("uniform"), "eval", tmp_path / "a", count=5, resolution=8, progress=False)
    with pytest.raises(RecipeError, match="workers"):
        generate(recipe_path("uniform"), "eval", tmp_path / "b", count=5, workers=0, progress=False)


def test_collision_grid_drops_infeasible_points(tmp_path):
    info = generate(recipe_path("collision"), "train", tmp_path / "c", count=60, progress=False)
    records = load_metadata(tmp_path / "c")
    assert info["num_clips"] + info["num_dropped"] == 60 == info["planned_clips"]
    assert len(records) == info["num_clips"] and info["num_dropped"] == len(info["dropped"])
    for d in info["dropped"]:
        assert "no room" in d["reason"] and set(d["params"]) == {"r1", "r2", "v1", "v2"}
    for r in records:
        assert len(r["collisions"]) == 1 and np.asarray(r["positions"]).shape == (32, 2, 2)


def test_shard_size_depends_on_clip_count_only():
    assert shard_size_for(40) == 16
    assert shard_size_for(30000) == 469
    assert shard_size_for(10**7) == 1000


def test_loads_with_huggingface_datasets(uniform_eval_dataset, tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset("json", data_files=str(uniform_eval_dataset / "metadata.jsonl"), split="train",
                               cache_dir=str(tmp_path / "hf_cache"))
    records = load_metadata(uniform_eval_dataset)
    assert ds.num_rows == len(records)
    assert np.allclose(np.asarray(ds[0]["positions"]), records[0]["positions"])
    assert ds[3]["bucket"] == records[3]["bucket"]


def test_torch_dataset_reads_frames_and_states(uniform_eval_dataset):
    torch = pytest.importorskip("torch")
    from physar.data.torch_dataset import ClipDataset

    ds = ClipDataset(uniform_eval_dataset, buckets=("in",))
    records = [r for r in load_metadata(uniform_eval_dataset) if r["bucket"] == "in"]
    assert len(ds) == len(records) > 0
    item = ds[2]
    assert item["frames"].shape == (32, 3, 64, 64) and item["frames"].dtype == torch.uint8
    expected = render_frames(np.asarray(records[2]["positions"]), np.asarray(records[2]["radii"]),
                             np.asarray(records[2]["colors"]), 64)
    assert np.array_equal(item["frames"].permute(0, 2, 3, 1).numpy(), expected)
    assert item["positions"].shape == (32, 1, 2) and item["bucket"] == "in"
    normalized = ClipDataset(uniform_eval_dataset, normalize=True)[0]["frames"]
    assert normalized.dtype == torch.float32 and normalized.min() >= -1 and normalized.max() <= 1
