"""Physics rewards: the simulator's own trajectory scores best, perturbed ones lower in proportion,
and the label-free reference recovers the true initial velocity from the conditioning frames."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import trajectories

from physar.rl.rewards import (GRAVITY, agreement_reward, collision_rewards, elastic_velocities, field_reward,
                               gravity_reward, reading_reward, reference_from_conditioning, velocity_reward)

DT = 0.1
COND = 3


def clip(scene, i=0):
    for _, traj, _ in trajectories(scene, "eval"):
        if i == 0:
            return traj
        i -= 1


@pytest.mark.parametrize("i", range(5))
def test_uniform_truth_scores_best_and_errors_cost_in_proportion(i):
    traj = clip("uniform", i)
    pos, v0 = traj.positions[COND - 1:], traj.velocities[COND - 1]
    assert velocity_reward(pos, v0, DT) > 0.999
    # a ball that drifts faster than it should: the bigger the drift, the lower the reward
    t = np.arange(len(pos))[:, None, None] * DT
    rewards = [velocity_reward(pos + t * np.array([dv, 0.0]), v0, DT) for dv in (0.05, 0.1, 0.2, 0.4)]
    assert all(a > b for a, b in zip(rewards, rewards[1:]))
    assert rewards[0] < 0.999 and rewards[-1] < 0.6


@pytest.mark.parametrize("i", range(5))
def test_parabola_truth_scores_best(i):
    traj = clip("parabola", i)
    pos, v0 = traj.positions[COND - 1:], traj.velocities[COND - 1]
    keep = pos[:, 0, 1] - traj.radii[0] > 0  # until it falls out of the world
    pos = pos[: int(np.argmin(keep)) or len(pos)]
    assert gravity_reward(pos, v0, DT) > 0.97  # pymunk integrates in 0.01 s Euler steps: vy is off by ~g*0.005
    # no gravity at all (a straight line) or half of it score lower
    t = np.arange(len(pos))[:, None] * DT
    straight = pos.copy()
    straight[:, 0, 1] = pos[0, 0, 1] + v0[0, 1] * t[:, 0]
    half = pos.copy()
    half[:, 0, 1] = pos[:, 0, 1] - GRAVITY / 4 * t[:, 0] ** 2
    assert gravity_reward(straight, v0, DT) < gravity_reward(half, v0, DT) < gravity_reward(pos, v0, DT)


@pytest.mark.parametrize("i", range(5))
def test_collision_truth_scores_best_and_wrong_masses_score_lower(i):
    traj = clip("collision", i)
    pos, v0x = traj.positions[COND - 1:], traj.velocities[COND - 1, :, 0]
    truth = collision_rewards(pos, traj.radii, v0x, DT)
    assert truth["collision"] > 0.97, truth
    # balls that pass through each other (no collision) break momentum only if masses differ,
    # but always the post-collision velocities
    t = np.arange(len(pos))[:, None] * DT
    ghost = pos.copy()
    ghost[..., 0] = pos[0, :, 0] + v0x[None] * t
    ghosted = collision_rewards(ghost, traj.radii, v0x, DT)
    assert ghosted["velocity"] < truth["velocity"]
    # and they overlap on the way: passing through must score below any collision on time, even one
    # whose jump is badly off (as sft_cpu_v4 writes them), or GRPO learns to drop the collision
    assert truth["contact"] > 0.95 and ghosted["contact"] < 0.2
    hit = COND - 1 + int(np.argmax(np.abs(np.diff(traj.velocities[COND - 1:, 0, 0])) > 0.5))  # first frame after it
    weak = pos.copy()
    k = hit - (COND - 1)
    weak[k:, :, 0] = pos[k - 1, :, 0] + 0.5 * (traj.velocities[hit:, :, 0] + v0x) * t[1:len(pos) - k + 1]  # half the jump
    weak_score = collision_rewards(weak, traj.radii, v0x, DT)
    assert weak_score["contact"] > 0.9
    assert ghosted["collision"] < weak_score["collision"] < truth["collision"]
    # nor may a ball leave upwards before the balls meet: x alone keeps its momentum and energy then
    flown = pos.copy()
    flown[1:, 1, 1] += 20.0 * np.arange(1, len(pos))  # the blue ball, 20 units a frame up (GRPO's find)
    assert collision_rewards(flown, traj.radii, traj.velocities[COND - 1], DT)["collision"] < weak_score["collision"] / 3


@pytest.mark.parametrize("i", range(5))
def test_collision_written_whole_in_one_frame_scores_as_the_truth(i):
    """whole_jumps (physar/language.py) turns the balls back up to a frame early; the collision
    reward must not hold that against the LM."""
    from physar.data.generate import clip_record
    from physar.language import PhysicsLanguage

    plan, traj, bucket = trajectories("collision", "eval")[i]
    record = clip_record(traj, plan, bucket, "v.mp4", "eval", 0, 64, COND)
    lang = PhysicsLanguage(64, 4, decimals=3, frame_displacement=True, state_steps=True, frame_acceleration=True,
                           contact_gap=True, whole_jumps=True)
    written = lang.parse(lang.completion(record, np.zeros((32, 4), int)), 29).positions
    pos, v0x = traj.positions[COND - 1:], traj.velocities[COND - 1, :, 0]
    truth = collision_rewards(pos, traj.radii, v0x, DT)["collision"]
    assert collision_rewards(np.r_[pos[:1], written], traj.radii, v0x, DT)["collision"] > truth - 0.03


def test_elastic_velocities_conserve_momentum_and_energy():
    rng = np.random.default_rng(0)
    for _ in range(50):
        v1, v2, m1, m2 = rng.uniform(-4, 4), rng.uniform(-4, 4), rng.uniform(0.1, 4), rng.uniform(0.1, 4)
        a, b = elastic_velocities(v1, v2, m1, m2)
        assert m1 * a + m2 * b == pytest.approx(m1 * v1 + m2 * v2)
        assert m1 * a * a + m2 * b * b == pytest.approx(m1 * v1 * v1 + m2 * v2 * v2)


@pytest.mark.parametrize("scene,gravity", [("uniform", 0.0), ("parabola", GRAVITY), ("collision", 0.0)])
def test_label_free_reference_recovers_the_initial_velocity(scene, gravity):
    for i in range(5):
        traj = clip(scene, i)
        v0 = reference_from_conditioning(traj.positions[:COND], DT, gravity)
        # exact without gravity; under gravity pymunk's 0.01 s Euler steps move vy by g * 0.005
        assert np.abs(v0 - traj.velocities[COND - 1]).max() < (1e-6 if gravity == 0 else 0.02)


def test_agreement_reward_prefers_frames_that_match_the_states():
    rng = np.random.default_rng(0)
    states = rng.uniform(1, 9, (29, 1, 2))
    found = np.ones((29, 1), bool)
    near = agreement_reward(states + 0.01, states, found, 64)
    far = agreement_reward(states + 0.3, states, found, 64)
    missing = found.copy()
    missing[::2] = False
    assert near > 0.9 > far and agreement_reward(states, states, missing, 64) == pytest.approx(missing.mean())


def test_reading_reward_is_one_for_the_reference_and_falls_with_each_error():
    """The <state> block's reading: the reference itself scores 1; an error in radius, position or
    velocity costs in proportion to its size; a ball not written scores nothing, an extra ball shrinks it."""
    reference = np.array([[0.6, 2.0, 5.0, 3.0, 0.0], [0.9, 7.0, 5.0, -1.0, 0.0]])
    assert reading_reward(reference, reference) == pytest.approx(1.0)
    for field in (0, 1, 2, 3, 4):
        scores = []
        for error in (0.02, 0.1, 0.5):
            written = reference.copy()
            written[0, field] += error
            scores.append(reading_reward(written, reference))
        assert 1.0 > scores[0] > scores[1] > scores[2] > 0.5  # one field of one ball: at most a sixth lost
    # half a unit off in position for both balls in x and y: the position score of each ball at 1/(1 + 7.07)
    shifted = reference + np.array([0, 0.5, 0.5, 0, 0])
    assert reading_reward(shifted, reference) == pytest.approx((2 + 1 / (1 + np.hypot(0.5, 0.5) / 0.1)) / 3)
    missing = reference.copy()
    missing[1] = np.nan
    assert reading_reward(missing, reference) == pytest.approx(0.5)
    assert reading_reward(reference, reference, extra=1) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="must both be"):
        reading_reward(reference[:1], reference)


def test_reading_weights_set_each_fields_share():
    """Weights move a field's share of the score: a velocity error costs twice as much with velocity
    weighted double (half the score against a third), and nothing at weight 0."""
    reference = np.array([[0.6, 2.0, 5.0, 3.0, 0.0]])
    fast = reference + np.array([0, 0, 0, 0.1, 0])  # velocity off by one scale: that field scores 1/2
    assert reading_reward(fast, reference) == pytest.approx(1 - 0.5 / 3)
    assert reading_reward(fast, reference, weights=(1, 1, 2)) == pytest.approx(1 - 0.5 / 2)
    assert reading_reward(fast, reference, weights=(1, 1, 0)) == pytest.approx(1.0)


def test_field_reward_scores_one_number_at_its_kinds_scale():
    scales = (0.2, 0.5, 1.0)  # radius, position, velocity
    assert field_reward(1.3, 1.3, 0, scales) == 1.0
    # one scale off halves it, whichever field: r (index 0), x and y (1, 2), vx and vy (3, 4)
    for field, scale in ((0, 0.2), (1, 0.5), (2, 0.5), (3, 1.0), (4, 1.0)):
        assert field_reward(2.0 + scale, 2.0, field, scales) == pytest.approx(0.5)
        assert field_reward(2.0 - 3 * scale, 2.0, field, scales) == pytest.approx(0.25)
    assert field_reward(float("nan"), 2.0, 3, scales) == 0.0  # not written
