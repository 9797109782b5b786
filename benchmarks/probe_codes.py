"""Where is the tokenizer's precision lost: in the codes, or in the renderer?

An MLP probe learns the red ball's centre and radius from the FSQ codes of frames (the tokens,
nothing else) on some clips and is tested on others; beside it, the renderer's reconstruction
of the same test frames read by the evaluator's parser, and the parser on the original frames.
All against the simulator's state, in pixels, for balls wholly in view. If the probe is much
better than the renderer, the renderer is not using what the codes hold; if they are close, the
codes are the limit.

    python benchmarks/probe_codes.py --checkpoint checkpoints/ddt_cpu \\
        --data data/uniform_small_train data/parabola_small_train data/collision_small_train

Takes about 3 minutes on 2 cores (encoding 14,400 frames, 6,000 probe steps).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from physar.evaluation.parse import parse_frames
from physar.tokenizer.codec import decode_clip, load_tokenizer
from physar.tokenizer.frames import FrameBank
from simulators.world import RED, WORLD_SIZE, world_to_pixel


def to_pixels(positions: np.ndarray, radii: np.ndarray, size: int) -> np.ndarray:
    """World positions [N, 2] and radii [N] -> [N, 3] (column, row, radius) in pixels."""
    col, row = world_to_pixel(positions[:, 0], positions[:, 1], size)
    return np.c_[col, row, radii * (size - 1) / WORLD_SIZE]


def red_ball_targets(bank: FrameBank, size: int) -> tuple[np.ndarray, np.ndarray]:
    """[N, 3] (column, row, radius) of the red ball in pixels, and [N] whether it is wholly in view."""
    positions, radii = np.zeros((len(bank), 2)), np.zeros(len(bank))
    for i in range(len(bank)):
        p, r, colors = bank.states(i)
        k = [tuple(c) for c in colors.tolist()].index(RED)
        positions[i], radii[i] = p[k], r[k]
    out = to_pixels(positions, radii, size)
    inside = (out[:, :2] > out[:, 2:]).all(1) & (out[:, :2] < size - 1 - out[:, 2:]).all(1)
    return out, inside


def parsed_red(frames: np.ndarray) -> np.ndarray:
    """[N, 3] (column, row, radius) in pixels of the red ball as the evaluator's parser reads it."""
    parsed = parse_frames(frames, [RED])
    return to_pixels(parsed.positions[:, 0], parsed.radii[:, 0], frames.shape[1])


def errors(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    centre = np.linalg.norm(pred[:, :2] - truth[:, :2], axis=1)
    centre = centre[np.isfinite(centre)]
    radius = np.abs(pred[:, 2] - truth[:, 2])
    return float(np.median(centre)), float(np.quantile(centre, 0.95)), float(np.nanmedian(radius))


def train_probe(x: torch.Tensor, y: torch.Tensor, steps: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    mean, std = y.mean(0), y.std(0)
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 512), torch.nn.SiLU(), torch.nn.Linear(512, 512),
                              torch.nn.SiLU(), torch.nn.Linear(512, 3))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        if step == int(steps * 0.7):
            for group in opt.param_groups:
                group["lr"] = 2e-4
        idx = torch.randint(0, len(x), (256,), generator=g)
        loss = ((net(x[idx]) - (y[idx] - mean) / std) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return lambda inputs: net(inputs) * std + mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="tokenizer checkpoint folder (or run folder)")
    parser.add_argument("--data", nargs="+", required=True, help="dataset folders with a red ball in every clip")
    parser.add_argument("--clips", type=int, default=600, help="clips per folder (an even random spread)")
    parser.add_argument("--frames", type=int, default=8, help="evenly spaced frames per clip")
    parser.add_argument("--steps", type=int, default=6000, help="probe training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = load_tokenizer(args.checkpoint)
    size = model.config.resolution
    bank = FrameBank.load(args.data, args.clips, args.frames, size, seed=args.seed + 1)
    with torch.no_grad():  # [N, K, d]: the codes the renderer decodes, before they become ids
        codes = torch.cat([model.quantize(model.to_model_range(bank.frames[i:i + 256]))
                           for i in range(0, len(bank), 256)])
    truth, inside = red_ball_targets(bank, size)
    test = (bank.clip % 5 == 0) & inside
    train = (bank.clip % 5 != 0) & inside
    test_codes = codes[torch.from_numpy(test)]
    probe = train_probe(codes[torch.from_numpy(train)].flatten(1), torch.tensor(truth[train], dtype=torch.float32),
                        args.steps, args.seed)
    with torch.no_grad():
        probed = probe(test_codes.flatten(1)).numpy()
    originals = bank.frames.numpy()[test]
    rendered = decode_clip(model, model.codes_to_ids(test_codes))

    print(f"{args.checkpoint}: {int(train.sum())} training frames, {int(test.sum())} test frames (other clips), "
          f"red ball wholly in view; errors against the simulator's state, in pixels\n")
    print("| read by | centre median | centre p95 | radius median |")
    print("|---|---:|---:|---:|")
    for name, pred in (("MLP probe on the codes", probed), ("parser on the renderer's frame", parsed_red(rendered)),
                       ("parser on the original frame (floor)", parsed_red(originals))):
        print("| {} | {:.3f} | {:.3f} | {:.3f} |".format(name, *errors(pred, truth[test])))


if __name__ == "__main__":
    main()
