"""Data throughput: clips/s to simulate, simulate+render and simulate+render+write, at 64 and
128 px on 1 and 2 workers, plus the time and disk size of the 30K uniform training set.

    python benchmarks/bench_data.py            # everything (about 4 minutes on 2 cores)
    python benchmarks/bench_data.py --quick    # no 30K set

Run it on an idle machine: two jobs on 2 cores slow each other down 2-4x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

from physar.data.generate import generate, simulate_clip
from physar.data.recipe import load_recipe, plan_clips
from simulators.render import render

RECIPE = "datasets/uniform.yaml"


def _work(args) -> int:
    stage, resolution, start, n = args
    recipe = load_recipe(RECIPE)
    plans = plan_clips(recipe, "train")[start:start + n]
    for plan in plans:
        traj, _ = simulate_clip(recipe, plan, "train", 0)
        if stage == "render":
            render(traj, resolution)
    return len(plans)


def in_memory(stage: str, resolution: int, workers: int, n: int) -> float:
    """clips/s of simulate (or simulate+render) spread over `workers` processes."""
    chunks = [(stage, resolution, i * (n // workers), n // workers) for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
        list(pool.map(_work, [(stage, resolution, 0, 10)] * workers))  # warm up the workers
        start = time.perf_counter()
        done = sum(pool.map(_work, chunks))
    return done / (time.perf_counter() - start)


def to_disk(resolution: int, workers: int, n: int) -> float:
    out = tempfile.mkdtemp(prefix="physar_bench_")
    try:
        start = time.perf_counter()
        generate(RECIPE, "train", out, count=n, resolution=resolution, workers=workers, progress=False)
        return n / (time.perf_counter() - start)
    finally:
        shutil.rmtree(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=2000, help="clips per measurement")
    parser.add_argument("--quick", action="store_true", help="skip the full 30K training set")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores; recipe {RECIPE}; {args.clips} clips per cell\n")
    print("| stage | resolution | workers | clips/s |")
    print("|---|---:|---:|---:|")
    for resolution in (64, 128):
        for workers in (1, 2):
            for stage, rate in (("simulate", lambda: in_memory("simulate", resolution, workers, args.clips)),
                                ("simulate+render", lambda: in_memory("render", resolution, workers, args.clips)),
                                ("simulate+render+write", lambda: to_disk(resolution, workers, args.clips))):
                if stage == "simulate" and resolution != 64:
                    continue  # no pixels involved
                print(f"| {stage} | {resolution if stage != 'simulate' else '-'} | {workers} | {rate():.0f} |", flush=True)
    if args.quick:
        return
    out = tempfile.mkdtemp(prefix="physar_bench_30k_")
    try:
        start = time.perf_counter()
        info = generate(RECIPE, "train", out, workers=2, progress=False)
        seconds = time.perf_counter() - start
        size = subprocess.run(["du", "-sh", out], capture_output=True, text=True).stdout.split()[0]
        videos = subprocess.run(["du", "-sh", os.path.join(out, "videos")], capture_output=True, text=True).stdout.split()[0]
        print(f"\n30K uniform training set (64 px, 2 workers): {info['num_clips']} clips in {seconds:.0f} s "
              f"({info['num_clips'] / seconds:.0f} clips/s); on disk {size} (videos {videos}, "
              f"metadata.jsonl {os.path.getsize(os.path.join(out, 'metadata.jsonl')) / 2**20:.0f} MB)")
    finally:
        shutil.rmtree(out)


if __name__ == "__main__":
    main()
