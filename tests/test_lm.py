"""The LM stages: sequences from tokenized datasets, SFT with trl (loss, checkpoints, resume,
guards, a base model), and constrained generation to videos the evaluator reads. Everything
runs at a tiny size (32 px, K = 4, a 48-code FSQ, a 2-layer Llama) in about a minute."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import recipe_path, tiny_lm

from physar.data.generate import generate, load_metadata
from physar.errors import ConfigError, FrameDataError, TrainingError
from physar.evaluation.evaluate import evaluate
from physar.language import PhysicsLanguage, split_tokens
from physar.lm.config import LMConfig
from physar.lm.generate import generate_dataset, single_clip_dataset, symbolic_agreement
from physar.lm.model import build_tokenizer, load_checkpoint
from physar.lm.sequences import load_examples
from physar.lm.sft import train_sft
from physar.video import read_video

def test_examples_are_prompt_and_completion_in_the_language(tokenized):
    lang = PhysicsLanguage(48, 4)
    examples = load_examples([tokenized / "uniform", tokenized / "collision"], lang)
    assert len(examples) == len(load_metadata(tokenized / "uniform")) + len(load_metadata(tokenized / "collision"))
    tok = build_tokenizer(lang)
    for e in examples[:: 6]:
        prompt = tok(e["prompt"])["input_ids"]
        full = tok(e["prompt"] + e["completion"])["input_ids"]
        assert full[: len(prompt)] == prompt  # trl needs the prompt's tokens to be a prefix
        assert e["prompt"].count("<frame>") == 3 and e["completion"].count("<frame>") == 29
        clip = lang.parse(e["completion"], 29)
        assert clip.visual.shape == (29, 4)
    # the visual-only format is shorter and holds no numbers
    visual = load_examples([tokenized / "uniform"], PhysicsLanguage(48, 4, symbolic=False))
    assert "<state>" not in visual[0]["completion"] and "<p>" not in visual[0]["completion"]


def test_tokens_that_do_not_match_the_dataset_are_refused(tokenized, tmp_path):
    with pytest.raises(FrameDataError, match="tokens per frame"):
        load_examples([tokenized / "uniform"], PhysicsLanguage(48, 8))
    generate(recipe_path("uniform"), "eval", tmp_path / "raw", count=3, resolution=32, progress=False)
    with pytest.raises(FrameDataError, match="physar tokenizer encode"):
        load_examples([tmp_path / "raw"], PhysicsLanguage(48, 4))


def test_tokens_of_another_tokenizer_of_the_same_shape_are_refused(tokenized):
    from physar.tokenizer.codec import weights_fingerprint

    lang = PhysicsLanguage(48, 4)
    own = weights_fingerprint(tokenized / "ddt")
    assert len(load_examples([tokenized / "uniform"], lang, tokenizer_sha256=own)) == len(load_metadata(tokenized / "uniform"))
    with pytest.raises(FrameDataError, match="encoded by another tokenizer"):
        load_examples([tokenized / "uniform"], lang, tokenizer_sha256="0123456789abcdef")


def test_sft_lowers_the_completion_loss_and_writes_a_checkpoint(sft_run, tokenized):
    run, info = sft_run
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) >= 4 and losses[-1] < 0.8 * losses[0]
    assert info["eval_loss"] is not None and info["eval_clips"] == 2
    assert info["train_clips"] + 2 == len(load_metadata(tokenized / "uniform")) + len(load_metadata(tokenized / "collision"))
    assert (run / "loss.png").is_file()
    model, tok, lang, meta = load_checkpoint(run)
    assert meta["conditioning_frames"] == 3 and meta["num_frames"] == 32 and lang.tokens_per_frame == 4
    assert model.get_input_embeddings().weight.shape[0] == len(tok) == len(lang.vocab)
    assert list((run / "checkpoint").glob("*.safetensors"))


def test_reading_examples_are_windows_of_training_clips_read_at_their_last_frame(tokenized):
    from physar.lm.sequences import reading_examples, split_examples
    from physar.language import split_tokens

    lang = PhysicsLanguage(48, 4)
    examples = load_examples([tokenized / "uniform", tokenized / "collision"], lang)
    train, held = split_examples(examples, 2, 0)
    reading = reading_examples(lang, train, 3, seed=0)
    assert reading == reading_examples(lang, train, 3, seed=0)  # seeded
    assert not {e["video"] for e in reading} & {e["video"] for e in held}  # nothing from the held-out clips
    by_video = {e["video"]: e for e in train}
    per_clip = {}
    for e in reading:
        clip, last = by_video[e["video"]], e["last_frame"]
        per_clip.setdefault(e["video"], set()).add(last)
        assert e["completion"] == lang.text(lang.state_block(clip["record"], last))
        assert split_tokens(e["prompt"]) == lang.prompt(clip["ids"][last - 2:last + 1], 3, clip["scene"])
        xy, r = np.asarray(clip["record"]["positions"])[last - 2:last + 1], np.asarray(clip["record"]["radii"])[:, None]
        assert np.all(xy - r >= 0) and np.all(xy + r <= 10)  # every ball wholly in view: something to read
    assert all(len(lasts) <= 3 for lasts in per_clip.values()) and sum(map(len, per_clip.values())) == len(reading)
    assert len(reading) > 2 * len(train)
    # the window at the conditioning frames is the clip's own reading: the same state block
    first = train[0]
    assert lang.text(lang.state_block(first["record"], 2)) in first["completion"]


def test_sft_with_reading_examples_trains_on_clips_and_windows(tokenized, tmp_path):
    cfg = tiny_lm([tokenized / "uniform"], tokenized / "ddt", reading_examples=4, steps=12, eval_every=6, save_every=12)
    info = train_sft(cfg, tmp_path / "run", progress=False)
    assert info["reading_examples"] > 2 * info["train_clips"] and info["eval_clips"] >= 1
    assert info["eval_loss"] is not None and np.isfinite(info["eval_loss"])
    with pytest.raises(ConfigError, match="reading_examples"):
        LMConfig(reading_examples=-1)
    with pytest.raises(ConfigError, match="reading_examples: needs the symbolic format"):
        train_sft(cfg, tmp_path / "visual", symbolic=False, progress=False)


JUMP_LANGUAGE = dict(frame_displacement=True, state_steps=True, frame_acceleration=True, contact_gap=True,
                     whole_jumps=True, signed_changes=True, relative_steps=True)


def test_jump_examples_are_each_collision_frame_of_a_training_clip_as_its_own_lesson(tokenized):
    from physar.language import REL, split_tokens
    from physar.lm.sequences import jump_examples, split_examples

    lang = PhysicsLanguage(48, 4, **JUMP_LANGUAGE)
    examples = load_examples([tokenized / "uniform", tokenized / "collision"], lang)
    train, held = split_examples(examples, 2, 0)
    jumps = jump_examples(lang, train, 2)
    by_video = {e["video"]: e for e in train}
    colliding = [e for e in train if e["num_objects"] == 2 and e["record"]["collisions"]]
    assert colliding and len(jumps) == 2 * len(colliding)  # one jump frame a collision clip, given twice
    assert not {e["video"] for e in jumps} & {e["video"] for e in held}
    for lesson in jumps[::2]:
        clip = by_video[lesson["video"]]
        prompt, completion = split_tokens(lesson["prompt"]), split_tokens(lesson["completion"])
        # the clip cut at the jump frame's first <p>: prompt + completion is a prefix of the clip
        assert (clip["prompt"] + clip["completion"]).startswith(lesson["prompt"] + lesson["completion"])
        assert prompt[-1] != "<p>" and REL in prompt[prompt.index("<frame>", len(split_tokens(clip["prompt"]))):]
        assert prompt.count("<frame>") == 3 + lesson["frame"] + 1
        # the completion: each ball's <p> with a change of step, the first one signed, and no visual token
        assert completion.count("<p>") == 2 and completion[0] == "<p>" and completion[1] in ("<+>", "<->")
        assert not any(t.startswith("<v") for t in completion)
        # the change it teaches is the one the clip writes at that frame
        parsed = lang.parse(clip["completion"], 29)
        frame = lesson["frame"]
        steps = parsed.velocities[frame] - (parsed.velocities[frame - 1] if frame else
                                             np.array([[o["vx"], o["vy"]] for o in parsed.objects]))
        assert np.abs(steps[:, 0]).min() > 0.1  # both balls turn there
    with pytest.raises(ValueError, match="signed_changes"):
        jump_examples(PhysicsLanguage(48, 4), train, 1)
    with pytest.raises(ConfigError, match="jump_examples"):
        LMConfig(jump_examples=-1)
    with pytest.raises(ConfigError, match="jump_examples: needs frame_acceleration and signed_changes"):
        train_sft(tiny_lm([tokenized / "collision"], tokenized / "ddt", jump_examples=1), tokenized / "never", progress=False)


def test_resume_continues_from_the_last_checkpoint(sft_run, tokenized, tmp_path):
    import shutil

    run, _ = sft_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg = tiny_lm([tokenized / "uniform", tokenized / "collision"], tokenized / "ddt")
    # a run recorded before a setting existed resumes when the setting keeps its default
    settings = json.loads((copy / "settings.json").read_text())
    del settings["visual_embeddings"]
    (copy / "settings.json").write_text(json.dumps(settings))
    with pytest.raises(TrainingError, match="visual_embeddings"):
        train_sft(tiny_lm(cfg.data, cfg.tokenizer, visual_embeddings="codes"), copy, resume=True, progress=False)
    train_sft(cfg, copy, resume=True, steps=30, progress=False)
    state = json.loads(sorted((copy / "trainer").glob("checkpoint-*"), key=lambda p: int(p.name[11:]))[-1]
                       .joinpath("trainer_state.json").read_text())
    assert state["global_step"] == 30
    steps = [json.loads(line)["step"] for line in (copy / "log.jsonl").read_text().splitlines()]
    assert max(steps) == 30 and steps.count(24) >= 1  # one log, continued


def test_code_embeddings_start_ids_a_level_apart_close_together(tokenized, tmp_path):
    import torch

    from physar.lm.model import build_model
    from physar.lm.visual_embeddings import fsq_digits
    from physar.tokenizer.fsq import FSQ

    levels = [4, 4, 3]
    ids = torch.arange(48)
    # the same numbering as the tokenizer's quantizer
    half = torch.tensor(levels) // 2
    assert torch.equal(torch.from_numpy(fsq_digits(levels)) - half, (FSQ(levels).ids_to_codes(ids) * half).round().long())
    lang = PhysicsLanguage(48, 4)
    tok = build_tokenizer(lang)
    plain = build_model(tiny_lm([], tokenized / "ddt", hidden_size=64), tok)
    model = build_model(tiny_lm([], tokenized / "ddt", hidden_size=64, visual_embeddings="codes"), tok, levels)
    weight = model.get_input_embeddings().weight
    visual = tok.convert_tokens_to_ids(list(lang.visual))
    others = [i for i in range(len(tok)) if i not in set(visual)]
    assert torch.equal(weight[others], plain.get_input_embeddings().weight[others])  # only visual rows change
    assert torch.equal(model.get_output_embeddings().weight, weight)  # tied: the output layer starts the same
    rows = torch.nn.functional.normalize(weight[visual], dim=1)
    cosine = rows @ rows.T
    digits = torch.from_numpy(fsq_digits(levels))
    apart = (digits[:, None] - digits[None]).abs().sum(-1)  # levels apart, summed over dimensions
    near, far = cosine[apart == 1].mean(), cosine[apart == 5].mean()
    assert near > 0.4 and far < 0.0, (near, far)
    assert (cosine - 2 * torch.eye(48)).max() < 0.95  # every row distinct
    with pytest.raises(ConfigError, match="visual_embeddings"):
        LMConfig(visual_embeddings="fsq")
    # a base model that already has the visual tokens keeps its trained rows
    plain.save_pretrained(tmp_path / "base")
    again = build_model(tiny_lm([], tokenized / "ddt", base_model=str(tmp_path / "base"), visual_embeddings="codes"),
                        tok, levels)
    assert torch.equal(again.get_input_embeddings().weight, plain.get_input_embeddings().weight)


def test_keypoint_tokens_start_from_a_keypoints_coordinates_over_a_base_model(tokenized, tmp_path):
    """keypoint_tokens over a base model without them: the base's rows stay as trained, the new <k..> rows start
    from the fine FSQ's levels (a keypoint's x and y), so keypoints a coordinate level apart start close."""
    import torch

    from physar.lm.model import build_model
    from physar.lm.visual_embeddings import fsq_digits

    levels, fine_levels = [4, 4], [4, 4]
    base_lang, lang = PhysicsLanguage(16, 4), PhysicsLanguage(16, 4, keypoint_tokens=True, fine_tokens=2)
    base = build_model(tiny_lm([], tokenized / "ddt", hidden_size=64), build_tokenizer(base_lang))
    base.save_pretrained(tmp_path / "base")
    build_tokenizer(base_lang).save_pretrained(tmp_path / "base")
    cfg = tiny_lm([], tokenized / "ddt", base_model=str(tmp_path / "base"), visual_embeddings="codes",
                  keypoint_tokens=True)
    tok = build_tokenizer(lang, cfg.base_model)
    model = build_model(cfg, tok, levels, fine_levels)
    weight, trained = model.get_input_embeddings().weight, base.get_input_embeddings().weight
    assert torch.equal(weight[:len(trained)], trained)
    keypoint = tok.convert_tokens_to_ids(list(lang.keypoint))
    assert min(keypoint) >= len(trained)
    rows = torch.nn.functional.normalize(weight[keypoint], dim=1)
    digits = torch.from_numpy(fsq_digits(fine_levels))
    apart = (digits[:, None] - digits[None]).abs().sum(-1)
    cosine = rows @ rows.T
    assert cosine[apart == 1].mean() > 0.4 and cosine[apart == 6].mean() < 0.0
    with pytest.raises(ConfigError, match="fine_fsq_levels"):
        build_model(cfg, tok, levels)


def test_run_folder_and_config_guards(sft_run, tokenized, tmp_path):
    run, _ = sft_run
    cfg = tiny_lm([tokenized / "uniform"], tokenized / "ddt")
    with pytest.raises(TrainingError, match="not empty"):
        train_sft(cfg, run, progress=False)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train_sft(cfg, tmp_path / "new", resume=True, progress=False)
    with pytest.raises(TrainingError, match="other settings"):
        train_sft(tiny_lm([tokenized / "uniform", tokenized / "collision"], tokenized / "ddt", hidden_size=64),
                  run, resume=True, progress=False)
    with pytest.raises(ConfigError, match="max_length"):
        train_sft(tiny_lm([tokenized / "collision"], tokenized / "ddt", max_length=100), tmp_path / "short", progress=False)
    with pytest.raises(ConfigError, match="hidden_size"):
        LMConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ConfigError, match="choose one"):  # the language's own rules, checked when the config is
        LMConfig(relative_jumps=True, restitution_jumps=True, **{k: True for k in (
            "frame_displacement", "state_steps", "frame_acceleration", "contact_gap", "relative_steps")})
    (tmp_path / "bad.yaml").write_text("hidden_size: 64\nlayers: 3\n")
    with pytest.raises(ConfigError, match="unknown key layers"):
        LMConfig.from_yaml(tmp_path / "bad.yaml")


def test_generation_parses_and_writes_videos_the_evaluator_reads(sft_run, tokenized, tmp_path):
    run, _ = sft_run
    data = tokenized / "collision"
    report = generate_dataset(run, data, tmp_path / "gen", batch_size=3, limit=5, progress=False)
    assert report["parsed"] == report["clips"] == 5 and report["parse_rate"] == 1.0
    lines = [json.loads(line) for line in (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines()]
    assert len(lines) == 5 and all(len(x["positions"]) == 29 and len(x["visual_ids"]) == 32 for x in lines)
    for record in load_metadata(data)[:5]:
        assert read_video(tmp_path / "gen" / record["video"]).shape == (32, 32, 32, 3)
    assert (tmp_path / "gen" / "previews" / "strip.png").is_file()
    # sampled decoding is constrained too, and repeats with the same seed
    a = generate_dataset(run, data, tmp_path / "s1", greedy=False, temperature=1.5, limit=3, seed=1, previews=False,
                         progress=False)
    b = generate_dataset(run, data, tmp_path / "s2", greedy=False, temperature=1.5, limit=3, seed=1, previews=False,
                         progress=False)
    assert a["parse_rate"] == 1.0
    assert (tmp_path / "s1" / "trajectories.jsonl").read_text() == (tmp_path / "s2" / "trajectories.jsonl").read_text()
    # the evaluator reads the generated videos (clips it could not find a ball in are reported, not dropped)
    generate_dataset(run, tokenized / "uniform", tmp_path / "u", limit=4, previews=False, progress=False)
    evaluate(tokenized / "uniform", tmp_path / "u", out=tmp_path / "u" / "report.json")
    assert (tmp_path / "u" / "report.json").is_file()


def test_forced_state_block_is_kept_and_the_rest_is_generated_to_parse(sft_run, tokenized):
    """The simulator's <state> block forced as the start of each completion (the given-state
    diagnostic): rows of one batch whose blocks differ in length (one ball or two) still line up."""
    from physar.lm.generate import generate_sequences
    from physar.tokenizer.codec import encode_clip, load_tokenizer

    run, _ = sft_run
    model, tok, lang, meta = load_checkpoint(run)
    ddt, cond = load_tokenizer(meta["tokenizer"]), meta["conditioning_frames"]
    records = load_metadata(tokenized / "uniform")[:2] + load_metadata(tokenized / "collision")[:2]
    prefixes = [lang.state_block(r, cond - 1) for r in records]
    assert len({len(p) for p in prefixes}) > 1
    prompts = np.stack([encode_clip(ddt, read_video(tokenized / r["scene"] / r["video"])[:cond]) for r in records])
    clips = generate_sequences(model, tok, lang, prompts, meta["num_frames"] - cond, cond, meta["max_objects"],
                               scenes=[r["scene"] for r in records], prefixes=prefixes)
    for record, clip in zip(records, clips):
        assert not isinstance(clip, str), clip
        assert clip.positions.shape == (meta["num_frames"] - cond, len(record["radii"]), 2)
        for obj, color, (x, y), (vx, vy) in zip(clip.objects, record["colors"], record["positions"][cond - 1],
                                                 record["velocities"][cond - 1]):
            assert obj["color"] == list(color)
            assert np.allclose([obj["x"], obj["y"], obj["vx"], obj["vy"]], [x, y, vx, vy], atol=0.006)


@pytest.mark.parametrize("frame_format", ["frame_velocity", "frame_displacement"])
def test_frame_formats_train_save_and_generate_velocities(tokenized, tmp_path, frame_format):
    """frame_velocity and frame_displacement: the language setting travels with the checkpoint, and
    generation records the velocities the model wrote for every frame (batched by length here)."""
    with pytest.raises(ConfigError, match=frame_format):
        tiny_lm([tokenized / "uniform"], tokenized / "ddt", symbolic=False, **{frame_format: True})
    cfg = tiny_lm([tokenized / "uniform", tokenized / "collision"], tokenized / "ddt", group_by_length=True,
                  max_length=1536, steps=4, eval_every=4, save_every=4, decimals=3, **{frame_format: True})
    train_sft(cfg, tmp_path / "run", progress=False)
    _, _, lang, meta = load_checkpoint(tmp_path / "run")
    assert getattr(lang, frame_format) and meta["language"][frame_format] is True and lang.decimals == 3
    generate_dataset(tmp_path / "run", tokenized / "collision", tmp_path / "gen", limit=2, previews=False, progress=False)
    for line in (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines():
        clip = json.loads(line)
        shape = np.asarray(clip["velocities"]).shape  # one pair per frame and ball the (4-step) model named
        assert shape == np.asarray(clip["positions"]).shape and shape[0] == 29 and shape[2] == 2
        if frame_format == "frame_displacement":  # positions: the <state> block's plus the steps, to the digit
            start = np.array([[o["x"], o["y"]] for o in clip["objects"]])
            summed = start + np.cumsum(np.asarray(clip["velocities"]) * 0.1, axis=0)
            assert np.abs(np.asarray(clip["positions"]) - np.clip(summed, -99.999, 99.999)).max() < 1e-6


def test_state_read_from_the_frames_is_forced_in_place_of_the_models(sft_run, tokenized, tmp_path):
    """state_from="frames": each clip's <state> block is the parser's reading of its conditioning
    frames (the 24-step model would read them far worse), the rest is generated as usual."""
    from physar.errors import CheckpointError
    from physar.lm.frame_reading import read_state

    run, _ = sft_run
    data = tokenized / "collision"
    report = generate_dataset(run, data, tmp_path / "gen", limit=5, previews=False, progress=False, state_from="frames")
    assert report["state_from"] == "frames" and report["parse_rate"] == 1.0
    states = [read_state(read_video(data / r["video"])[:3], "collision") for r in load_metadata(data)[:5]]
    assert report["states_read_by_parser"] == sum(s is not None for s in states) >= 3
    for state, line in zip(states, (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines()):
        objects = json.loads(line)["objects"]
        if state is None:
            continue
        assert [o["color"] for o in objects] == state["colors"]
        for o, (x, y), (vx, vy), r in zip(objects, state["positions"][-1], state["velocities"][-1], state["radii"]):
            assert np.allclose([o["x"], o["y"], o["vx"], o["vy"], o["r"]], [x, y, vx, vy, r], atol=0.005 + 1e-9)
    with pytest.raises(CheckpointError, match="state_from"):
        generate_dataset(run, data, tmp_path / "bad", limit=1, progress=False, state_from="oracle")


def test_frames_drawn_by_the_renderer_are_the_ddt_tokens_of_the_models_states(sft_run, tokenized, tmp_path):
    """draw="renderer": every generated frame's visual tokens are the DDT encoding of that frame's
    states (the model's colours and radii at its positions) drawn by the scene's renderer, with the
    keypoint tokens (for a keypoint tokenizer) written from the states."""
    from physar.errors import CheckpointError
    import torch

    from physar.lm.drawing import known_keypoints
    from physar.tokenizer.codec import load_tokenizer
    from simulators.render import render_frames

    run, _ = sft_run
    data = tokenized / "collision"
    report = generate_dataset(run, data, tmp_path / "gen", limit=3, previews=False, progress=False, draw="renderer")
    assert report["draw"] == "renderer" and report["parse_rate"] == 1.0
    ddt = load_tokenizer(load_checkpoint(run)[3]["tokenizer"])
    for line in (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines():
        clip = json.loads(line)
        objects, positions = clip["objects"], np.asarray(clip["positions"])
        drawn = render_frames(positions, np.array([max(o["r"], 1e-3) for o in objects]),
                              np.array([o["color"] for o in objects]), 32)
        radii = np.array([max(o["r"], 1e-3) for o in objects])
        keypoints = [known_keypoints(p, radii, [o["color"] for o in objects], ddt.config) for p in positions]
        expected = np.concatenate([ddt.encode(torch.from_numpy(frame[None]), k).numpy()
                                   for frame, k in zip(drawn, keypoints)])
        assert np.array_equal(np.asarray(clip["visual_ids"])[3:], expected)
    generate_dataset(run, data, tmp_path / "lm", limit=3, previews=False, progress=False)  # the model's own drawing
    assert (tmp_path / "lm" / "trajectories.jsonl").read_text() != (tmp_path / "gen" / "trajectories.jsonl").read_text()
    with pytest.raises(CheckpointError, match="draw"):
        generate_dataset(run, data, tmp_path / "bad", limit=1, progress=False, draw="painter")


def test_keypoint_tokens_train_and_draw_end_to_end(tmp_path):
    """An LM over a keypoint tokenizer with keypoint_tokens: trains, writes <k..> only in a frame's fine slots,
    and generation with drawn frames forces them (the drawn frames' ids are the DDT's encoding of its states).
    A tokenizer without keypoint tokens is refused."""
    import torch

    from conftest import DDT
    from physar.lm.drawing import known_keypoints
    from physar.tokenizer.codec import encode_dataset, load_tokenizer
    from physar.tokenizer.config import TokenizerConfig
    from physar.tokenizer.model import DDTTokenizer
    from simulators.render import render_frames

    torch.manual_seed(0)
    ddt = {**DDT, "num_tokens": 6, "fsq_levels": [4, 4, 4], "fine_tokens": 4, "fine_fsq_levels": [8, 8],
           "fine_encoder": "keypoints", "renderer_sees_fine": False, "snap_to_keypoints": True}
    DDTTokenizer(TokenizerConfig(**ddt)).save_pretrained(tmp_path / "ddt")
    DDTTokenizer(TokenizerConfig(**DDT)).save_pretrained(tmp_path / "plain_ddt")
    generate(recipe_path("collision"), "eval", tmp_path / "collision", count=8, resolution=32, seed=1, progress=False)
    encode_dataset(tmp_path / "collision", tmp_path / "ddt", progress=False)
    cfg = tiny_lm([tmp_path / "collision"], tmp_path / "ddt", keypoint_tokens=True, visual_embeddings="codes",
                  eval_clips=2, steps=6, eval_every=6, save_every=6, max_length=1024)
    train_sft(cfg, tmp_path / "run", progress=False)
    _, tok, lang, _ = load_checkpoint(tmp_path / "run")
    assert lang.keypoint_tokens and lang.fine_tokens == 4 and tok.convert_tokens_to_ids("<k63>") != tok.unk_token_id
    example = load_examples([tmp_path / "collision"], lang, "ddt", None)[0]
    frame = split_tokens(example["prompt"])[3:9]
    assert [t[:2] for t in frame] == ["<v"] * 2 + ["<k"] * 4
    report = generate_dataset(tmp_path / "run", tmp_path / "collision", tmp_path / "gen", limit=2, previews=False,
                              progress=False, draw="renderer")
    assert report["parse_rate"] == 1.0
    ddt_model = load_tokenizer(tmp_path / "ddt")
    for line in (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines():
        clip = json.loads(line)
        objects, positions = clip["objects"], np.asarray(clip["positions"])
        radii, colors = np.array([max(o["r"], 1e-3) for o in objects]), [o["color"] for o in objects]
        drawn = render_frames(positions, radii, np.array(colors), 32)
        expected = [ddt_model.encode(torch.from_numpy(f[None]), known_keypoints(p, radii, colors, ddt_model.config))
                    for f, p in zip(drawn, positions)]
        assert np.array_equal(np.asarray(clip["visual_ids"])[3:], torch.cat(expected).numpy())
    with pytest.raises(ConfigError, match="keypoint_tokens"):
        train_sft(tiny_lm([tmp_path / "collision"], tmp_path / "plain_ddt", keypoint_tokens=True), tmp_path / "bad",
                  progress=False)


def test_drawn_keypoints_are_the_states_centres_for_balls_wholly_in_view():
    """known_keypoints: keypoint p is the ball of palette colour p at its pixel centre; a ball
    reaching past the frame's edge keeps the encoder's keypoint (NaN), as does an absent colour."""
    from types import SimpleNamespace

    from physar.lm.drawing import drawn_snap_mode, known_keypoints
    from simulators.world import BLUE, RED, world_to_pixel

    config = SimpleNamespace(has_keypoints=True, resolution=64, num_keypoints=2)
    positions, radii = np.array([[4.0, 6.5], [9.5, 5.0]]), np.array([1.0, 1.0])
    points = known_keypoints(positions, radii, [BLUE, RED], config)[0].numpy()
    assert np.allclose(points[1], world_to_pixel(4.0, 6.5, 64), atol=1e-5)  # blue: keypoint 1
    assert np.isnan(points[0]).all()  # red reaches x = 10.5: past the edge
    assert known_keypoints(positions[:1], radii[:1], [RED], config)[0, 1].isnan().all()
    assert known_keypoints(positions, radii, [BLUE, RED], SimpleNamespace(has_keypoints=False)) is None
    # drawn frames decode their balls as discs where the tokenizer has keypoint and radius tokens
    assert drawn_snap_mode(SimpleNamespace(config=SimpleNamespace(snap_to_keypoints=True, radius_tokens=True))) == "disc"
    assert drawn_snap_mode(SimpleNamespace(config=SimpleNamespace(snap_to_keypoints=True, radius_tokens=False))) is None


def test_a_checkpoint_can_name_its_own_generation_settings(sft_run, tokenized, tmp_path):
    """physar.json "generation" sets who reads and who draws when the caller does not say."""
    import shutil

    from physar.lm.model import resolve_checkpoint

    run, _ = sft_run
    shipped = tmp_path / "shipped"
    shutil.copytree(resolve_checkpoint(run), shipped)
    meta = json.loads((shipped / "physar.json").read_text())
    meta["tokenizer"] = str(resolve_checkpoint(run) / meta["tokenizer"])
    (shipped / "physar.json").write_text(json.dumps({**meta, "generation": {"state_from": "frames", "draw": "renderer"}}))
    data = tokenized / "uniform"
    own = generate_dataset(shipped, data, tmp_path / "own", limit=2, previews=False, progress=False)
    assert (own["state_from"], own["draw"]) == ("frames", "renderer")
    asked = generate_dataset(shipped, data, tmp_path / "asked", limit=2, previews=False, progress=False, draw="lm")
    assert (asked["state_from"], asked["draw"]) == ("frames", "lm")
    plain = generate_dataset(run, data, tmp_path / "plain", limit=2, previews=False, progress=False)
    assert (plain["state_from"], plain["draw"]) == ("model", "lm")


def test_frame_acceleration_trains_and_generates_summed_steps(tokenized, tmp_path):
    """frame_acceleration: the model writes each frame's change of step; the steps (velocities)
    and positions of its trajectory are sums of them, from its <state> block, to the digit."""
    with pytest.raises(ConfigError, match="frame_acceleration"):
        tiny_lm([tokenized / "uniform"], tokenized / "ddt", frame_displacement=True, frame_acceleration=True)
    cfg = tiny_lm([tokenized / "uniform"], tokenized / "ddt", max_length=1536, steps=4, eval_every=4, save_every=4,
                  decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True)
    train_sft(cfg, tmp_path / "run", progress=False)
    _, _, lang, meta = load_checkpoint(tmp_path / "run")
    assert lang.frame_acceleration and meta["language"]["frame_acceleration"] is True
    generate_dataset(tmp_path / "run", tokenized / "uniform", tmp_path / "gen", limit=2, previews=False,
                     progress=False, state_from="frames")
    for line in (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines():
        clip = json.loads(line)
        start = np.array([[o["x"], o["y"]] for o in clip["objects"]])
        steps = np.asarray(clip["velocities"]) * 0.1
        assert np.abs(np.asarray(clip["positions"]) - np.clip(start + np.cumsum(steps, axis=0), -99.999, 99.999)).max() < 1e-6


def test_single_clip_from_scene_parameters(sft_run, tmp_path):
    run, _ = sft_run
    data = single_clip_dataset(tmp_path / "in", run, scene="uniform", params=dict(velocity=5.2, radius=1.0))
    record = load_metadata(data)[0]
    assert record["params"] == {"v": 5.2, "r": 1.0} and record["bucket"] != "in"
    report = generate_dataset(run, data, tmp_path / "out", previews=False, progress=False)
    assert report["parse_rate"] == 1.0 and (tmp_path / "out" / "clip.mp4").is_file()
    from physar.errors import CheckpointError

    with pytest.raises(CheckpointError, match="radii must be positive"):
        single_clip_dataset(tmp_path / "bad", run, scene="uniform", params=dict(velocity=1.0, radius=-1.0))


def test_single_clip_from_a_video_file_needs_its_scene(sft_run, tokenized, tmp_path):
    from physar.errors import CheckpointError

    run, _ = sft_run
    video = tokenized / "uniform" / load_metadata(tokenized / "uniform")[0]["video"]
    unnamed = single_clip_dataset(tmp_path / "a", run, video=video)
    with pytest.raises(CheckpointError, match="say which with --scene"):
        generate_dataset(run, unnamed, tmp_path / "ga", previews=False, progress=False)
    data = single_clip_dataset(tmp_path / "b", run, video=video, scene="uniform")
    report = generate_dataset(run, data, tmp_path / "gb", previews=False, progress=False)
    assert report["parse_rate"] == 1.0 and (tmp_path / "gb" / video.name).is_file()


def test_symbolic_state_error_is_the_floor_for_true_states_and_grows_with_drift(tokenized, tmp_path):
    from physar.lm.assess import symbolic_velocity_error

    data = tokenized / "collision"
    records = load_metadata(data)

    def write(name, drift):
        folder = tmp_path / name
        folder.mkdir()
        with open(folder / "trajectories.jsonl", "w") as f:
            for r in records:
                states = np.asarray(r["positions"])[3:] + np.arange(29)[:, None, None] * np.array([drift, 0.0])
                objects = [{"color": c} for c in r["colors"]][::-1]  # the model may name the balls in any order
                f.write(json.dumps({"video": r["video"], "objects": objects,
                                    "positions": states[:, ::-1].round(2).tolist()}) + "\n")
        return symbolic_velocity_error(data, folder)["collision"]["in"]["vel_error"]

    exact, drifted = write("exact", 0.0), write("drift", 0.05)
    assert exact < 0.02 and drifted > exact + 0.3  # 0.05 units a frame = 0.5 units/s


def test_state_reading_error_measures_the_state_block_against_the_simulator(tokenized, tmp_path):
    from physar.lm.assess import state_reading_error

    data = tokenized / "collision"
    records = load_metadata(data)
    with open(tmp_path / "trajectories.jsonl", "w") as f:
        for r in records:
            (x, y), (vx, vy) = r["positions"][2][0], r["velocities"][2][0]
            # the first ball read 0.3 units right, 0.4 units/s fast in y, radius 0.1 too large; the second not named
            read = {"color": r["colors"][0], "r": r["radii"][0] + 0.1, "x": x + 0.3, "y": y, "vx": vx, "vy": vy + 0.4}
            f.write(json.dumps({"video": r["video"], "objects": [read], "positions": []}) + "\n")
    reading = state_reading_error(data, tmp_path)["collision"]
    total = sum(g["balls"] for g in reading.values())
    assert total == len(records) and sum(g["missed"] for g in reading.values()) == len(records)
    for group in reading.values():
        assert group["position"] == pytest.approx(0.3) and group["velocity"] == pytest.approx(0.4)
        assert group["radius"] == pytest.approx(0.1)


def test_symbolic_agreement_is_small_for_true_states(tokenized):
    from physar.language import Clip

    record = load_metadata(tokenized / "uniform")[0]
    frames = read_video(tokenized / "uniform" / record["video"])
    clip = Clip([{"color": record["colors"][0]}], np.asarray(record["positions"]), None)
    agree = symbolic_agreement(frames, clip, 32)
    assert agree["found"] > 0.5 and np.median(agree["distances_px"]) < 0.5
    shifted = Clip(clip.objects, clip.positions + [1.0, 0.0], None)  # 1 world unit = 3.1 px at 32 px
    assert np.median(symbolic_agreement(frames, shifted, 32)["distances_px"]) > 2.5


def test_base_model_gets_its_vocabulary_extended(tokenized, tmp_path):
    """A local Hugging Face causal LM with its own (text) tokenizer: the physics tokens are added."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    words = {"<s>": 0, "</s>": 1, "<unk>": 2, "the": 3, "ball": 4, "moves": 5}
    raw = Tokenizer(models.WordLevel(vocab=words, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    base_tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    base = tmp_path / "base"
    LlamaForCausalLM(LlamaConfig(vocab_size=6, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64, max_position_embeddings=1024)).save_pretrained(base)
    base_tok.save_pretrained(base)
    cfg = tiny_lm([tokenized / "uniform"], tokenized / "ddt", base_model=str(base), steps=2, eval_every=2, save_every=2)
    train_sft(cfg, tmp_path / "run", progress=False)
    model, tok, lang, _ = load_checkpoint(tmp_path / "run")
    assert len(tok) > len(lang.vocab) and tok.convert_tokens_to_ids("ball") == 4
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    report = generate_dataset(tmp_path / "run", tokenized / "uniform", tmp_path / "gen", limit=2, previews=False,
                              progress=False)
    assert report["parse_rate"] == 1.0


def test_checkpoint_evaluation_in_one_call(sft_run, tmp_path):
    from physar.lm.assess import evaluate_checkpoint

    run, _ = sft_run
    report = evaluate_checkpoint(run, [recipe_path("uniform")], tmp_path / "eval", count=6, batch_size=6,
                                 progress=False)
    assert report["generation"]["uniform"]["parse_rate"] == 1.0
    assert set(report["velocity"]["uniform"]) >= {"in", "out"}
    text = (tmp_path / "eval" / "report.md").read_text()
    n = report["generation"]["uniform"]["clips"]
    assert n >= 6 and f"| uniform | {n} | 100.0% |" in text and "GT floor" in text
    assert (tmp_path / "eval" / "reports" / "uniform" / "report.png").is_file()
    assert set(report["state_reading"]["uniform"]) >= {"in", "out"} and "## Reading the scene" in text


def test_command_line_generate_and_errors(sft_run, tmp_path):
    import subprocess
    import sys

    run, _ = sft_run
    cmd = [sys.executable, "-m", "physar.cli", "generate", "--checkpoint", str(run), "--out", str(tmp_path / "g"),
           "--scene", "collision", "--velocity", "2.0", "--velocity2", "1.5", "--radius2", "0.8"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "1/1 clips parsed" in done.stdout and (tmp_path / "g" / "clip.mp4").is_file()
    bad = subprocess.run(cmd[:6] + ["--out", str(tmp_path / "h"), "--data", str(tmp_path / "missing")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and len(bad.stderr.strip().splitlines()) == 1


def test_compare_judges_rows_on_the_same_clips(sft_run, tmp_path):
    from physar.lm.assess import compare

    run, _ = sft_run
    text = compare({"a": run, "b": run}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False,
                   page=tmp_path / "docs" / "results.md", command="physar compare --row a=X")
    assert "| scene | bucket | n | a | b | PhyWorld DiT-S 30K | PhyWorld best DiT | GT floor |" in text
    assert (tmp_path / "cmp" / "velocity_vs_speed.png").stat().st_size > 10_000
    page = (tmp_path / "docs" / "results.md").read_text()
    assert "physar compare --row a=X" in page and "| uniform | in |" in page and (tmp_path / "docs" / "results.png").is_file()
    # one simulated set for both rows, and identical greedy generations give identical columns
    assert not (tmp_path / "cmp" / "a" / "data").exists()
    row = next(line for line in text.splitlines() if line.startswith("| uniform | in |"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[3] == cells[4] and cells[5] == "0.022"  # PhyWorld DiT-S 30K, ID
    assert "Velocity error of the symbolic states the rows wrote" in text
    assert "| b | uniform | +0.000 [+0.000, +0.000]" in text  # paired with `a` on the same clips
    reading = next(line for line in text.splitlines() if line.startswith("| uniform | in |") and " / " in line)
    cells = [c.strip() for c in reading.split("|")[1:-1]]
    assert cells[2] == cells[3] and len(cells[2].split(" / ")) == 3  # position / velocity / radius, same for a and b
    # another seed: other clips of the same buckets
    compare({"a": run}, [recipe_path("uniform")], tmp_path / "cmp3", count=6, progress=False, seed=3)
    sets = [json.loads((tmp_path / d / "data" / "uniform" / "dataset.json").read_text()) for d in ("cmp", "cmp3")]
    assert [s["settings"]["seed"] for s in sets] == [0, 3]
    velocities = [[r["velocities"][0] for r in load_metadata(tmp_path / d / "data" / "uniform")] for d in ("cmp", "cmp3")]
    assert len(velocities[0]) == len(velocities[1]) and velocities[0] != velocities[1]


def test_compare_reuses_a_row_only_for_the_same_weights_tokenizer_and_clips(sft_run, tmp_path, monkeypatch):
    import shutil

    from physar.lm import assess

    run, _ = sft_run
    first = assess.compare({"a": run}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(assess, "evaluate_checkpoint", refuse)
    assert assess.compare({"a": run}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False,
                          reuse=True) == first
    other = tmp_path / "other"  # other weights under the same label: generated again
    shutil.copytree(run / "checkpoint", other)
    (other / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes() + b" ")
    with pytest.raises(AssertionError, match="generated again"):
        assess.compare({"a": other}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False, reuse=True)
    # the same LM weights decoding through a tokenizer whose config differs (e.g. another snap_mode): generated again
    from physar.lm.model import load_checkpoint

    retuned = tmp_path / "retuned"
    shutil.copytree(run / "checkpoint", retuned / "lm")
    shutil.copytree(load_checkpoint(run)[3]["tokenizer"], retuned / "ddt")
    config = json.loads((retuned / "ddt" / "config.json").read_text())
    (retuned / "ddt" / "config.json").write_text(json.dumps({**config, "snap_mode": "shift"}))
    meta = json.loads((retuned / "lm" / "physar.json").read_text())
    (retuned / "lm" / "physar.json").write_text(json.dumps({**meta, "tokenizer": "../ddt"}))
    with pytest.raises(AssertionError, match="generated again"):
        assess.compare({"a": retuned / "lm"}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False, reuse=True)
    with pytest.raises(AssertionError, match="generated again"):  # without --reuse, always
        assess.compare({"a": run}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False)
    with pytest.raises(AssertionError, match="generated again"):  # the state read by the parser: another row
        assess.compare({"a": run}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False, reuse=True,
                       state_from_frames=("a",))
    with pytest.raises(ValueError, match="no row labelled b"):
        assess.compare({"a": run}, [recipe_path("uniform")], tmp_path / "cmp", count=6, progress=False,
                       state_from_frames=("b",))
    # a row whose <state> the parser read: reused only while the reader is the same (STATE_READER)
    report_path = tmp_path / "cmp" / "a" / "report.json"
    report = json.loads(report_path.read_text())
    args = (tmp_path / "cmp" / "a", run, [recipe_path("uniform")], tmp_path / "cmp" / "data", "exact")
    report_path.write_text(json.dumps({**report, "state_from": "frames", "state_reader": assess.STATE_READER}))
    assert assess.finished_report(*args, state_from="frames") is not None
    report_path.write_text(json.dumps({**report, "state_from": "frames", "state_reader": "per-frame fit (2026-11-30)"}))
    assert assess.finished_report(*args, state_from="frames") is None
    # a row whose frames the renderer drew: reused only while the drawing is the same (DRAWER)
    report_path.write_text(json.dumps({**report, "draw": "renderer", "drawer": assess.DRAWER}))
    assert assess.finished_report(*args, draw="renderer") is not None
    report_path.write_text(json.dumps({**report, "draw": "renderer", "drawer": "renderer, encoder's keypoints"}))
    assert assess.finished_report(*args, draw="renderer") is None


def test_demo_with_a_checkpoint_reports_the_model_beside_the_floor(sft_run, tmp_path):
    from physar.demo import run_demo

    run, _ = sft_run
    report = run_demo(tmp_path / "demo", count=6, resolution=32, checkpoint=run, model_count=3).read_text()
    assert "## The LM" in report and "Floor, exact pixel mapping" in report
    assert (tmp_path / "demo" / "model" / "reports" / "uniform" / "report.png").is_file()
    data = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert set(data["model"]) == {"uniform", "collision", "parabola"}


@pytest.mark.parametrize("name, ddt", [("sft_cpu", "ddt_cpu"), ("sft_cpu_v2", "ddt_cpu_v2"), ("sft_cpu_v3", "ddt_cpu_v2"),
                                       ("sft_cpu_v4", "ddt_cpu_v2"), ("sft_cpu_v6", "ddt_cpu_v2"),
                                       ("rl_cpu_v6", "ddt_cpu_v2"), ("sft_cpu_v8", "ddt_cpu_v2"),
                                       ("sft_cpu_v9", "ddt_cpu_v2"), ("sft_cpu_v10", "ddt_cpu_v5"),
                                       ("sft_cpu_v11", "ddt_cpu_v6")])
def test_shipped_lm_checkpoint_continues_a_simulated_clip(tmp_path, name, ddt):
    """A shipped LM with its DDT tokenizer: one uniform clip, generated and parsed back."""
    from conftest import ROOT

    shipped = ROOT / "checkpoints" / name
    if not (shipped / "physar.json").is_file():
        pytest.skip("no shipped LM checkpoint")
    model, tok, lang, meta = load_checkpoint(shipped)
    assert lang.symbolic and meta["resolution"] == 64
    assert lang.tokens_per_frame == {"ddt_cpu_v5": 12, "ddt_cpu_v6": 14}.get(ddt, 8)
    data = single_clip_dataset(tmp_path / "in", shipped, scene="uniform", params=dict(velocity=2.5, radius=1.0))
    report = generate_dataset(shipped, data, tmp_path / "out", previews=False, progress=False)
    assert report["parse_rate"] == 1.0
    line = json.loads((tmp_path / "out" / "trajectories.jsonl").read_text())
    assert line["objects"][0]["color"] == [255, 0, 0]  # it reads the red ball off the conditioning frames
    assert abs(line["objects"][0]["vx"] - 2.5) < 1.0 and abs(line["objects"][0]["r"] - 1.0) < 0.3
    assert meta["tokenizer"] == str((ROOT / "checkpoints" / ddt).resolve())
    assert read_video(tmp_path / "out" / "clip.mp4").shape == (32, 64, 64, 3)
    if name not in ("sft_cpu", "sft_cpu_v2"):  # its own settings: the parser reads, the renderer draws, the LM adds no change
        assert (report["state_from"], report["draw"]) == ("frames", "renderer")
        assert abs(line["objects"][0]["vx"] - 2.5) < 0.15
        assert np.ptp(np.asarray(line["velocities"])[:, 0, 0]) < 1e-6 and report["agreement_px"]["median"] < 1.5


SIX_COLLISIONS = [(2.5, 2.0, 1.0, 1.0), (3.0, 1.5, 1.0, 1.0), (2.0, 2.0, 0.8, 1.2), (3.0, 2.5, 1.2, 0.9),
                  (1.5, 3.0, 1.0, 0.8), (2.5, 2.5, 1.0, 1.0)]  # (v1, v2, r1, r2), ID


def six_collisions_generated(shipped, tmp_path, positions: bool = False) -> list[tuple[np.ndarray, dict]]:
    """The shipped LM continued on each of SIX_COLLISIONS: (written x velocities [frames, ball], or
    with `positions` the written positions [frames, ball, 2], truth)."""
    out = []
    for k, (v1, v2, r1, r2) in enumerate(SIX_COLLISIONS):
        data = single_clip_dataset(tmp_path / f"in{k}", shipped, scene="collision",
                                   params=dict(velocity=v1, velocity2=v2, radius=r1, radius2=r2))
        generate_dataset(shipped, data, tmp_path / f"out{k}", previews=False, progress=False)
        line = json.loads((tmp_path / f"out{k}" / "trajectories.jsonl").read_text())
        written = np.asarray(line["positions"]) if positions else np.asarray(line["velocities"])[:, :, 0]
        out.append((written, load_metadata(data)[0]))
    return out


@pytest.mark.parametrize("name, bound", [("sft_cpu_v10", None), ("sft_cpu_v11", 0.01)])
def test_shipped_contact_timing_lm_keeps_the_balls_on_the_simulators_positions_after_a_collision(tmp_path, name, bound):
    """The six ID collisions, the written positions in the collision's frame and the three after it
    against the simulator's: sft_cpu_v11 (contact_timing) within 0.01 units (measured 0.0002-0.0054);
    sft_cpu_v10, which takes the new step whole in the collision's frame, more than 0.05 off in most
    (measured 0.18-0.55). Later frames drift by the written velocity's error (0.002 units a frame in two
    of these), which is the collision's velocity error, not its timing."""
    from conftest import ROOT

    shipped = ROOT / "checkpoints" / name
    if not (shipped / "physar.json").is_file():
        pytest.skip("no shipped LM checkpoint")
    errors = []
    for written, truth in six_collisions_generated(shipped, tmp_path, positions=True):
        contact = truth["collisions"][0][0] - truth["conditioning_frames"]
        true = np.asarray(truth["positions"])[truth["conditioning_frames"]:]
        errors.append(np.abs(written[contact:contact + 4] - true[contact:contact + 4]).max())
    if bound is None:
        assert sum(e > 0.05 for e in errors) >= 4
    else:
        assert max(errors) < bound


def test_shipped_contact_lm_makes_the_balls_collide(tmp_path):
    """sft_cpu_v4 on six ID collisions: the balls approach, then a ball turns, in the frame the
    simulator's contact falls in or the next, in most of them (measured: five of these six, with the
    joint reader; 48 of 62 evaluation clips, docs/results_v7.md). How hard it writes the jump is
    still far off, and which ball turns varies: its model card."""
    from conftest import ROOT

    shipped = ROOT / "checkpoints" / "sft_cpu_v4"
    if not (shipped / "physar.json").is_file():
        pytest.skip("no shipped LM checkpoint")
    on_time = 0
    for vx, truth in six_collisions_generated(shipped, tmp_path):
        assert vx[0, 0] > 0 > vx[0, 1]  # approaching
        turns = np.flatnonzero(np.abs(np.diff(vx, axis=0)).max(axis=1) > 0.5) + 1
        contact = truth["collisions"][0][0] - truth["conditioning_frames"]
        on_time += len(turns) > 0 and turns[0] - contact in (0, 1)
    assert on_time >= 4


@pytest.mark.parametrize("name, mean_error", [("sft_cpu_v6", 0.6), ("sft_cpu_v8", 0.05), ("sft_cpu_v9", 0.05),
                                              ("sft_cpu_v10", 0.05), ("sft_cpu_v11", 0.05)])
def test_shipped_relative_jump_lm_writes_collisions_near_the_elastic_ones(tmp_path, name, mean_error):
    """sft_cpu_v6 (relative_jumps), sft_cpu_v8 (restitution_jumps), sft_cpu_v9 (normal_rel) and sft_cpu_v10
    (v9 on ddt_cpu_v5's 12-token frames) on the same six ID collisions (mean error measured: 0.12, 0.002,
    0.002, 0.002):
    both balls turn, in the frame the simulator's contact falls in or the next, and leave at
    velocities near the simulator's (the bounds hold for these six; on the 62 evaluation clips of
    docs/results_v8.md and docs/results_v10.md every clip turns on time; sft_cpu_v4 turns one ball in
    most of them, at the wrong speed)."""
    from conftest import ROOT

    shipped = ROOT / "checkpoints" / name
    if not (shipped / "physar.json").is_file():
        pytest.skip("no shipped LM checkpoint")
    errors, on_time = [], 0
    for vx, truth in six_collisions_generated(shipped, tmp_path):
        turns = np.flatnonzero(np.abs(np.diff(vx, axis=0)).min(axis=1) > 0.5) + 1  # frames where both balls turn
        contact = truth["collisions"][0][0] - truth["conditioning_frames"]
        on_time += len(turns) > 0 and turns[0] - contact in (0, 1)
        errors.append(np.abs(vx[-1] - np.asarray(truth["velocities"])[-1, :, 0]))
    assert on_time == 6
    assert np.mean(errors) < mean_error and np.max(errors) < 1.5


def test_paired_differences_are_per_clip_and_bound_the_mean():
    from physar.lm.assess import paired_differences

    rng = np.random.default_rng(0)
    base = [{"scene": "uniform", "video": f"v{i}.mp4", "bucket": "in" if i < 20 else "v_out", "small": False,
             "vel_error": float(e)} for i, e in enumerate(rng.uniform(0.5, 3.0, 40))]
    better = [dict(c, vel_error=c["vel_error"] - 0.2 + rng.normal(0, 0.01)) for c in base]
    same = [dict(c) for c in base]
    rows = {p["row"] + p["group"]: p for p in paired_differences({"sft": base, "rl": better, "copy": same})}
    assert rows["rlin"]["n"] == 20 and rows["rlout"]["n"] == 20
    assert rows["rlin"]["low"] < -0.2 < rows["rlin"]["high"] < 0  # the clips' spread (0.5-3) cancels out
    assert rows["copyout"]["mean"] == rows["copyout"]["low"] == rows["copyout"]["high"] == 0.0


def test_paired_rows_pools_compare_folders_and_refuses_one_seed_twice(tmp_path, capsys):
    """benchmarks/paired_rows.py: a pair of rows judged per compare folder and pooled over folders (the pooled n is
    the sum, the pooled difference the clip-weighted mean); two folders holding one scene's clips of one seed are
    refused."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("paired_rows", Path(__file__).parents[1] / "benchmarks" / "paired_rows.py")
    paired_rows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paired_rows)
    shifts = {"a": (-0.3, 10), "b": (-0.1, 30)}  # folder -> (row minus reference, OOD clips)
    for seed, (folder, (shift, n)) in enumerate(shifts.items()):
        (tmp_path / folder / "data" / "collision").mkdir(parents=True)
        (tmp_path / folder / "data" / "collision" / "dataset.json").write_text(json.dumps({"seed": seed}))
        for row, delta in (("sft", 0.0), ("rl", shift)):
            reports = tmp_path / folder / row / "reports" / "collision"
            reports.mkdir(parents=True)
            clips = [{"scene": "collision", "video": f"{i}.mp4", "bucket": "v_out", "small": False,
                      "vel_error": 1.0 + seed + 0.1 * i + delta} for i in range(n)]
            (reports / "clips.jsonl").write_text("".join(json.dumps(c) + "\n" for c in clips))
    paired_rows.main(["--reference", "sft", "--row", "rl", "--compare", str(tmp_path / "a"), str(tmp_path / "b")])
    pooled = capsys.readouterr().out.split("pooled")[1]
    assert "| collision | OOD | 40 |" in pooled and "| -0.150 [" in pooled  # (10 x -0.3 + 30 x -0.1) / 40
    with pytest.raises(SystemExit, match=r"same collision clips \(seed 0\)"):
        paired_rows.main(["--reference", "sft", "--row", "rl", "--compare", str(tmp_path / "a"), str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="no row 'ppo'"):
        paired_rows.main(["--reference", "sft", "--row", "ppo", "--compare", str(tmp_path / "a")])


def test_contact_gap_fine_tunes_from_an_acceleration_checkpoint_and_generates(tokenized, tmp_path):
    """contact_gap + whole_jumps + signed_changes + relative_steps (and jump lessons) from a frame_acceleration
    checkpoint (base_model): the three new tokens are appended, the checkpoint records the options, and collision clips
    generate (the grammar writes each frame's gap from the model's own positions, so every clip
    parses)."""
    import torch

    with pytest.raises(ConfigError, match="contact_gap"):
        tiny_lm([tokenized / "collision"], tokenized / "ddt", contact_gap=True)
    acceleration = dict(decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True, max_length=1536)
    train_sft(tiny_lm([tokenized / "collision"], tokenized / "ddt", steps=2, eval_every=2, save_every=2, **acceleration),
              tmp_path / "base", progress=False)
    cfg = tiny_lm([tokenized / "collision"], tokenized / "ddt", steps=2, eval_every=2, save_every=2, contact_gap=True,
                  whole_jumps=True, signed_changes=True, relative_steps=True, base_model=str(tmp_path / "base" / "checkpoint"),
                  jump_examples=1, **{**acceleration, "max_length": 1824})
    info = train_sft(cfg, tmp_path / "run", progress=False)
    colliding = [r for r in load_metadata(tokenized / "collision") if r["collisions"]]
    assert 0 < info["jump_examples"] <= 2 * len(colliding)  # lessons from the training clips that collide
    base, base_tok, _, _ = load_checkpoint(tmp_path / "base")
    model, tok, lang, meta = load_checkpoint(tmp_path / "run")
    assert lang.contact_gap and lang.whole_jumps and lang.signed_changes and lang.relative_steps
    assert meta["language"]["relative_steps"] is True
    assert len(tok) == len(base_tok) + 3
    assert tok.convert_tokens_to_ids(["<gap>", "<+>", "<rel>"]) == [len(base_tok), len(base_tok) + 1, len(base_tok) + 2]
    assert model.config.max_position_embeddings == 1824 > base.config.max_position_embeddings
    assert tok.convert_tokens_to_ids(lang.vocab) == list(range(len(lang.vocab)))
    assert not torch.equal(model.get_input_embeddings().weight[:len(base_tok)], base.get_input_embeddings().weight)
    generate_dataset(tmp_path / "run", tokenized / "collision", tmp_path / "gen", limit=2, previews=False,
                     progress=False, state_from="frames", draw="renderer")
    clips = [json.loads(line) for line in (tmp_path / "gen" / "trajectories.jsonl").read_text().splitlines()]
    assert len(clips) == 2 and all(np.asarray(c["positions"]).shape == (29, 2, 2) for c in clips)
