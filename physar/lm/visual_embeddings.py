"""Visual-token embeddings that start from what each DDT id means.

A DDT id is an FSQ code: one level per code dimension (physar/tokenizer/fsq.py). Learned from
scratch, the LM's 4096 visual embeddings each have to discover on their own that <v1234> and
<v1235> lie one level apart, and the model reads ball positions from the conditioning frames
badly (the first shipped LM: 0.18 world units median error in x, where an MLP probe reads the
same codes to 0.06). Here each visual row starts as a random projection of the id's levels written
as a thermometer code (level >= 1, level >= 2, ... per dimension, as +-1): ids a level apart start
close, and because the embeddings are tied to the output layer, the logit of an id starts as a sum
of per-dimension functions of its levels, so the model can prefer "level 5 here" without learning
each of the ids that have it. A small random part keeps every row distinct; all rows then train.

A keypoint tokenizer's fine ids are codes of another FSQ (a keypoint's x and y levels, [64, 64]) but
the same numbers as the coarse ids: written as <v> tokens, keypoint x levels 7 and 8 start 8 features
apart (two of the coarse [8, 8, 8, 8] digits change), 0 and 8 one apart. With `keypoint_tokens` the
LM writes them <k0> ... and their rows start from the fine FSQ's levels instead (physar/lm/model.py).
"""

from __future__ import annotations

import numpy as np
import torch


def fsq_digits(levels: list[int]) -> np.ndarray:
    """[prod(levels), d] the level (0..L-1) of each code dimension for every id, as FSQ numbers them."""
    from physar.tokenizer.fsq import FSQ

    fsq = FSQ(levels)
    return fsq.ids_to_digits(torch.arange(fsq.codebook_size)).numpy()


def thermometer_features(levels: list[int]) -> np.ndarray:
    """[prod(levels), sum(L - 1)] +-1 features: for each dimension and each threshold j in 1..L-1,
    whether the id's level is >= j. Two ids' feature distance grows with their level differences."""
    digits = fsq_digits(levels)
    columns = [digits[:, d:d + 1] >= np.arange(1, n)[None] for d, n in enumerate(levels)]
    return np.concatenate(columns, axis=1).astype(np.float32) * 2 - 1


def init_visual_embeddings(embedding, visual_token_ids: list[int], levels: list[int], seed: int = 0,
                           std: float = 0.02, structured_share: float = 0.8, keep_below: int = 0) -> None:
    """Overwrite the rows `visual_token_ids` (the LM ids of <v0>, <v1>, ..., in DDT id order) of the
    [vocab, hidden] embedding weight: each a random projection of its thermometer features, with
    `structured_share` of the row's variance, plus independent noise; every row has per-entry std
    `std` (the model's usual initializer range), so the visual rows are no larger than the rest.
    Rows with an id below `keep_below` (a base model's trained ones) are left as they are."""
    features = torch.from_numpy(thermometer_features(levels))
    if len(visual_token_ids) != len(features):
        raise ValueError(f"{len(visual_token_ids)} visual tokens for an FSQ codebook of {len(features)} codes")
    hidden = embedding.weight.shape[1]
    g = torch.Generator().manual_seed(seed)
    projection = torch.randn(features.shape[1], hidden, generator=g) / features.shape[1] ** 0.5
    noise = torch.randn(len(features), hidden, generator=g)
    rows = structured_share ** 0.5 * features @ projection + (1 - structured_share) ** 0.5 * noise
    ids = torch.tensor(visual_token_ids)
    new = ids >= keep_below
    with torch.no_grad():
        embedding.weight[ids[new]] = (std * rows[new]).to(embedding.weight.dtype)
