"""Training sequences for the LM: tokenized clips (metadata + DDT ids) written in the physics language."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from physar.data.generate import load_metadata
from physar.errors import FrameDataError
from physar.language import PhysicsLanguage, split_tokens, token_roles
from physar.tokenizer.codec import TOKENS_DIR, load_tokens
from simulators.world import FRAME_DT, WORLD_SIZE


def load_token_ids(data_dir: str | Path, token_file: str, codebook_size: int, tokens_per_frame: int,
                   tokenizer_sha256: str | None = None) -> np.ndarray:
    """ids [clips, frames, K] of DATA_DIR/tokens/<token_file>.safetensors, checked against the
    dataset's metadata (same clips, same order) and the tokenizer (K, codebook, and its weights'
    fingerprint where both are known; files written before fingerprints were recorded have none)."""
    data_dir = Path(data_dir)
    path = data_dir / TOKENS_DIR / f"{token_file}.safetensors"
    if not path.is_file():
        raise FrameDataError(f"{data_dir}: no {path.relative_to(data_dir)}; run `physar tokenizer encode {data_dir} --checkpoint ...` first")
    ids, info = load_tokens(path)
    videos = [r["video"] for r in load_metadata(data_dir)]
    if json.loads(info.get("videos", "[]")) != videos:
        raise FrameDataError(f"{path}: its clips are not the dataset's (re-encode it)")
    if ids.shape[2] != tokens_per_frame or int(info.get("codebook_size", codebook_size)) != codebook_size:
        raise FrameDataError(f"{path}: {ids.shape[2]} tokens per frame from a {info.get('codebook_size')}-code tokenizer; "
                             f"the LM expects {tokens_per_frame} from {codebook_size}")
    written_by = info.get("tokenizer_sha256")
    if tokenizer_sha256 and written_by and written_by != tokenizer_sha256:
        raise FrameDataError(f"{path}: encoded by another tokenizer ({info.get('checkpoint')}, weights {written_by}) than the "
                             f"LM's (weights {tokenizer_sha256}); re-encode it, or set token_file to its own encoding")
    return ids


def clip_example(lang: PhysicsLanguage, record: dict, ids: np.ndarray) -> dict:
    """One clip as trl's prompt/completion strings (trl appends the tokenizer's EOS)."""
    cond = record["conditioning_frames"]
    return {"prompt": lang.text(lang.prompt(ids, cond, record["scene"])), "completion": lang.text(lang.completion(record, ids)),
            "video": record["video"], "scene": record["scene"], "conditioning_frames": cond,
            "num_frames": record["num_frames"], "num_objects": len(record["radii"]), "record": record, "ids": ids}


def reading_examples(lang: PhysicsLanguage, examples: list[dict], per_clip: int, seed: int) -> list[dict]:
    """The reading task. A clip teaches reading a scene from its frames once (its <state> block),
    a small share of its loss; here each clip gives up to `per_clip` more lessons: a random window
    of as many frames as the conditioning ones as the prompt, and only the <state> block at the
    window's last frame as the completion (trl appends <eos>). Windows where a ball is not wholly in
    view are skipped (nothing to read). Constrained decoding never lets <eos> follow </state>, so
    generation is unchanged. Give it training clips only: held-out clips must not leak."""
    rng = np.random.default_rng(seed)
    out = []
    for e in examples:
        record, ids, cond = e["record"], e["ids"], e["conditioning_frames"]
        xy, r = np.asarray(record["positions"]), np.asarray(record["radii"])[None, :, None]
        in_view = np.all((xy - r >= 0) & (xy + r <= WORLD_SIZE), axis=(1, 2))  # [frames]
        lasts = [t for t in range(cond - 1, len(ids)) if in_view[t - cond + 1:t + 1].all()]
        for last in rng.permutation(lasts)[:per_clip]:
            out.append({"prompt": lang.text(lang.prompt(ids[last - cond + 1:last + 1], cond, record["scene"])),
                        "completion": lang.text(lang.state_block(record, int(last))), "video": e["video"],
                        "scene": record["scene"], "last_frame": int(last)})
    return out


def jump_examples(lang: PhysicsLanguage, examples: list[dict], copies: int) -> list[dict]:
    """The collision task. A clip of two balls writes its collision's change of step in one frame
    of about thirty: a dozen of its ~1800 tokens, too small a share of the loss for the LM to learn
    its size (measured with `benchmarks/jump_probe.py` on `runs/sft_v2_relative`: the sign right in
    every held-out clip, the digits in none). Here each frame of a clip of two or more balls whose
    change of step is more than one grid unit for some ball (a jump, not the rounding's +-1) gives
    `copies` lessons: the clip up to that frame's first <p> as the prompt, and the frame's per-ball
    changes and positions as the completion (trl appends <eos>, which constrained decoding never
    allows there, so generation is unchanged). Give it training clips only."""
    if not (lang.frame_acceleration and lang.signed_changes):
        raise ValueError("jump examples need frame_acceleration and signed_changes (the per-frame changes they teach)")
    out = []
    for e in examples:
        if e["num_objects"] < 2:
            continue
        completion = split_tokens(e["completion"])
        frames = [i for i, t in enumerate(completion) if t == "<frame>"]
        clip = lang.parse(completion, len(frames))
        steps = np.concatenate([[[(o["vx"], o["vy"]) for o in clip.objects]], clip.velocities]) * FRAME_DT
        jumps = np.flatnonzero(np.abs(np.diff(steps, axis=0)).max(axis=(1, 2)) > 1.5 * 10.0**-lang.decimals)
        roles = token_roles(completion, lang)
        for frame in jumps:
            begin = frames[frame]
            end = frames[frame + 1] if frame + 1 < len(frames) else len(completion)
            first = completion.index("<p>", begin)
            last = max(i for i in range(begin, end) if roles[i].startswith("position"))
            lesson = {"prompt": e["prompt"] + "".join(completion[:first]), "completion": "".join(completion[first:last + 1]),
                      "video": e["video"], "scene": e["scene"], "frame": int(frame)}
            out += [lesson] * copies
    return out


def load_examples(data_dirs: list[str | Path], lang: PhysicsLanguage, token_file: str = "ddt",
                  tokenizer_sha256: str | None = None) -> list[dict]:
    """Every clip of every folder, in folder then metadata order."""
    out = []
    for d in data_dirs:
        ids = load_token_ids(d, token_file, lang.codebook_size, lang.tokens_per_frame, tokenizer_sha256)
        for record, clip_ids in zip(load_metadata(d), ids):
            example = clip_example(lang, record, clip_ids)
            example["video"] = str(Path(d).name) + "/" + example["video"]
            out.append(example)
    if not out:
        raise FrameDataError("no clips in " + ", ".join(map(str, data_dirs)))
    shapes = {(e["conditioning_frames"], e["num_frames"]) for e in out}
    if len(shapes) > 1:
        raise FrameDataError(f"clips differ in (conditioning frames, frames): {sorted(shapes)}; train on one geometry")
    return out


def split_examples(examples: list[dict], eval_clips: int, seed: int) -> tuple[list[dict], list[dict]]:
    """A seeded held-out set for the eval loss."""
    order = np.random.default_rng(seed).permutation(len(examples))
    held = set(order[:min(eval_clips, len(examples) // 10)].tolist())
    return ([e for i, e in enumerate(examples) if i not in held], [e for i, e in enumerate(examples) if i in held])
