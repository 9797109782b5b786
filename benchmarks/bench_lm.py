"""LM speed: parameters, sequence lengths, an SFT step (forward + backward at the config's batch),
and generation time per 32-frame clip (greedy, constrained, KV-cached; LM alone and with the DDT
renderer) at batch 1 and batch 16.

    python benchmarks/bench_lm.py --checkpoint runs/sft_cpu --data data/uniform_eval150 data/collision_eval150

Run it on an idle machine: two torch jobs on 2 cores slow each other down many times over.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from physar.data.generate import load_metadata
from physar.lm.generate import generate_sequences
from physar.lm.model import load_checkpoint
from physar.tokenizer.codec import decode_clip, encode_clip, load_tokenizer
from physar.video import read_video


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="LM checkpoint (physar sft)")
    parser.add_argument("--data", nargs="+", required=True, help="dataset folders to take conditioning frames from")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16], help="generation batch sizes")
    args = parser.parse_args()

    model, tok, lang, meta = load_checkpoint(args.checkpoint)
    ddt = load_tokenizer(meta["tokenizer"])
    cond, total = meta["conditioning_frames"], meta["num_frames"]
    print(f"LM parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M; vocabulary {len(tok)}; "
          f"format: {'symbolic' if lang.symbolic else 'visual-only'}; torch threads {torch.get_num_threads()}\n")
    print("| data | batch | LM s / clip | + renderer s / clip | tokens / clip |")
    print("|---|---:|---:|---:|---:|")
    for folder in args.data:
        records = load_metadata(folder)
        for batch in args.batches:
            prompts = np.stack([encode_clip(ddt, read_video(f"{folder}/{r['video']}")[:cond]) for r in records[:batch]])
            start = time.perf_counter()
            clips = generate_sequences(model, tok, lang, prompts, total - cond, cond, meta["max_objects"],
                                       scenes=[r["scene"] for r in records[:batch]])
            lm = (time.perf_counter() - start) / batch
            start = time.perf_counter()
            for p, c in zip(prompts, clips):
                decode_clip(ddt, np.concatenate([p, c.visual]))
            render = (time.perf_counter() - start) / batch
            length = np.mean([len(lang.completion(r, np.zeros((total, lang.tokens_per_frame), int))) for r in records[:batch]])
            print(f"| {folder} | {batch} | {lm:.2f} | {lm + render:.2f} | {length:.0f} |")

    # one SFT step (forward + backward) at the training batch size, on the longest sequences
    cfg = meta["config"]
    model.train()
    ids = torch.randint(0, len(lang.vocab), (cfg["batch_size"], meta["longest_sequence"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for i in range(3):
        if i == 1:
            start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    print(f"\nSFT step, batch {cfg['batch_size']} x {meta['longest_sequence']} tokens: "
          f"{(time.perf_counter() - start) / 2:.2f} s")


if __name__ == "__main__":
    main()
