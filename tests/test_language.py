"""The physics language: writing clips as token sequences, reading them back, the grammar."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import trajectories

from physar.data.generate import clip_record
from physar.language import (FIELDS, LanguageError, PhysicsLanguage, SequenceParser, read_state_block, split_tokens,
                             token_roles)
from simulators.world import FRAME_DT

K, CODEBOOK = 4, 64


def record_of(name, i=0):
    plan, traj, bucket = trajectories(name, "eval")[i]
    return clip_record(traj, plan, bucket, "v.mp4", "eval", 0, 64, 3)


def visual_ids(num_frames, seed=0):
    return np.random.default_rng(seed).integers(0, CODEBOOK, (num_frames, K))


@pytest.mark.parametrize("value,text", [(3.271, "<7><2><3><0>"), (-0.534, "<-><3><5><0><0>"), (12.05, "<5><0><2><1>"),
                                        (-0.001, "<0><0><0><0>"), (0.0, "<0><0><0><0>"), (9.996, "<0><0><0><1>")])
def test_numbers_are_written_little_endian_fixed_point(value, text):
    lang = PhysicsLanguage(CODEBOOK, K)
    assert "".join(lang.number(value)) == text
    tokens = split_tokens(text)
    numbers = SequenceParser(lang, 1)._number()  # the grammar of one number: allowed sets in, value out
    allowed = next(numbers)
    try:
        for t in tokens:
            assert t in allowed
            allowed = numbers.send(t)
    except StopIteration as stop:
        assert stop.value == pytest.approx(round(value, 2))
    else:
        raise AssertionError("the number did not end after its digits")


@pytest.mark.parametrize("value,text", [(3.271, "<3><.><2><7>"), (-0.534, "<-><0><.><5><3>"), (12.0, "<1><2><.><0><0>"),
                                        (-0.001, "<0><.><0><0>"), (0.0, "<0><.><0><0>")])
def test_first_checkpoints_wrote_numbers_most_significant_first(value, text):
    assert "".join(PhysicsLanguage(CODEBOOK, K, little_endian=False).number(value)) == text


def test_number_out_of_range_is_refused():
    with pytest.raises(LanguageError, match="integer digits"):
        PhysicsLanguage(CODEBOOK, K).number(123.0)


@pytest.mark.parametrize("little_endian", [True, False])
@pytest.mark.parametrize("scene", ["uniform", "collision", "parabola"])
def test_clip_round_trips_through_the_language(scene, little_endian):
    lang = PhysicsLanguage(CODEBOOK, K, little_endian=little_endian)
    record = record_of(scene, 3)
    ids = visual_ids(32)
    prompt, completion = lang.prompt(ids, 3, scene), lang.completion(record, ids)
    assert prompt[:2] == ["<clip>", f"<{scene}>"] and prompt.count("<frame>") == 3 and completion.count("<frame>") == 29
    assert len(completion) + 1 <= lang.max_completion_length(29, len(record["radii"]))  # the generation budget
    clip = lang.parse(completion, 29)
    positions = np.asarray(record["positions"])[3:]
    assert clip.positions.shape == positions.shape
    assert np.abs(clip.positions - positions).max() <= 0.005 + 1e-9
    assert np.array_equal(clip.visual, ids[3:])
    assert len(clip.objects) == len(record["radii"])
    for obj, r, rgb in zip(clip.objects, record["radii"], record["colors"]):
        assert obj["color"] == list(rgb) and abs(obj["r"] - r) <= 0.005 + 1e-9
    # the text form parses the same, with or without the closing <eos>
    assert np.array_equal(lang.parse(lang.text(completion) + "<eos>", 29).positions, clip.positions)
    # prompt visual tokens are written coarse first: reversed index order
    assert prompt[3:3 + K] == [f"<v{i}>" for i in ids[0][::-1]]


def test_scene_token_is_required_and_optional_for_old_checkpoints():
    ids = visual_ids(3)
    with pytest.raises(LanguageError, match="needs the clip's scene"):
        PhysicsLanguage(CODEBOOK, K).prompt(ids, 3)
    old, new = PhysicsLanguage(CODEBOOK, K, scene_token=False), PhysicsLanguage(CODEBOOK, K)
    assert old.prompt(ids, 3)[1] == "<frame>"
    # the scene tokens come last: every other token keeps its id
    assert new.vocab[: len(old.vocab)] == old.vocab and len(new.vocab) == len(old.vocab) + 4


def test_visual_only_format_has_no_symbols():
    lang = PhysicsLanguage(CODEBOOK, K, symbolic=False)
    ids = visual_ids(32)
    completion = lang.completion(record_of("uniform"), ids)
    assert len(completion) == 29 * (1 + K)
    assert not any(t in completion for t in ("<state>", "<p>", "<.>"))
    clip = lang.parse(completion, 29)
    assert clip.positions is None and np.array_equal(clip.visual, ids[3:])


@pytest.mark.parametrize("break_at,replacement,message", [
    (0, "<frame>", "token 0 '<frame>': expected <state>"),
    (2, "<v3>", "token 2 '<v3>': expected"),
    (4, "<x>", "token 4 '<x>': expected"),
])
def test_malformed_sequences_are_named(break_at, replacement, message):
    lang = PhysicsLanguage(CODEBOOK, K)
    tokens = lang.completion(record_of("uniform"), visual_ids(32))
    tokens[break_at] = replacement
    with pytest.raises(LanguageError, match=message.replace("[", r"\[")):
        lang.parse(tokens, 29)


def test_truncated_and_overlong_sequences_are_errors():
    lang = PhysicsLanguage(CODEBOOK, K)
    tokens = lang.completion(record_of("uniform"), visual_ids(32))
    with pytest.raises(LanguageError, match="ends after"):
        lang.parse(tokens[:-1], 29)
    with pytest.raises(LanguageError, match="expected the end"):
        lang.parse(tokens + ["<eos>", "<frame>"], 29)


def test_grammar_allows_exactly_the_next_token_of_a_valid_sequence():
    lang = PhysicsLanguage(CODEBOOK, K)
    tokens = lang.completion(record_of("collision"), visual_ids(32))
    parser = SequenceParser(lang, 29)
    for t in tokens:
        allowed = parser.allowed()
        assert t in allowed and "<pad>" not in allowed and "<bos>" not in allowed
        parser.feed(t)
    assert parser.allowed() == {"<eos>"}


def test_hf_tokenizer_round_trips_and_prompt_is_a_prefix(tmp_path):
    pytest.importorskip("transformers")
    from transformers import AutoTokenizer

    lang = PhysicsLanguage(CODEBOOK, K)
    ids = visual_ids(32)
    prompt, completion = lang.text(lang.prompt(ids, 3, "parabola")), lang.text(lang.completion(record_of("parabola"), ids))
    tok = lang.build_tokenizer()
    tok.save_pretrained(tmp_path)
    tok = AutoTokenizer.from_pretrained(tmp_path)
    assert len(tok) == len(lang.vocab)
    p, pc = tok(prompt)["input_ids"], tok(prompt + completion)["input_ids"]
    assert p[0] == tok.bos_token_id and pc[: len(p)] == p
    assert tok.unk_token_id not in pc
    assert split_tokens(tok.decode(pc, skip_special_tokens=True)) == split_tokens(prompt + completion)


def test_token_roles_name_each_digit_by_its_place():
    from physar.language import token_roles

    lang = PhysicsLanguage(CODEBOOK, K)
    record = record_of("collision", 3)
    completion = lang.completion(record, visual_ids(32))
    roles = token_roles(completion, lang)
    assert len(roles) == len(completion)
    assert all(roles.count(f"visual {k}") == 29 for k in range(K)) and "visual 4" not in roles
    first_frame = completion.index("<frame>")
    x_digits = [(t, r) for t, r in zip(completion[first_frame:], roles[first_frame:]) if r.startswith("position x ")]
    value = sum(int(t[1:-1]) * float(r.split()[-1]) for t, r in x_digits[:4])  # the first ball's x, from its places
    assert value == pytest.approx(record["positions"][3][0][0], abs=0.005 + 1e-9)
    assert sum(r == "state vx" for r in roles[:first_frame]) >= 2 * 4  # two balls, at least 4 digits each
    with pytest.raises(LanguageError, match="little-endian"):
        token_roles(completion, PhysicsLanguage(CODEBOOK, K, little_endian=False))


@pytest.mark.parametrize("scene", ["uniform", "collision", "parabola"])
def test_frame_velocity_writes_and_reads_each_frames_velocity(scene):
    lang, plain = PhysicsLanguage(CODEBOOK, K, frame_velocity=True), PhysicsLanguage(CODEBOOK, K)
    record = record_of(scene, 3)
    ids = visual_ids(32)
    completion = lang.completion(record, ids)
    balls = len(record["radii"])
    assert len(completion) >= len(plain.completion(record, ids)) + 29 * balls * 2 * 4  # two numbers more per ball
    assert len(completion) + 1 <= lang.max_completion_length(29, balls)
    clip = lang.parse(completion, 29)
    assert np.abs(clip.velocities - np.asarray(record["velocities"])[3:]).max() <= 0.005 + 1e-9
    assert np.abs(clip.positions - np.asarray(record["positions"])[3:]).max() <= 0.005 + 1e-9
    assert np.array_equal(clip.visual, ids[3:]) and plain.parse(plain.completion(record, ids), 29).velocities is None
    # the two formats do not read each other's sequences
    with pytest.raises(LanguageError):
        plain.parse(completion, 29)
    roles = token_roles(completion, lang)
    first_frame = completion.index("<frame>")
    vx = [(t, r) for t, r in zip(completion[first_frame:], roles[first_frame:]) if r.startswith("position vx ")]
    value = sum(int(t[1:-1]) * float(r.split()[-1]) for t, r in vx[:4])  # the first ball's |vx|, from its places
    assert value == pytest.approx(abs(record["velocities"][3][0][0]), abs=0.005 + 1e-9)
    with pytest.raises(LanguageError, match="symbolic"):
        PhysicsLanguage(CODEBOOK, K, symbolic=False, frame_velocity=True)


def written_and_read(lang, scene):
    """A simulated clip of `scene` (4th clip) written in `lang` and parsed back: (record, visual ids,
    completion tokens, parsed clip, true positions); the completion fits the grammar's budget."""
    record, ids = record_of(scene, 3), visual_ids(32)
    completion = lang.completion(record, ids)
    assert len(completion) + 1 <= lang.max_completion_length(29, len(record["radii"]))
    return record, ids, completion, lang.parse(completion, 29), np.asarray(record["positions"])


@pytest.mark.parametrize("scene", ["uniform", "collision", "parabola"])
def test_frame_displacement_makes_each_position_the_last_plus_its_step(scene):
    lang = PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True)
    record, ids, completion, clip, truth = written_and_read(lang, scene)
    assert np.abs(clip.positions - truth[3:]).max() <= 0.0005 + 1e-9  # rounded, no drift
    # the written step takes the last written position (the <state> block's, then each frame's) to
    # this one exactly: on the grid of 0.001 the addition has no remainder
    last = np.array([[o["x"], o["y"]] for o in clip.objects])
    written = np.concatenate([last[None], clip.positions])
    assert np.array_equal(np.rint(np.diff(written, axis=0) * 1000), np.rint(clip.velocities * FRAME_DT * 1000))
    assert np.abs(clip.velocities - np.diff(truth, axis=0)[2:] / FRAME_DT).max() <= 0.01 + 1e-9
    assert np.array_equal(clip.visual, ids[3:])
    roles = token_roles(completion, lang)
    first_frame = completion.index("<frame>")
    dx = [(t, r) for t, r in zip(completion[first_frame:], roles[first_frame:]) if r.startswith("position dx ")]
    value = sum(int(t[1:-1]) * float(r.split()[-1]) for t, r in dx[:5])  # the first ball's |dx|, from its places
    assert value == pytest.approx(abs(truth[3][0][0] - truth[2][0][0]), abs=0.001 + 1e-9)
    with pytest.raises(LanguageError):  # the plain format does not read it
        PhysicsLanguage(CODEBOOK, K, decimals=3).parse(completion, 29)
    # a position is the last one plus the step: a wrong digit is malformed (constrained decoding
    # can only write the right one), unless the model is let to write positions itself
    at = next(i for i, r in enumerate(roles) if r == "position x 0.01")
    tampered = completion[:at] + [f"<{(int(completion[at][1:-1]) + 1) % 10}>"] + completion[at + 1:]
    with pytest.raises(LanguageError, match=f"token {at} "):
        lang.parse(tampered, 29)
    free = PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True, derived_positions=False)
    assert free.parse(tampered, 29).positions[0, 0, 0] != clip.positions[0, 0, 0]
    with pytest.raises(LanguageError, match="derived_positions needs"):
        PhysicsLanguage(CODEBOOK, K, derived_positions=True)


@pytest.mark.parametrize("scene", ["uniform", "collision", "parabola"])
def test_state_steps_write_the_state_velocity_as_the_first_step(scene):
    lang = PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True, state_steps=True)
    record = record_of(scene, 3)
    completion = lang.completion(record, visual_ids(32))
    clip = lang.parse(completion, 29)
    v = np.asarray(record["velocities"])[2]
    assert np.abs([[o["vx"], o["vy"]] for o in clip.objects] - v).max() <= 0.005 + 1e-9  # units/s again
    state = completion[:completion.index("</state>")]
    first_vx = state[state.index("<vx>") + 1:state.index("<vy>")]
    assert first_vx == lang.number(v[0][0] * FRAME_DT)  # written as a step: 3.27 units/s -> 0.327
    if scene == "uniform":  # the first step is the block's, to the last digit or one off
        assert abs(clip.velocities[0, 0, 0] - v[0][0]) <= 0.01 + 0.005 + 1e-9
    with pytest.raises(LanguageError, match="state_steps needs"):
        PhysicsLanguage(CODEBOOK, K, state_steps=True)
    with pytest.raises(LanguageError, match="choose one"):
        PhysicsLanguage(CODEBOOK, K, frame_velocity=True, frame_displacement=True)
    with pytest.raises(LanguageError, match="symbolic"):
        PhysicsLanguage(CODEBOOK, K, symbolic=False, frame_displacement=True)


@pytest.mark.parametrize("scene", ["uniform", "collision", "parabola"])
def test_frame_acceleration_writes_what_changes_the_motion(scene):
    lang = PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True)
    record, ids, completion, clip, truth = written_and_read(lang, scene)
    # steps are the rounded true ones, summed from the block's position: the drift stays below
    # half a grid unit per frame
    assert np.abs(clip.positions - truth[3:]).max() <= 0.0005 * 30 + 1e-9
    assert np.abs(clip.velocities * FRAME_DT - np.diff(truth, axis=0)[2:]).max() <= 0.0005 + 1e-9
    block_step = np.array([[o["vx"], o["vy"]] for o in clip.objects]) * FRAME_DT
    assert np.abs(block_step - (truth[2] - truth[1])).max() <= 0.0005 + 1e-9  # the step into the last frame
    roles = token_roles(completion, lang)
    changes = np.array([int(t[1:-1]) * float(r.split()[-1]) for t, r in zip(completion, roles)
                        if r.startswith(("position ax ", "position ay ")) and not r.endswith("sign")])
    if scene == "uniform":  # nothing changes the motion: every change is zero
        assert not changes.any()
    if scene == "parabola":  # gravity: the vertical step shrinks by g dt^2 = 0.025 every frame
        ay = [i for i, r in enumerate(roles) if r == "position ay sign"]
        assert len(ay) == 29 and clip.velocities[1:, 0, 1] - clip.velocities[:-1, 0, 1] == pytest.approx(-0.25, abs=0.011)
    # a wrong digit of a change moves every later position: the grammar writes them, so any
    # tampering with a position is malformed
    at = next(i for i, r in enumerate(roles) if r == "position x 0.01")
    tampered = completion[:at] + [f"<{(int(completion[at][1:-1]) + 1) % 10}>"] + completion[at + 1:]
    with pytest.raises(LanguageError, match=f"token {at} "):
        lang.parse(tampered, 29)
    with pytest.raises(LanguageError, match="frame_acceleration needs"):
        PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True, frame_acceleration=True)


ACCELERATION = dict(decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True)


def numbers_at(completion, at, count):
    """`count` numbers (5 little-endian digits, a sign before any) from index `at`, world units, and
    the index after them."""
    values = []
    for _ in range(count):
        sign = {"<->": -1, "<+>": 1}.get(completion[at], 0)
        at += sign != 0
        values.append((sign or 1) * sum(int(t[1:-1]) * 10**k for k, t in enumerate(completion[at:at + 5])) / 1000)
        at += 5
    return values, at


def gap_values(completion):
    """The number after each <gap>, in world units."""
    return np.array([numbers_at(completion, i + 1, 1)[0][0] for i, t in enumerate(completion) if t == "<gap>"])


@pytest.mark.parametrize("index", [0, 3, 7])
def test_contact_gap_and_whole_jumps_make_a_collision_one_decision(index):
    lang = PhysicsLanguage(CODEBOOK, K, contact_gap=True, whole_jumps=True, **ACCELERATION)
    split = PhysicsLanguage(CODEBOOK, K, contact_gap=True, **ACCELERATION)
    record, ids = record_of("collision", index), visual_ids(32)
    completion = lang.completion(record, ids)
    assert len(completion) + 1 <= lang.max_completion_length(29, 2)
    clip, truth = lang.parse(completion, 29), np.asarray(record["positions"])
    gaps = gap_values(completion)
    assert len(gaps) == 29
    # the gap the grammar writes: the balls' edges after one more frame at the last steps
    steps = np.r_[[[[o["vx"], o["vy"]] for o in clip.objects]], clip.velocities[:-1]] * FRAME_DT
    last = np.r_[[[[o["x"], o["y"]] for o in clip.objects]], clip.positions[:-1]]
    ahead = np.linalg.norm((last + steps)[:, 1] - (last + steps)[:, 0], axis=1) - sum(o["r"] for o in clip.objects)
    np.testing.assert_allclose(gaps, ahead, atol=0.0011)
    # one negative gap, and the collision's whole change of step in that frame and no other
    (hit,) = np.flatnonzero(gaps < 0)
    changed = np.flatnonzero(np.abs(np.diff(steps, axis=0, append=clip.velocities[-1:] * FRAME_DT)).max(axis=(1, 2)) > 0.002)
    assert changed.tolist() == [hit]
    # the same total change as the simulator's, which splits it over the frames the contact falls between
    split_clip = split.parse(split.completion(record, ids), 29)
    split_changed = np.flatnonzero(np.abs(np.diff(split_clip.velocities, axis=0)).max(axis=(1, 2)) > 0.02) + 1
    assert len(split_changed) in (1, 2) and hit in split_changed
    np.testing.assert_allclose(clip.velocities[-1], split_clip.velocities[-1], atol=1e-6)
    # before the jump the positions are the simulator's; after it, off by at most the jump's step
    assert np.abs(clip.positions[:hit] - truth[3:3 + hit]).max() <= 0.0005 * 30 + 1e-9
    jump = np.abs(clip.velocities[hit] - clip.velocities[hit - 1]).max() * FRAME_DT
    assert np.abs(clip.positions - truth[3:]).max() <= jump + 0.016
    # the grammar writes the gap: any other digit is malformed
    at = completion.index("<gap>") + 2
    tampered = completion[:at] + [f"<{(int(completion[at][1:-1]) + 1) % 10}>"] + completion[at + 1:]
    with pytest.raises(LanguageError, match=f"token {at} "):
        lang.parse(tampered, 29)


@pytest.mark.parametrize("scene", ["collision", "parabola", "uniform"])
def test_signed_changes_put_the_decision_first(scene):
    lang = PhysicsLanguage(CODEBOOK, K, contact_gap=True, whole_jumps=True, signed_changes=True, **ACCELERATION)
    unsigned = PhysicsLanguage(CODEBOOK, K, contact_gap=True, whole_jumps=True, **ACCELERATION)
    record, ids = record_of(scene, 3), visual_ids(32)
    completion, plain = lang.completion(record, ids), unsigned.completion(record, ids)
    clip = lang.parse(completion, 29)
    np.testing.assert_array_equal(clip.positions, unsigned.parse(plain, 29).positions)  # the same trajectory
    firsts = []  # the first token of each change (ax, then ay, after every <p>)
    for i in [i for i, t in enumerate(completion) if t == "<p>"]:
        ay = i + 1 + (6 if completion[i + 1] in ("<+>", "<->") else 5)
        firsts += [completion[i + 1], completion[ay]]
    # <+> or <-> when the motion changes, a digit only for no change
    assert len(firsts) == 29 * 2 * len(record["radii"])
    changes = np.diff(np.r_[[[[o["vx"], o["vy"]] for o in clip.objects]], clip.velocities], axis=0) * FRAME_DT
    signs = np.array([{"<+>": 1, "<->": -1}.get(t, 0) for t in firsts]).reshape(changes.shape)
    np.testing.assert_array_equal(signs, np.sign(np.round(changes, 3)))
    if scene == "collision":
        assert (signs[:, 1, 0] == 1).sum() == 1  # the blue ball's jump, to the right, once
    # <+> only before a change; anywhere else it is malformed
    at = completion.index("<p>") + 1 + 10  # the first frame's x position
    with pytest.raises(LanguageError, match=f"token {at} "):
        lang.parse(completion[:at] + ["<+>"] + completion[at:], 29)
    # a change without its sign is zero: its first digit that is not <0> is malformed
    if "<+>" in completion:
        plus = completion.index("<+>")
        unsigned = completion[:plus] + completion[plus + 1:]
        first = plus + next(k for k, t in enumerate(unsigned[plus:]) if t != "<0>")
        with pytest.raises(LanguageError, match=f"token {first} "):
            lang.parse(unsigned, 29)
        # and one that begins with <0> stays zero to its last digit
        zero_first = unsigned[:plus] + ["<0>"] + unsigned[plus + 1:]
        with pytest.raises(LanguageError, match=f"token {plus + 1} {unsigned[plus + 1]!r}: expected <0> \\("):
            lang.parse(zero_first, 29)


def test_contact_gap_is_written_for_several_balls_only_and_keeps_every_other_id():
    lang, plain = PhysicsLanguage(CODEBOOK, K, contact_gap=True, **ACCELERATION), PhysicsLanguage(CODEBOOK, K, **ACCELERATION)
    assert lang.vocab[:-1] == plain.vocab and lang.vocab[-1] == "<gap>"
    record, ids = record_of("uniform", 3), visual_ids(32)
    assert lang.completion(record, ids) == plain.completion(record, ids)  # one ball: no gap
    assert PhysicsLanguage(CODEBOOK, K, contact_gap=True, signed_changes=True, **ACCELERATION).vocab[-2:] == ["<gap>", "<+>"]
    for key in ("contact_gap", "whole_jumps", "signed_changes"):
        with pytest.raises(LanguageError, match=f"{key} needs frame_acceleration"):
            PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True, state_steps=True, **{key: True})


def rel_values(completion):
    """After each <rel>: the numbers that follow (x, y per ball), world units, [frames with <rel>, N, 2]."""
    out = [numbers_at(completion, i + 1, 4)[0] for i, t in enumerate(completion) if t == "<rel>"]
    return np.array(out).reshape(-1, 2, 2)


@pytest.mark.parametrize("index", [0, 3, 7])
def test_relative_steps_say_what_an_elastic_collision_reverses(index):
    lang = PhysicsLanguage(CODEBOOK, K, contact_gap=True, whole_jumps=True, signed_changes=True, relative_steps=True,
                           **ACCELERATION)
    without = PhysicsLanguage(CODEBOOK, K, contact_gap=True, whole_jumps=True, signed_changes=True, **ACCELERATION)
    record, ids = record_of("collision", index), visual_ids(32)
    completion = lang.completion(record, ids)
    assert len(completion) + 1 <= lang.max_completion_length(29, 2)
    clip = lang.parse(completion, 29)
    np.testing.assert_array_equal(clip.positions, without.parse(without.completion(record, ids), 29).positions)
    # written in the frames whose gap is negative, only there: here the one frame of the collision
    gaps, rel = gap_values(completion), rel_values(completion)
    assert len(rel) == (gaps < 0).sum() == 1
    (hit,) = np.flatnonzero(gaps < 0)
    steps = np.r_[[[[o["vx"], o["vy"]] for o in clip.objects]], clip.velocities] * FRAME_DT
    change = steps[hit + 1] - steps[hit]
    # the simulator's change of step is -2 times it (to the rounding of the written steps), momentum kept
    np.testing.assert_allclose(change, -2 * rel[0], atol=0.0035)
    radii = np.array([o["r"] for o in clip.objects])
    assert abs(radii**2 @ rel[0, :, 0]) < 0.002 * radii.max() ** 2
    assert np.abs(rel[0, :, 1]).max() == 0  # head-on: along x
    # the grammar writes it: any other digit is malformed
    at = completion.index("<rel>") + 1
    at += completion[at] == "<->"
    tampered = completion[:at] + [f"<{(int(completion[at][1:-1]) + 1) % 10}>"] + completion[at + 1:]
    with pytest.raises(LanguageError, match=f"token {at} "):
        lang.parse(tampered, 29)
    roles = token_roles(completion, lang)
    rel_at = completion.index("<rel>")
    span = roles[rel_at + 1:completion.index("<p>", rel_at)]
    assert set(span) == {"rel"} and len(span) - completion[rel_at:rel_at + 1 + len(span)].count("<->") == 20  # 4 numbers of 5 digits
    assert lang.vocab[-1] == "<rel>" and lang.vocab[:-1] == without.vocab
    with pytest.raises(LanguageError, match="relative_steps needs contact_gap"):
        PhysicsLanguage(CODEBOOK, K, relative_steps=True, **ACCELERATION)


def written_changes(completion, frame):
    """The x numbers each ball's <p> writes in the `frame`-th generated frame (world units)."""
    starts = [i for i, t in enumerate(completion) if t == "<frame>"]
    end = starts[frame + 1] if frame + 1 < len(starts) else len(completion)
    return np.array([numbers_at(completion, i + 1, 1)[0][0] for i in range(starts[frame], end) if completion[i] == "<p>"])


def velocities_around(lang, completion, frame, numbers):
    """The balls' velocities before and after the `frame`-th generated frame when each ball's <p>
    there writes its pair of `numbers` (the grammar writes the positions)."""
    first = completion.index("<p>", [i for i, t in enumerate(completion) if t == "<frame>"][frame])
    parser = SequenceParser(lang, 29)
    for position, token in enumerate(completion[:first]):
        parser.feed(token, position)
    for pair in numbers:
        parser.feed("<p>")
        for value in pair:
            for token in lang.number(value, plus=True):
                parser.feed(token)
        while parser.allowed() != lang.expect["one"]["<p>"] and parser.allowed() != lang.expect["visual"]:
            parser.feed(next(iter(parser.allowed())))
    return np.array(parser.velocities[-2]), np.array(parser.velocities[-1])


@pytest.mark.parametrize("index", [0, 3, 7])
def test_relative_jumps_write_the_reversed_relative_step_and_keep_the_trajectory(index):
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, relative_steps=True, **ACCELERATION)
    lang, changes = PhysicsLanguage(CODEBOOK, K, relative_jumps=True, **options), PhysicsLanguage(CODEBOOK, K, **options)
    record, ids = record_of("collision", index), visual_ids(32)
    completion, plain = lang.completion(record, ids), changes.completion(record, ids)
    assert lang.vocab == changes.vocab and len(completion) + 1 <= lang.max_completion_length(29, 2)
    # the same trajectory, read back through the grammar's sums
    clip, plain_clip = lang.parse(completion, 29), changes.parse(plain, 29)
    np.testing.assert_array_equal(clip.positions, plain_clip.positions)
    np.testing.assert_array_equal(clip.velocities, plain_clip.velocities)
    (hit,) = np.flatnonzero(gap_values(completion) < 0)
    rel = rel_values(completion)[0]
    # at the collision each ball writes about -rel (its relative motion reversed), not the -2 rel change
    np.testing.assert_allclose(written_changes(completion, hit), -rel[:, 0], atol=0.0025)
    np.testing.assert_allclose(written_changes(plain, hit), -2 * rel[:, 0], atol=0.0035)
    # every other frame is written as without it
    for frame in (hit - 1, hit + 1):
        np.testing.assert_array_equal(written_changes(completion, frame), written_changes(plain, frame))
    # a miss: writing rel itself leaves the balls' steps as they were
    before, after = velocities_around(lang, completion, hit, rel)
    np.testing.assert_allclose(after, before, atol=1e-9)
    with pytest.raises(LanguageError, match="relative_jumps needs relative_steps"):
        PhysicsLanguage(CODEBOOK, K, relative_jumps=True, contact_gap=True, **ACCELERATION)


@pytest.mark.parametrize("index", [0, 3, 7])
def test_restitution_jumps_write_minus_one_for_every_elastic_collision_and_keep_the_trajectory(index):
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, relative_steps=True, **ACCELERATION)
    lang, copies = PhysicsLanguage(CODEBOOK, K, restitution_jumps=True, **options), PhysicsLanguage(CODEBOOK, K, relative_jumps=True, **options)
    record, ids = record_of("collision", index), visual_ids(32)
    completion, copied = lang.completion(record, ids), copies.completion(record, ids)
    assert lang.vocab == copies.vocab and len(completion) + 1 <= lang.max_completion_length(29, 2)
    # the trajectory read back is the truth's to the rounding: the grammar's -1 rel against the grid's new step
    clip, copied_clip = lang.parse(completion, 29), copies.parse(copied, 29)
    np.testing.assert_allclose(clip.positions, copied_clip.positions, atol=0.0025)
    (hit,) = np.flatnonzero(gap_values(completion) < 0)
    # whatever the speeds and sizes, each ball writes the same number: -1, its relative motion reversed
    np.testing.assert_array_equal(written_changes(completion, hit), [-1.0, -1.0])
    assert written_changes(copied, hit)[0] != -1.0
    # y's relative step is zero in a head-on collision: its change is written as it is (none)
    starts = [i for i, t in enumerate(completion) if t == "<frame>"]
    first = completion.index("<p>", starts[hit])
    assert numbers_at(completion, first + 1, 2)[0][1] == 0.0
    np.testing.assert_array_equal(written_changes(completion, hit - 1), written_changes(copied, hit - 1))
    # the next frame brings the step back to the grid's truth: a correction of a grid unit or two at most
    np.testing.assert_allclose(written_changes(completion, hit + 1), written_changes(copied, hit + 1), atol=0.0025)

    def velocities_after(factor):
        """The steps the grammar makes of `factor` written by both balls at the collision."""
        return velocities_around(lang, completion, hit, [(factor, 0.0)] * 2)

    before, after = velocities_after(1.0)  # a miss: the steps as they were
    np.testing.assert_allclose(after, before, atol=1e-9)
    radii = np.array([o["r"] for o in clip.objects])
    before, after = velocities_after(0.0)  # the balls stick: both move at the centre of mass's step
    centre = radii**2 @ before[:, 0] / (radii**2).sum()
    np.testing.assert_allclose(after[:, 0], centre, atol=0.011)  # a grid unit a frame is 0.01 units/s
    before, after = velocities_after(-1.0)  # elastic: momentum and kinetic energy kept
    assert abs(radii**2 @ (after[:, 0] - before[:, 0])) < 0.02 * radii.max() ** 2
    assert radii**2 @ after[:, 0] ** 2 == pytest.approx(radii**2 @ before[:, 0] ** 2, rel=0.01)
    with pytest.raises(LanguageError, match="restitution_jumps needs relative_steps"):
        PhysicsLanguage(CODEBOOK, K, restitution_jumps=True, contact_gap=True, **ACCELERATION)
    with pytest.raises(LanguageError, match="choose one"):
        PhysicsLanguage(CODEBOOK, K, restitution_jumps=True, relative_jumps=True, **options)


@pytest.mark.parametrize("index", [0, 3])
def test_normal_rel_writes_one_number_a_ball_so_a_tilted_line_of_centres_writes_no_y_components(index):
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, relative_steps=True,
                   restitution_jumps=True, **ACCELERATION)
    lang, split = PhysicsLanguage(CODEBOOK, K, normal_rel=True, **options), PhysicsLanguage(CODEBOOK, K, **options)
    record, ids = record_of("collision", index), visual_ids(32)
    completion, components = lang.completion(record, ids), split.completion(record, ids)
    # head-on: the same trajectory, the <rel> block without its y zeros (one number a ball, not two)
    np.testing.assert_array_equal(lang.parse(completion, 29).positions, split.parse(components, 29).positions)
    assert len(components) - len(completion) == 2 * 5 and lang.vocab == split.vocab

    def rel_block(language, rec):
        tokens = language.completion(rec, ids)
        at = tokens.index("<rel>")
        return tokens[at:tokens.index("<p>", at)], tokens
    # the second ball a thousandth higher, drifting up a thousandth a frame: the line of centres tilts
    tilted = {**record, "positions": (np.asarray(record["positions"]) + [[0, 0], [0, 0.001]]
                                      + np.arange(32)[:, None, None] * [[0, 0], [0, 0.001]]).tolist(),
              "velocities": (np.asarray(record["velocities"]) + [[0, 0], [0, 0.01]]).tolist()}
    def rel_numbers(language, rec, count):
        block = rel_block(language, rec)[0]
        return np.array(numbers_at(block, 1, count)[0])
    # along the line: two numbers as head-on, within a rounding unit; as x and y, y components appear
    np.testing.assert_allclose(rel_numbers(lang, tilted, 2), rel_numbers(lang, record, 2), atol=0.0011)
    assert np.all(rel_numbers(split, record, 4)[1::2] == 0) and np.any(rel_numbers(split, tilted, 4)[1::2] != 0)
    # and each ball still writes -1 for the whole of its relative step, its y change beyond it after
    tokens = rel_block(lang, tilted)[1]
    hit = int(np.flatnonzero(gap_values(tokens) < 0)[0])
    np.testing.assert_array_equal(written_changes(tokens, hit), [-1.0, -1.0])
    clip = lang.parse(tokens, 29)
    radii = np.array([o["r"] for o in clip.objects])
    before, after = np.asarray(clip.velocities[hit - 1]), np.asarray(clip.velocities[hit])
    assert abs(radii**2 @ (after[:, 0] - before[:, 0])) < 0.02 * radii.max() ** 2  # momentum along x kept
    with pytest.raises(LanguageError, match="normal_rel needs restitution_jumps"):
        PhysicsLanguage(CODEBOOK, K, normal_rel=True, **{**options, "restitution_jumps": False})


@pytest.mark.parametrize("index", [0, 3, 7])
def test_contact_timing_keeps_the_positions_after_a_collision_on_the_simulators(index):
    """Without contact_timing the collision frame takes the new step whole, and every later position
    is off the simulator's by the part of that frame before the contact times the change of step
    (0.05-0.75 units); with it, that frame moves at the old step up to the end of the physics step
    of the contact: the positions read back stay within 0.015 units of the simulator's (its contact
    resolution), from the same tokens but the positions'."""
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, relative_steps=True,
                   restitution_jumps=True, normal_rel=True, **ACCELERATION)
    timed, whole = PhysicsLanguage(CODEBOOK, K, contact_timing=True, **options), PhysicsLanguage(CODEBOOK, K, **options)
    record, ids = record_of("collision", index), visual_ids(32)
    truth = np.asarray(record["positions"])[3:]
    completion, plain = timed.completion(record, ids), whole.completion(record, ids)
    assert timed.vocab == whole.vocab and len(completion) == len(plain)
    (hit,) = np.flatnonzero(gap_values(completion) < 0)[:1]
    np.testing.assert_array_equal(written_changes(completion, hit), written_changes(plain, hit))  # same decisions
    clip, plain_clip = timed.parse(completion, 29), whole.parse(plain, 29)
    after = slice(hit, None)
    assert np.abs(clip.positions[after] - truth[after]).max() < 0.015
    assert np.abs(plain_clip.positions[after] - truth[after]).max() > 0.03
    np.testing.assert_array_equal(clip.velocities, plain_clip.velocities)  # the steps are the same
    with pytest.raises(LanguageError, match="contact_timing needs restitution_jumps"):
        PhysicsLanguage(CODEBOOK, K, contact_timing=True, **{**options, "restitution_jumps": False, "normal_rel": False})


@pytest.mark.parametrize("index", [0, 3])
def test_relative_per_ball_writes_each_balls_relative_step_just_before_its_own_numbers(index):
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, relative_steps=True,
                   relative_jumps=True, **ACCELERATION)
    lang, block = PhysicsLanguage(CODEBOOK, K, relative_per_ball=True, **options), PhysicsLanguage(CODEBOOK, K, **options)
    record, ids = record_of("collision", index), visual_ids(32)
    completion, blocked = lang.completion(record, ids), block.completion(record, ids)
    # the same tokens in other places, and the same trajectory read back
    assert len(completion) == len(blocked) and sorted(completion) == sorted(blocked) and lang.vocab == block.vocab
    clip, block_clip = lang.parse(completion, 29), block.parse(blocked, 29)
    np.testing.assert_array_equal(clip.positions, block_clip.positions)
    np.testing.assert_array_equal(clip.velocities, block_clip.velocities)
    # in the collision frame <rel> stands alone; each <p> begins with its ball's relative step, then about -rel
    rel = rel_values(blocked)[0]
    at = completion.index("<rel>")
    assert completion[at + 1] == "<p>"
    roles = token_roles(completion, lang)
    for ball, p in enumerate([i for i, t in enumerate(completion) if t == "<p>" and i > at][:2]):
        (rel_x, rel_y), after = numbers_at(completion, p + 1, 2)
        np.testing.assert_allclose([rel_x, rel_y], rel[ball], atol=1e-9)
        assert set(roles[p + 1:after]) == {"rel"} and roles[after].startswith("position ax")
        (written_x,), _ = numbers_at(completion, after, 1)
        assert written_x == pytest.approx(-rel[ball, 0], abs=0.0025)
        # the grammar writes it: another digit there is malformed
        digit = p + 1 + (completion[p + 1] == "<->")
        tampered = completion[:digit] + [f"<{(int(completion[digit][1:-1]) + 1) % 10}>"] + completion[digit + 1:]
        with pytest.raises(LanguageError, match=f"token {digit} "):
            lang.parse(tampered, 29)
    assert roles.count("rel") == token_roles(blocked, block).count("rel")
    with pytest.raises(LanguageError, match="relative_per_ball needs relative_steps"):
        PhysicsLanguage(CODEBOOK, K, relative_per_ball=True, contact_gap=True, **ACCELERATION)


@pytest.mark.parametrize("scene", ["uniform", "collision"])
def test_state_block_is_read_alone_and_a_broken_one_is_none(scene):
    """read_state_block: the balls of a <state> block as the full parse reads them, whatever follows
    it; None for a block cut short or broken. max_state_length bounds the block."""
    lang = PhysicsLanguage(CODEBOOK, K, decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True)
    record = record_of(scene, 2)
    completion = lang.completion(record, visual_ids(32))
    end = completion.index("</state>") + 1
    objects = read_state_block(lang, completion[:end])
    assert objects == lang.parse(completion, 29).objects == read_state_block(lang, completion)
    assert len(objects) == len(record["colors"]) and end <= lang.max_state_length(len(record["colors"]))
    assert abs(objects[0]["x"] - record["positions"][2][0][0]) <= 0.0005 + 1e-9
    assert read_state_block(lang, completion[:end - 1]) is None  # unfinished
    assert read_state_block(lang, ["<frame>"] + completion) is None  # broken


@pytest.mark.parametrize("scene", ["uniform", "collision"])
def test_state_big_endian_turns_the_blocks_numbers_round_and_nothing_else(scene):
    """state_big_endian: each <state>-block number is the little-endian one's digits reversed (most significant
    first, the same width, the sign first), the frames are the same tokens, and the clip reads back the same."""
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, **ACCELERATION)
    big, little = PhysicsLanguage(CODEBOOK, K, state_big_endian=True, **options), PhysicsLanguage(CODEBOOK, K, **options)
    record, ids = record_of(scene), visual_ids(32)
    completion, plain = big.completion(record, ids), little.completion(record, ids)
    end = completion.index("</state>")
    assert big.vocab == little.vocab and completion[end:] == plain[end:]
    assert completion[:end] != plain[:end]
    for i, token in enumerate(plain[:end]):
        if token in FIELDS:
            j = i + 1 + (plain[i + 1] == "<->")
            width = 2 + little.decimals
            assert completion[i + 1:j] == plain[i + 1:j] and completion[j:j + width] == plain[j:j + width][::-1]
    clip, plain_clip = big.parse(completion, 29), little.parse(plain, 29)
    assert clip.objects == plain_clip.objects
    np.testing.assert_array_equal(clip.positions, plain_clip.positions)
    assert read_state_block(big, completion) == read_state_block(little, plain)
    with pytest.raises(LanguageError):
        big.parse(plain, 29)  # a little-endian block read the other way: the frames' positions, summed from it, differ
    with pytest.raises(LanguageError, match="state_big_endian"):
        PhysicsLanguage(CODEBOOK, K, state_big_endian=True, little_endian=False)


def test_keypoint_tokens_write_the_finest_tokens_of_a_frame_as_their_own():
    """keypoint_tokens: a frame's `fine_tokens` finest ids (last in LM order) are written <k..>, the coarse ones
    <v..> as before; the ids read back the same; a <v> token where a keypoint belongs is refused, and the
    vocabulary only grows at its end (earlier checkpoints' ids stay)."""
    options = dict(contact_gap=True, whole_jumps=True, signed_changes=True, **ACCELERATION)
    fine = 3
    lang, plain = PhysicsLanguage(CODEBOOK, K, keypoint_tokens=True, fine_tokens=fine, **options), \
        PhysicsLanguage(CODEBOOK, K, **options)
    assert lang.vocab[:len(plain.vocab)] == plain.vocab and len(lang.vocab) == len(plain.vocab) + CODEBOOK
    record, ids = record_of("collision"), visual_ids(32)
    assert lang.frame_tokens(ids[0]) == [f"<v{i}>" for i in ids[0][::-1][:K - fine]] + \
        [f"<k{i}>" for i in ids[0][:fine][::-1]]
    completion = lang.completion(record, ids)
    clip = lang.parse(completion, 29)
    np.testing.assert_array_equal(clip.visual, ids[3:])
    np.testing.assert_array_equal(clip.positions, plain.parse(plain.completion(record, ids), 29).positions)
    last_frame = len(completion) - K  # the last frame's visual tokens close the completion
    assert completion[last_frame + K - 1].startswith("<k")
    broken = completion[:last_frame + K - 1] + [f"<v{ids[-1][0]}>"] + completion[last_frame + K:]
    with pytest.raises(LanguageError):
        lang.parse(broken, 29)
    assert token_roles(completion, lang)[last_frame:last_frame + K] == [f"visual {k}" for k in range(K)]
    assert lang.is_frame_slot(lang.slot_sets[K - 1]) and not plain.is_frame_slot(plain.expect["nothing"])
    with pytest.raises(LanguageError, match="fine_tokens"):
        PhysicsLanguage(CODEBOOK, K, keypoint_tokens=True, fine_tokens=K + 1)
