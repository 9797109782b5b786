"""Length-bucketed batches in random order (physar/lm/batching.py)."""

from __future__ import annotations

import numpy as np

from physar.lm.batching import BucketedSampler, bucketed_order


def test_batches_share_a_bucket_come_in_random_order_and_cover_every_example():
    rng = np.random.default_rng(0)
    # two scenes of clearly different length, interleaved, plus a few odd ones
    lengths = [int(x) for x in np.where(rng.random(403) < 0.35, rng.integers(1500, 1600, 403), rng.integers(900, 990, 403))]
    order = bucketed_order(lengths, batch_size=8, bucket_width=128, seed=0)
    assert sorted(order) == list(range(len(lengths)))  # a permutation: nothing lost, nothing twice
    batches = [order[i:i + 8] for i in range(0, len(order), 8)]
    mixed = [b for b in batches if len({lengths[i] // 128 for i in b}) > 1]
    assert len(mixed) <= 3  # only the pooled leftovers of the (at most 3) buckets mix
    assert all(len(b) == 8 for b in batches[:-1])
    # not long runs of one scene as in a length-sorted mega-batch: the long batches are spread out
    long = np.array([lengths[b[0]] >= 1500 for b in batches[:-len(mixed) or None]])
    runs = np.diff(np.flatnonzero(np.diff(long.astype(int)) != 0))
    assert runs.max() < 12 and 0.2 < long.mean() < 0.5
    # repeatable from the seed; another epoch, another order
    assert order == bucketed_order(lengths, 8, 128, 0) and order != bucketed_order(lengths, 8, 128, 1)
    sampler = BucketedSampler(lengths, 8, 128, seed=0)
    assert list(sampler) == order and len(sampler) == len(lengths)
    sampler.set_epoch(1)
    assert list(sampler) == bucketed_order(lengths, 8, 128, 1)
