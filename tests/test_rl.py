"""Stage 2: the prompt pool (supervised and label-free references), the rollout judge on true and
perturbed completions, and a short GRPO run with trl from the tiny SFT checkpoint."""

from __future__ import annotations

import json

import numpy as np
import pytest

from physar.data.generate import load_metadata
from physar.errors import ConfigError
from physar.lm.model import load_checkpoint
from physar.rl.config import RLConfig
from physar.rl.grpo import RolloutJudge, prompt_pool, train_rl
from physar.tokenizer.codec import encode_clip, load_tokenizer
from physar.video import read_video


def _setup(sft_run):
    run, _ = sft_run
    _, tok, lang, meta = load_checkpoint(run)
    return run, tok, lang, meta, load_tokenizer(meta["tokenizer"])


def test_prompts_are_never_the_evaluation_clips(uniform_eval_dataset):
    with pytest.raises(ConfigError, match="holds evaluation clips"):
        prompt_pool([uniform_eval_dataset], None, None, "supervised")


def test_label_free_reference_matches_the_simulator(sft_run, tokenized):
    _, _, lang, _, ddt = _setup(sft_run)
    supervised = prompt_pool([tokenized / "uniform"], ddt, lang, "supervised")
    label_free = prompt_pool([tokenized / "uniform"], ddt, lang, "label_free")
    assert len(label_free) >= len(supervised) // 2
    truth = {r["video"]: r for r in supervised}
    dv = [abs(row["v0"][0][0] - truth[row["video"]]["v0"][0][0]) for row in label_free]
    dx = [abs(row["start"][0][0] - truth[row["video"]]["start"][0][0]) for row in label_free]
    # read from three 32 px frames (a pixel is 0.32 units, and 2 steps span 0.2 s): velocities are
    # known to about a pixel per 0.2 s, positions to a fraction of a pixel
    assert np.median(dv) < 0.3 and max(dv) < 1.0 and max(dx) < 0.2


def test_judge_scores_true_completions_best(sft_run, tokenized):
    _, tok, lang, meta, ddt = _setup(sft_run)
    judge = RolloutJudge(lang, tok, ddt, 29, meta["max_objects"], "symbolic")
    folder = tokenized / "collision"
    for record in load_metadata(folder)[:3]:
        ids = encode_clip(ddt, read_video(folder / record["video"]))
        cond = record["conditioning_frames"]
        row = {"scene": "collision", "start": np.asarray(record["positions"])[cond - 1].tolist(),
               "v0": np.asarray(record["velocities"])[cond - 1].tolist(), "radii": record["radii"],
               "colors": record["colors"]}
        true_ids = tok(lang.text(lang.completion(record, ids)))["input_ids"][1:]  # no <bos>
        truth = judge(true_ids, row)
        assert truth["format_ok"] == 1.0 and truth["physics"] > 0.9, truth
        # without the agreement reward the frames are not decoded: the same physics, no agreement
        lean = RolloutJudge(lang, tok, ddt, 29, meta["max_objects"], "symbolic", agreement=False)
        assert lean(true_ids, row) == {**truth, "agreement": 0.0} and truth["agreement"] > 0
        # the same clip with the balls drifting off their paths scores lower
        drifted = dict(record, positions=(np.asarray(record["positions"])
                                          + np.arange(32)[:, None, None] * np.array([0.08, 0.0])).tolist())
        drift_ids = tok(lang.text(lang.completion(drifted, ids)))["input_ids"][1:]
        assert judge(drift_ids, row)["physics"] < truth["physics"] - 0.1
        assert judge(true_ids[:-40], row) == {"format_ok": 0.0, "physics": 0.0, "agreement": 0.0, "reading": 0.0}
        # the right paths under the wrong colours: half credit (still graded, unlike a broken sequence)
        swapped = dict(record, colors=[[0, 255, 0], [255, 255, 0]])
        swap_ids = tok(lang.text(lang.completion(swapped, ids)))["input_ids"][1:]
        assert judge(swap_ids, row)["physics"] == pytest.approx(truth["physics"] / 2)


def test_grpo_runs_logs_rewards_and_writes_a_checkpoint(sft_run, tokenized, tmp_path):
    run, *_ = _setup(sft_run)
    cfg = RLConfig(checkpoint=str(run), prompts=[str(tokenized / "uniform")], max_prompts=4, num_generations=2,
                   prompts_per_step=2, steps=2, save_every=2, learning_rate=1e-3, beta=0.04)
    info = train_rl(cfg, tmp_path / "rl", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    logged = [r for r in rows if "rewards/physics/mean" in r]
    assert len(logged) == 2 and all(r["rewards/format_ok/mean"] == 1.0 for r in logged)  # constrained rollouts
    assert (tmp_path / "rl" / "rewards.png").is_file() and info["prompts"] == 4
    policy, *_ = load_checkpoint(tmp_path / "rl")
    start, *_ = load_checkpoint(run)
    moved = sum(float((a - b).abs().sum().detach()) for a, b in zip(policy.parameters(), start.parameters()))
    assert moved > 0


def test_parser_read_state_ends_each_prompt_and_rollouts_continue_it(sft_run, tokenized, tmp_path):
    """state_from: frames: the parser's <state> block closes every prompt; the judge reads a
    completion after it, and GRPO's constrained rollouts continue from it (every one parses)."""
    from physar.lm.frame_reading import read_state

    run, tok, lang, meta, ddt = _setup(sft_run)
    folder = tokenized / "uniform"
    pool = prompt_pool([folder], ddt, lang, "supervised", state_from="frames")
    records = {str(folder / r["video"]): r for r in load_metadata(folder)}
    assert len(pool) >= 3
    judge = RolloutJudge(lang, tok, ddt, 29, meta["max_objects"], "symbolic")
    for row in pool[:3]:
        record = records[row["video"]]
        frames = read_video(folder / record["video"])
        block = lang.text(lang.state_block(read_state(frames[:3], "uniform"), 2))
        assert row["prompt"].endswith(block) and "<frame>" in row["prompt"]
        completion = lang.completion(record, encode_clip(ddt, frames))
        after_block = tok(lang.text(completion[completion.index("</state>") + 1:]))["input_ids"][1:]
        scored = judge(after_block, row)
        assert scored["format_ok"] == 1.0 and scored["physics"] > 0.9
        assert judge(after_block, {**row, "prompt": ""})["format_ok"] == 0.0  # without the block it is malformed
    # rollouts drawn by the renderer, as the videos are; the loss on the policy's decisions only
    cfg = RLConfig(checkpoint=str(run), prompts=[str(folder)], max_prompts=4, num_generations=2, prompts_per_step=2,
                   steps=1, save_every=1, state_from="frames", draw="renderer", loss_on="decisions",
                   logprobs="constrained")
    train_rl(cfg, tmp_path / "rl", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    assert [r["rewards/format_ok/mean"] for r in logged if "rewards/format_ok/mean" in r] == [1.0]
    assert all(np.isfinite(r["kl"]) for r in logged if "kl" in r)


def test_decision_mask_counts_only_what_the_policy_chose():
    """The GRPO loss over the policy's decisions: in the frame_acceleration language with the
    <state> block given, those are each frame's changes of step (and, unless the renderer draws
    them, the visual tokens); the grammar writes gaps, positions and structure."""
    from conftest import trajectories

    from physar.data.generate import clip_record
    from physar.language import PhysicsLanguage, token_roles
    from physar.lm.generate import GrammarConstraint
    from physar.rl.grpo import decision_mask, grammar_steps

    lang = PhysicsLanguage(64, 4, decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True,
                           contact_gap=True, whole_jumps=True, signed_changes=True)
    tok = lang.build_tokenizer()
    plan, traj, bucket = trajectories("collision", "eval")[0]
    record = clip_record(traj, plan, bucket, "v.mp4", "eval", 0, 64, 3)
    ids = np.random.default_rng(0).integers(0, 64, (32, 4))
    tokens = lang.completion(record, ids)
    cut = tokens.index("</state>") + 1
    prompt = tok(lang.text(lang.prompt(ids, 3, "collision") + tokens[:cut]))["input_ids"]
    completion = tok(lang.text(tokens[cut:]))["input_ids"][1:] + [tok.eos_token_id]
    grammar = GrammarConstraint(lang, tok, 29, 2)
    drawn = decision_mask([grammar_steps(grammar, tuple(prompt), tuple(completion), drawn=True)])[0]
    written = decision_mask([grammar_steps(grammar, tuple(prompt), tuple(completion), drawn=False)])[0]
    roles = token_roles(tokens[cut:], lang) + ["structure"]
    # a change's first token is the decision; its digits too when it is signed (an unsigned one is zero)
    changes, axis, signed = [], None, False
    for r in roles:
        now = r.split()[1] if r.startswith(("position ax", "position ay")) else None
        first = now is not None and now != axis
        signed = r.endswith("sign") if first else signed
        changes.append(now is not None and (first or signed))
        axis = now
    changes = np.array(changes)
    np.testing.assert_array_equal(drawn, changes)  # gaps, positions, structure and <eos>: 0
    assert changes.sum() > 29 * 2 * 2  # 2 balls, 2 changes a frame, and the digits of the signed ones (the jumps)
    np.testing.assert_array_equal(written - drawn, [r.startswith("visual") for r in roles])
    assert (written - drawn).sum() == 29 * 4


def test_rl_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="mode"):
        RLConfig(mode="guess")
    with pytest.raises(ConfigError, match="num_generations"):
        RLConfig(num_generations=1)
    (tmp_path / "c.yaml").write_text("reward_weights: {speed: 1.0}\n")
    with pytest.raises(ConfigError, match="unknown reward speed"):
        RLConfig.from_yaml(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="state_from"):
        RLConfig(state_from="oracle")
    with pytest.raises(ConfigError, match="draw"):
        RLConfig(draw="pencil")
    with pytest.raises(ConfigError, match="loss_on"):
        RLConfig(loss_on="some")
    with pytest.raises(ConfigError, match="logprobs"):
        RLConfig(logprobs="cooked")
    for top_p in (0.0, 1.5):
        with pytest.raises(ConfigError, match="top_p"):
            RLConfig(top_p=top_p)
    with pytest.raises(ConfigError, match="rollout: .*state_from: model"):
        RLConfig(rollout="state", state_from="frames", reward_weights={"reading": 1.0})
    with pytest.raises(ConfigError, match="reward_weights: physics judge"):
        RLConfig(rollout="state", reward_weights={"physics": 1.0, "reading": 1.0})
    with pytest.raises(ConfigError, match="rollout"):
        RLConfig(rollout="frames")
    with pytest.raises(ConfigError, match="reading_scales"):
        RLConfig(reading_scales=[0.1, 0.0, 0.1])
    for weights in ([1.0, 1.0], [1.0, -1.0, 2.0], [0.0, 0.0, 0.0]):
        with pytest.raises(ConfigError, match="reading_weights"):
            RLConfig(reading_weights=weights)


def test_constrained_logprobs_are_those_of_the_distribution_sampled(sft_run, tokenized):
    """logprobs: constrained: each completion token's log-probability under the model's softmax over
    the tokens the grammar allowed there: 0 where it allowed one, and where it allowed several the
    log-softmax over those alone (trl's raw ones are over the whole vocabulary)."""
    import contextlib
    from types import SimpleNamespace

    import torch

    from physar.lm.generate import GrammarConstraint
    from physar.rl.grpo import constrained_trainer, grammar_steps

    run, tok, lang, meta, ddt = _setup(sft_run)
    model, *_ = load_checkpoint(run)
    record = load_metadata(tokenized / "uniform")[0]
    ids = encode_clip(ddt, read_video(tokenized / "uniform" / record["video"]))
    prompt = tok(lang.text(lang.prompt(ids, 3, "uniform")))["input_ids"]
    completion = tok(lang.text(lang.completion(record, ids)))["input_ids"][1:] + [tok.eos_token_id]
    input_ids = torch.tensor([prompt + completion])
    trainer = object.__new__(constrained_trainer())  # only what the method reads
    grammar = GrammarConstraint(lang, tok, 29, meta["max_objects"])
    trainer.__dict__.update(grammar=grammar, constrained=True, temperature=1.0,
                            steps_of_row=lambda p, c: grammar_steps(grammar, p, c, drawn=False),
                            accelerator=SimpleNamespace(autocast=contextlib.nullcontext))
    with torch.no_grad():
        logps, entropy, _ = trainer._get_per_token_logps_and_entropies(
            model, input_ids, torch.ones_like(input_ids), len(completion), compute_entropy=True)
        raw = model(input_ids=input_ids).logits[0, -len(completion) - 1:-1].log_softmax(-1)
    steps = grammar_steps(grammar, tuple(prompt), tuple(completion), drawn=False)
    forced = [j for j, a in enumerate(steps) if len(a) == 1]
    free = [j for j, a in enumerate(steps) if len(a) > 1]
    assert len(forced) > 50 and len(free) > 50  # structure and field names; the digits and visual tokens
    assert torch.all(logps[0, forced].abs() < 1e-6) and torch.all(entropy[0, forced].abs() < 1e-5)
    j = free[0]
    allowed = [grammar.id_of[t] for t in steps[j]]
    expected = raw[j, completion[j]] - raw[j, allowed].logsumexp(-1)
    assert logps[0, j] == pytest.approx(float(expected), abs=1e-5)
    assert torch.all(logps[0] >= raw[range(len(completion)), completion] - 1e-5)  # never below the raw ones


def test_state_rollouts_reward_the_reading_alone(sft_run, tokenized, tmp_path):
    """rollout: state: the judge reads only the <state> block and scores it against the pool's reading
    (label-free: the parser's reading of the conditioning frames); the simulator's own block scores near 1,
    a block off in position lower, a cut one nothing. GRPO's rollouts stop at the longest block, and in a
    one-ball scene whatever follows </state> is out of the loss."""
    from physar.lm.generate import GrammarConstraint
    from physar.rl.grpo import decision_mask, grammar_steps

    run, tok, lang, meta, ddt = _setup(sft_run)
    folder = tokenized / "uniform"
    pool = prompt_pool([folder], ddt, lang, "label_free")
    records = {str(folder / r["video"]): r for r in load_metadata(folder)}
    judge = RolloutJudge(lang, tok, ddt, 29, meta["max_objects"], "symbolic", state_only=True)
    for row in pool[:3]:
        record = records[row["video"]]
        block = lang.state_block(record, 2)
        truth = judge(tok(lang.text(block))["input_ids"][1:], row)
        # read from three 32 px frames, the reference is a fraction of a pixel off: the truth scores near 1
        assert truth["format_ok"] == 1.0 and truth["reading"] > 0.8 and truth["physics"] == 0.0
        moved = dict(record, positions=(np.asarray(record["positions"]) + [0.5, 0.0]).tolist())
        off = judge(tok(lang.text(lang.state_block(moved, 2)))["input_ids"][1:], row)
        assert off["reading"] < truth["reading"] - 0.1
        assert judge(tok(lang.text(block[:-3]))["input_ids"][1:], row)["format_ok"] == 0.0
        # the right reading under the wrong colour: half credit (graded, unlike a broken block)
        blue = tok(lang.text(lang.state_block(dict(record, colors=[[0, 0, 255]]), 2)))["input_ids"][1:]
        assert judge(blue, row)["reading"] == pytest.approx(truth["reading"] / 2)
    # what follows a one-ball block is masked out: the completion's tokens after </state>
    grammar = GrammarConstraint(lang, tok, 29, meta["max_objects"])
    record = records[pool[0]["video"]]
    completion = lang.completion(record, encode_clip(ddt, read_video(folder / record["video"])))
    ids = tuple(tok(lang.text(completion[:lang.max_state_length(meta["max_objects"])]))["input_ids"][1:])
    prompt = tuple(tok(pool[0]["prompt"])["input_ids"])
    mask = decision_mask([grammar_steps(grammar, prompt, ids, drawn=False, state_only=True)], decisions_only=False)[0]
    assert mask.sum() == completion.index("</state>") + 1 < len(ids)
    cfg = RLConfig(checkpoint=str(run), prompts=[str(folder)], max_prompts=4, num_generations=2, prompts_per_step=2,
                   steps=2, save_every=2, mode="label_free", rollout="state", loss_on="decisions",
                   logprobs="constrained", reward_weights={"reading": 1.0, "format_ok": 0.1}, learning_rate=1e-3)
    train_rl(cfg, tmp_path / "rl", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    readings = [r["rewards/reading/mean"] for r in logged if "rewards/reading/mean" in r]
    assert len(readings) == 2 and all(0 < x <= 1 for x in readings)
    assert all(r["completions/max_length"] <= lang.max_state_length(meta["max_objects"])
               for r in logged if "completions/max_length" in r)


def test_field_rollouts_score_one_number_of_the_block(sft_run, tokenized, tmp_path):
    """rollout: field: one pool row per ball and asked field, its prompt the reference's block up to that field's
    tag; the judge closes the rollout's number with the rest of that block and scores that number alone (its own
    reference scores 1, one off by a scale 1/2, a number cut short nothing). GRPO's rollouts are one number long."""
    from physar.language import split_tokens
    from simulators.world import FRAME_DT

    run, tok, lang, meta, ddt = _setup(sft_run)
    folder = tokenized / "collision"
    whole = prompt_pool([folder], ddt, lang, "label_free", max_prompts=3)
    pool = prompt_pool([folder], ddt, lang, "label_free", max_prompts=3, fields=["x", "vx"])
    assert len(pool) == sum(2 * len(row["colors"]) for row in whole)
    assert {tuple(row["field"]) for row in pool} == {(0, 1), (0, 3), (1, 1), (1, 3)}
    judge = RolloutJudge(lang, tok, ddt, 29, meta["max_objects"], "symbolic", state_only=True,
                         reading_scales=(0.2, 0.5, 1.0))
    for row in pool[:4]:
        ball, k = row["field"]
        assert split_tokens(row["prompt"])[-1] == ("<x>" if k == 1 else "<vx>")
        # a language with state_steps or frame_acceleration writes the block's velocities as steps a frame
        per_frame = FRAME_DT if k == 3 and (lang.state_steps or lang.frame_acceleration) else 1.0
        value = row["reading"][ball][k]
        scale = 0.5 if k == 1 else 1.0
        number = lambda v: tok.convert_tokens_to_ids(lang.number(v * per_frame))  # noqa: E731
        assert judge(number(value), row) == {"format_ok": 1.0, "physics": 0.0, "agreement": 0.0, "reading": 1.0}
        off = judge(number(value + scale), row)["reading"]
        assert off == pytest.approx(0.5, abs=0.02)
        assert judge(number(value)[:2], row)["format_ok"] == 0.0
    cfg = RLConfig(checkpoint=str(run), prompts=[str(folder)], max_prompts=2, num_generations=2, prompts_per_step=2,
                   steps=2, save_every=2, mode="label_free", rollout="field", reading_fields=["vx"],
                   loss_on="decisions", logprobs="constrained", reward_weights={"reading": 1.0, "format_ok": 0.1})
    train_rl(cfg, tmp_path / "rl", progress=False)
    logged = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    assert all(r["completions/max_length"] <= lang.number_length for r in logged if "completions/max_length" in r)
    assert all(r["rewards/format_ok/mean"] == 1.0 for r in logged if "rewards/format_ok/mean" in r)
    with pytest.raises(ConfigError, match="reading_fields"):
        RLConfig(rollout="field", reading_fields=["speed"], reward_weights={"reading": 1.0})


def test_only_the_main_process_refuses_or_writes_a_run_folder(tmp_path, monkeypatch):
    """Launched as several processes (accelerate launch / torchrun set RANK), rank 0 guards and writes the run
    folder; another rank that arrives after rank 0 has started it neither refuses it nor writes it again."""
    from physar.errors import TrainingError
    from physar.lm.runs import check_run, start_run

    run = tmp_path / "rl"
    monkeypatch.setenv("RANK", "0")
    assert check_run(run, {"steps": 2}, resume=False) is None
    start_run(run, {"steps": 2})
    monkeypatch.setenv("RANK", "1")
    assert check_run(run, {"steps": 2}, resume=False) is None  # rank 0 has written settings.json by now
    start_run(run, {"steps": 3})
    assert json.loads((run / "settings.json").read_text()) == {"steps": 2} and not list(run.glob("*.tmp"))
    monkeypatch.setenv("RANK", "0")
    with pytest.raises(TrainingError, match="not empty"):
        check_run(run, {"steps": 2}, resume=False)


def test_grpo_runs_unchanged_as_two_processes(sft_run, tokenized, tmp_path):
    """`physar rl` under torchrun (what accelerate launch starts), two CPU processes with gloo: one run folder,
    one checkpoint and log, each step taking prompts_per_step prompts a process; --resume continues it there."""
    import subprocess
    import sys

    run, *_ = _setup(sft_run)
    config = tmp_path / "rl.yaml"
    config.write_text(f"checkpoint: {run}\nprompts: [{tokenized / 'uniform'}]\nmax_prompts: 8\nnum_generations: 2\n"
                      "prompts_per_step: 2\nsteps: 2\nsave_every: 2\nlearning_rate: 1.0e-3\nseed: 0\n")

    def launch(*extra):
        return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                               "--master_port", "29533", "-m", "physar.cli", "rl", "--config", str(config),
                               "--out", str(tmp_path / "rl"), *extra], capture_output=True, text=True, timeout=600)

    done = launch()
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("prompts, 2 steps") == 1  # one summary, from rank 0
    rows = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "rewards/physics/mean" in r] == [1, 2]
    assert rows[-1]["epoch"] == 1.0  # 2 steps x 2 processes x 2 prompts = the pool's 8 prompts, once
    assert (tmp_path / "rl" / "checkpoint" / "model.safetensors").is_file()
    resumed = launch("--resume", "--steps", "3")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "rl" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "rewards/physics/mean" in r] == [1, 2, 3]
