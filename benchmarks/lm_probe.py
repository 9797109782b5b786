"""What an LM knows of the scene before it writes it: a linear probe on its hidden state at each
<state>-block field's tag.

`benchmarks/lm_reading.py --per-ball` says what the LM writes (the correlation of its greedy block
with the truth). This says whether the field is in the LM's features at all: each clip's prompt is
followed by the simulator's own block (teacher forcing), and ridge regression, cross-validated over
clips, reads each ball's field from the hidden state (last and middle layer) at its tag, just before
the LM would write its digits. A field probed well and written badly is lost in the writing (e.g.
digits written least significant first: `state_big_endian`); a field probed badly is not in the features, and neither GRPO on
the reading nor a better writing order can bring it out.

A probe of 2 x hidden features needs a couple of hundred clips: on the 62 evaluation clips of a
scene (outputs/compare_v6) it finds little (sft_cpu_v11, ball 2's x: +0.50 there, +0.81 on 201). Any
simulated folder serves, the LM's training clips excepted (e.g. the RL prompt folders):

    python benchmarks/lm_probe.py --data data/collision_rl_prompts_2k --max-clips 600 \\
        --checkpoint checkpoints/sft_cpu_v11 runs/sft_v13_reading_more [--fields r x vx]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from physar.data.generate import load_metadata
from physar.language import FIELDS
from physar.lm.model import load_checkpoint
from physar.rl.config import STATE_FIELDS
from physar.rl.grpo import reading_of
from physar.tokenizer.codec import encode_clip, load_tokenizer
from physar.video import read_video

ALPHAS = np.logspace(0, 4, 9)


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    mean, std = x.mean(0), x.std(0) + 1e-6
    a = (x - mean) / std
    w = np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ (y - y.mean()))
    return mean, std, w, float(y.mean())


def ridge_predict(model, x: np.ndarray) -> np.ndarray:
    mean, std, w, bias = model
    return (x - mean) / std @ w + bias


def cross_validated(x: np.ndarray, y: np.ndarray, folds: int = 5) -> np.ndarray:
    """Each clip's prediction by a ridge fitted on the other folds (its alpha chosen on a quarter of those)."""
    out = np.zeros(len(y))
    fold = np.arange(len(y)) % folds
    for f in range(folds):
        train, test = fold != f, fold == f
        xt, yt = x[train], y[train]
        held = np.arange(len(yt)) % 4 == 0
        errors = [np.mean((ridge_predict(ridge_fit(xt[~held], yt[~held], a), xt[held]) - yt[held]) ** 2) for a in ALPHAS]
        out[test] = ridge_predict(ridge_fit(xt, yt, ALPHAS[int(np.argmin(errors))]), x[test])
    return out


@torch.no_grad()
def features(checkpoint: str, folders: list[Path], fields: list[str], max_clips: int | None = None):
    """{(scene, ball, field): ([clips, 2 * hidden] hidden states at the tag, [clips] the truth)}."""
    model, tok, lang, meta = load_checkpoint(checkpoint)
    model.eval()
    ddt = load_tokenizer(meta["tokenizer"])
    out: dict[tuple, tuple[list, list]] = {}
    for folder in folders:
        records = load_metadata(folder)
        if max_clips is not None and max_clips < len(records):
            records = [records[i] for i in np.linspace(0, len(records) - 1, max_clips).round().astype(int)]
        for record in tqdm(records, desc=f"probe {folder.name}", unit="clip"):
            cond = record["conditioning_frames"]
            prompt = lang.prompt(encode_clip(ddt, read_video(folder / record["video"])[:cond]), cond, record["scene"])
            block = lang.state_block(record, cond - 1)
            truth = reading_of(lang, record, cond - 1)
            ids = torch.tensor([tok.convert_tokens_to_ids(prompt + block)])
            hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
            layers = torch.cat([hidden[-1][0], hidden[len(hidden) // 2][0]], dim=-1).numpy()
            ball = -1
            for i, token in enumerate(block):
                ball += token == "<obj>"
                name = token[1:-1] if token in FIELDS else None
                if name in fields:
                    xs, ys = out.setdefault((record["scene"], ball, name), ([], []))
                    xs.append(layers[len(prompt) + i])
                    ys.append(truth[ball][STATE_FIELDS.index(name)])
    return {k: (np.array(x), np.array(y)) for k, (x, y) in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", type=Path, required=True,
                        help="simulated clip folders (not the LM's training clips), e.g. data/collision_rl_prompts_2k")
    parser.add_argument("--max-clips", type=int, default=None, help="per folder, an even spread of this many (default: all)")
    parser.add_argument("--checkpoint", nargs="+", required=True, help="LM checkpoints (or run folders) to probe")
    parser.add_argument("--fields", nargs="+", default=["r", "x", "vx"], choices=STATE_FIELDS,
                        help="the block's fields to probe, each ball's (default: r x vx)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("| checkpoint | scene | ball | field | n | probe correlation | probe mean error | truth std |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    for checkpoint in args.checkpoint:
        for (scene, ball, name), (x, y) in sorted(features(checkpoint, args.data, args.fields, args.max_clips).items()):
            if len(y) < 10 or y.std() < 1e-9:
                continue  # too few clips, or a field the scene never varies (a probe has nothing to find)
            predicted = cross_validated(x, y)
            print(f"| {checkpoint} | {scene} | {ball + 1} | {name} | {len(y)} | {np.corrcoef(predicted, y)[0, 1]:+.2f} | "
                  f"{np.abs(predicted - y).mean():.3f} | {y.std():.3f} |")


if __name__ == "__main__":
    main()
