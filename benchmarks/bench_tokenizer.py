"""Tokenizer speed: frames/s to encode, to decode with the one-step renderer and with N-step
DDIM, the time to decode a 32-frame clip, parameters, and a training step.

    python benchmarks/bench_tokenizer.py --checkpoint checkpoints/ddt_cpu [--steps 10 20]

Run it on an idle machine: two torch jobs on 2 cores slow each other down many times over.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from physar.tokenizer.codec import load_tokenizer


def rate(fn, frames: int, repeats: int = 3) -> float:
    fn()  # warm up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return frames * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="tokenizer checkpoint folder (or run folder)")
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 20], help="DDIM step counts to time")
    parser.add_argument("--batch", type=int, default=32, help="frames per call (a 32-frame clip)")
    args = parser.parse_args()

    model = load_tokenizer(args.checkpoint)
    cfg = model.config
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (args.batch, cfg.resolution, cfg.resolution, 3), dtype=torch.uint8)
    ids = model.encode(frames)
    count = lambda m: sum(p.numel() for p in m.parameters()) / 1e6
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads")
    fine = f" ({cfg.fine_tokens} fine, FSQ {cfg.fine_fsq_levels})" if cfg.fine_tokens else ""
    fine_encoder = f", fine encoder {count(model.fine_encoder):.2f} M" if cfg.fine_tokens else ""
    if cfg.radius_tokens:
        fine_encoder += f", radius encoder {count(model.radius_encoder):.3f} M"
    print(f"tokenizer: {cfg.resolution} px, {cfg.num_tokens} tokens/frame{fine}, codebook {cfg.codebook_size}; parameters "
          f"encoder {count(model.encoder):.2f} M{fine_encoder}, diffusion decoder {count(model.decoder):.2f} M, "
          f"renderer {count(model.renderer):.2f} M\n")
    print("| operation | frames/s | one 32-frame clip (s) |")
    print("|---|---:|---:|")
    rows = [("encode", lambda: model.encode(frames)), ("decode, renderer (1 step)", lambda: model.decode(ids))]
    rows += [(f"decode, {s}-step DDIM", (lambda s=s: model.decode(ids, steps=s))) for s in args.steps]
    for name, fn in rows:
        r = rate(fn, args.batch, repeats=3 if "DDIM" not in name else 1)
        print(f"| {name} | {r:.1f} | {32 / r:.2f} |", flush=True)

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = model.to_model_range(frames[: cfg.batch_size])

    def step():
        loss, _ = model.loss(x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(3):
        step()
    print(f"\ntraining step (batch {cfg.batch_size}, both decoders): {(time.perf_counter() - start) / 3:.2f} s")


if __name__ == "__main__":
    main()
