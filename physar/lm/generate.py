"""Generation: conditioning frames -> the LM (constrained to the physics language, batched,
KV-cached) -> visual tokens -> the DDT decoder -> video.

`generate_dataset` continues every clip of a dataset and writes the videos under the same file
names (so `physar evaluate DATA_DIR --videos OUT` measures them), trajectories.jsonl (the
model's own symbolic reading and states), generation_report.json/md (parse rate, speed, and
how well the decoded frames agree with the symbolic states) and preview strips.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from physar.data.generate import load_metadata
from physar.errors import CheckpointError
from physar.evaluation.parse import parse_frames
from physar.language import SCENE_NAMES, Clip, LanguageError, PhysicsLanguage, SequenceParser, given_state_block
from physar.video import read_video, write_video


class GrammarConstraint(LogitsProcessor):
    """Masks every token the physics language does not allow next, one parser per batch row, so
    every finished sequence parses. Made fresh for each `generate` call: the first call fixes the
    batch size and the (left-padded) prompt length. `prefixes` (one token list per row) are
    completion tokens already placed at the end of the prompts: the parsers read them first."""

    def __init__(self, lang: PhysicsLanguage, tok, num_frames: int, max_objects: int | None = None,
                 prefixes: list[list[str]] | None = None, prefix_from_prompt: bool = False):
        self.lang, self.num_frames, self.max_objects = lang, num_frames, max_objects
        self.prefixes, self.prefix_from_prompt = prefixes, prefix_from_prompt
        self.tok = tok
        self.parsers: list[SequenceParser] | None = None
        self.prompt_length = 0
        # the language's <eos> is whatever the tokenizer ends sequences with (a base model's own)
        self.id_of = {t: tok.convert_tokens_to_ids(t) for t in lang.vocab if t not in ("<pad>", "<bos>", "<unk>")}
        self.id_of["<eos>"] = tok.eos_token_id
        self.token_of = {i: t for t, i in self.id_of.items()}
        self.eos = lang.expect["one"]["<eos>"]
        self._masks: dict[frozenset, torch.Tensor] = {}

    def mask(self, allowed: frozenset, vocab_size: int) -> torch.Tensor:
        """[vocab_size] True for the allowed tokens (cached per set)."""
        # frozensets cache their hash, and most are built once (PhysicsLanguage.expect): cheap keys
        if allowed not in self._masks:
            mask = torch.zeros(vocab_size, dtype=torch.bool)
            mask[[self.id_of[t] for t in allowed]] = True
            self._masks[allowed] = mask
        return self._masks[allowed]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.parsers is None:
            self.prompt_length = input_ids.shape[1]
            self.parsers = [SequenceParser(self.lang, self.num_frames, self.max_objects) for _ in range(len(input_ids))]
            if self.prefixes is None and self.prefix_from_prompt:  # a <state> block closing the prompt
                self.prefixes = [given_state_block(self.tok.convert_ids_to_tokens(row)) for row in input_ids.tolist()]
            for parser, prefix in zip(self.parsers, self.prefixes or ()):
                for token in prefix:
                    parser.feed(token)
        elif input_ids.shape[1] > self.prompt_length:
            for row, parser in zip(input_ids[:, -1].tolist(), self.parsers):
                if not parser.done:
                    parser.feed(self.token_of[row])
        masks = torch.stack([self.mask(self.eos if p.done else p.allowed(), scores.shape[1]) for p in self.parsers])
        return scores.masked_fill(~masks.to(scores.device), float("-inf"))


def constrain(model, lang: PhysicsLanguage, tok, num_frames: int, max_objects: int, prefix_from_prompt: bool = False,
              draw_with=None):
    """Make every `model.generate` call (trl's rollouts too) follow the physics language.
    `prefix_from_prompt`: prompts may end with a given <state> block, which the grammar reads first.
    `draw_with` (a DDT tokenizer): the renderer draws every frame's visual tokens (physar/lm/drawing.py)."""
    plain = model.generate

    def generate(*args, **kwargs):
        processors = LogitsProcessorList(kwargs.pop("logits_processor", None) or [])
        grammar = GrammarConstraint(lang, tok, num_frames, max_objects, prefix_from_prompt=prefix_from_prompt)
        processors.append(grammar)
        if draw_with is not None:
            from physar.lm.drawing import DrawnFrames

            processors.append(DrawnFrames(grammar, draw_with, lang))
        return plain(*args, logits_processor=processors, **kwargs)

    model.generate = generate
    return model


@torch.no_grad()
def generate_sequences(model, tok, lang: PhysicsLanguage, prompt_ids: np.ndarray, num_frames: int,
                       conditioning_frames: int, max_objects: int, greedy: bool = True, temperature: float = 1.0,
                       top_k: int | None = None, seed: int = 0, scenes: list[str] | None = None,
                       prefixes: list[list[str]] | None = None,
                       processors: list[LogitsProcessor] = (), draw_with=None) -> list[Clip | str]:
    """One batch: prompt visual ids [B, C, K] (index order) and each row's scene -> per row, the parsed clip of
    `num_frames` generated frames, or the parser's error message. The output is read back from
    the generated ids by the language's parser, independently of the constraint. `prefixes`
    forces the start of each row's completion (e.g. the simulator's own <state> block, to see how
    the model continues from a perfect reading); the parsed clip includes them. `processors` run
    after the grammar's (benchmarks/lm_given_trajectory.py forces every symbolic token with one).
    `draw_with` (a DDT tokenizer): each frame's visual tokens are those of its states drawn by the
    renderer, not the LM's (physar/lm/drawing.py)."""
    torch.manual_seed(seed)
    scenes = scenes or [None] * len(prompt_ids)
    prefixes = prefixes or [[] for _ in prompt_ids]
    texts = [lang.text(lang.prompt(ids, conditioning_frames, scene) + prefix)
             for ids, scene, prefix in zip(prompt_ids, scenes, prefixes)]
    enc = tok(texts, return_tensors="pt", padding=True)
    prompt_length = enc["input_ids"].shape[1]
    constraint = GrammarConstraint(lang, tok, num_frames, max_objects, prefixes)
    if draw_with is not None:
        from physar.lm.drawing import DrawnFrames

        processors = [DrawnFrames(constraint, draw_with, lang), *processors]
    sampling = {"temperature": temperature, "top_k": top_k or 0} if not greedy else {}
    budget = lang.max_completion_length(num_frames, max_objects)  # the grammar ends every row within it
    budget -= min(map(len, prefixes))
    output = model.generate(**enc, max_new_tokens=budget, do_sample=not greedy, use_cache=True,
                            logits_processor=LogitsProcessorList([constraint, *processors]), pad_token_id=tok.pad_token_id,
                            eos_token_id=tok.eos_token_id, **sampling)
    clips = []
    for prefix, row in zip(prefixes, output[:, prompt_length:].tolist()):
        tokens = prefix + [t for t in tok.convert_ids_to_tokens(row) if t not in (tok.pad_token, tok.eos_token)]
        try:
            clips.append(lang.parse(tokens, num_frames, max_objects))
        except LanguageError as e:
            clips.append(str(e))
    return clips


def trajectory_line(record: dict, clip: Clip) -> dict:
    """What trajectories.jsonl keeps of a generated clip (physar.lm.assess reads it back)."""
    line = {"video": record["video"], "objects": clip.objects,
            "positions": None if clip.positions is None else clip.positions.round(4).tolist()}
    if clip.velocities is not None:
        line["velocities"] = clip.velocities.round(4).tolist()
    return line


def symbolic_agreement(frames: np.ndarray, clip: Clip, resolution: int) -> dict:
    """Where the decoded frames put each ball vs where the model's own states say it is:
    distances in pixels (exact mapping), over the generated frames where the ball is found."""
    if clip.positions is None or not clip.objects:
        return {}
    parsed = parse_frames(frames, [o["color"] for o in clip.objects])
    dist = np.linalg.norm(parsed.positions - clip.positions, axis=-1) * (resolution - 1) / 10.0
    return {"distances_px": dist[parsed.found].tolist(), "found": float(parsed.found.mean())}


def _summary(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p95": None}
    return {"median": float(np.median(values)), "p95": float(np.percentile(values, 95))}


def generate_dataset(checkpoint: str | Path, data_dir: str | Path, out: str | Path, greedy: bool = True,
                     temperature: float = 1.0, top_k: int | None = None, batch_size: int = 16, seed: int = 0,
                     limit: int | None = None, decoder_steps: int = 0, previews: bool = True,
                     progress: bool = True, state_from: str | None = None, draw: str | None = None) -> dict:
    """Continue every clip of `data_dir` and write the videos, trajectories.jsonl, a report and
    previews to `out`. `state_from`: "model" (the LM reads the scene into its <state> block) or
    "frames" (the evaluator's parser reads it from the conditioning frames and the block is forced:
    physar/lm/frame_reading.py; clips it cannot read fall back to the model's reading). `draw`: "lm"
    (the LM writes each frame's visual tokens) or "renderer" (the frame's states drawn and encoded:
    physar/lm/drawing.py). None: the checkpoint's own setting (`physar.lm.model.generation_settings`)."""
    from tqdm import tqdm

    from physar.lm.drawing import drawn_snap_mode
    from physar.lm.frame_reading import read_state
    from physar.lm.model import generation_settings, load_checkpoint
    from physar.tokenizer.codec import decode_clip, encode_clip, load_tokenizer

    data_dir, out = Path(data_dir), Path(out)
    records = load_metadata(data_dir)[:limit]
    model, tok, lang, meta = load_checkpoint(checkpoint)
    state_from, draw = generation_settings(meta, state_from, draw)
    ddt = load_tokenizer(meta["tokenizer"])
    cond, total = meta["conditioning_frames"], meta["num_frames"]
    if state_from not in ("model", "frames"):
        raise CheckpointError(f"state_from {state_from!r}: expected 'model' or 'frames'")
    if draw not in ("lm", "renderer"):
        raise CheckpointError(f"draw {draw!r}: expected 'lm' or 'renderer'")
    if draw == "renderer" and not lang.symbolic:
        raise CheckpointError(f"{checkpoint}: a visual-only model writes no states for the renderer to draw")
    if state_from == "frames" and not lang.symbolic:
        raise CheckpointError(f"{checkpoint}: a visual-only model writes no <state> block to read from the frames")
    for r in records:
        if r["resolution"] != ddt.config.resolution or r["num_frames"] < cond + 1:
            raise CheckpointError(f"{data_dir}: clips are {r['resolution']} px with {r['num_frames']} frames; the model "
                                  f"takes {ddt.config.resolution} px and {cond} conditioning frames")
        if lang.scene_token and r["scene"] not in SCENE_NAMES:
            raise CheckpointError(f"{data_dir}/{r['video']}: scene {r['scene']!r}; the model needs one of "
                                  f"{', '.join(SCENE_NAMES)} (with --video, say which with --scene)")
    snap_mode = drawn_snap_mode(ddt) if draw == "renderer" else None
    out.mkdir(parents=True, exist_ok=True)
    rows, failures, agreement, found, clock = [], [], [], [], time.time()
    read_by_parser = 0
    bar = tqdm(total=len(records), desc=f"generate {data_dir.name}", unit="clip", disable=not progress)
    with open(out / "trajectories.jsonl", "w") as log:
        for start in range(0, len(records), batch_size):
            batch = records[start:start + batch_size]
            firsts = [read_video(data_dir / r["video"])[:cond] for r in batch]
            prompts = np.stack([encode_clip(ddt, frames) for frames in firsts])
            prefixes = None
            if state_from == "frames":
                states = [read_state(frames, r["scene"]) for frames, r in zip(firsts, batch)]
                read_by_parser += sum(s is not None for s in states)
                prefixes = [lang.state_block(s, cond - 1) if s is not None else [] for s in states]
            clips = generate_sequences(model, tok, lang, prompts, total - cond, cond, meta["max_objects"],
                                       greedy, temperature, top_k, seed + start, [r["scene"] for r in batch], prefixes,
                                       draw_with=ddt if draw == "renderer" else None)
            for record, prompt, clip in zip(batch, prompts, clips):
                if isinstance(clip, str):
                    failures.append({"video": record["video"], "error": clip})
                    continue
                ids = np.concatenate([prompt, clip.visual])
                # every frame, the conditioning ones too, goes through the same decoder, so the
                # video carries one consistent rendering (no jump where generation begins)
                frames = decode_clip(ddt, ids, steps=decoder_steps, seed=seed, snap_mode=snap_mode)
                path = out / record["video"]
                path.parent.mkdir(parents=True, exist_ok=True)
                write_video(path, frames)
                agree = symbolic_agreement(frames[cond:], clip, ddt.config.resolution)
                agreement += agree.get("distances_px", [])
                if agree:
                    found.append(agree["found"])
                log.write(json.dumps({**trajectory_line(record, clip), "visual_ids": ids.tolist()}) + "\n")
                rows.append(record)
            bar.update(len(batch))
    bar.close()
    seconds = time.time() - clock
    report = {"checkpoint": str(checkpoint), "data": str(data_dir), "clips": len(records), "parsed": len(rows),
              "parse_rate": len(rows) / max(1, len(records)), "failures": failures, "seconds": round(seconds, 1),
              "seconds_per_clip": round(seconds / max(1, len(records)), 3), "greedy": greedy,
              "temperature": None if greedy else temperature, "top_k": top_k, "decoder_steps": decoder_steps,
              "symbolic": lang.symbolic, "state_from": state_from, "draw": draw,
              "snap_mode": (snap_mode or ddt.config.snap_mode) if ddt.config.snap_to_keypoints else None,
              "states_read_by_parser": read_by_parser if state_from == "frames" else None,
              "agreement_px": _summary(agreement),
              "agreement_found": float(np.mean(found)) if found else None}
    (out / "generation_report.json").write_text(json.dumps(report, indent=1))
    (out / "generation_report.md").write_text(generation_markdown(report))
    if previews and rows:
        from physar.data.show import show

        show(data_dir, out / "previews", clips=min(6, len(rows)), frames=8, videos=out, gif=True, among=rows)
    return report


def generation_markdown(report: dict) -> str:
    fmt = (lambda x: "-" if x is None else f"{x:.2f}")
    a = report["agreement_px"]
    decoding = "greedy" if report["greedy"] else f"sampled, temperature {report['temperature']}, top-k {report['top_k']}"
    lines = [f"# Generation: `{report['data']}` with `{report['checkpoint']}`", "",
             f"- clips parsed: {report['parsed']} / {report['clips']} ({report['parse_rate']:.1%})",
             f"- time: {report['seconds']:.0f} s, {report['seconds_per_clip']:.2f} s per clip ({decoding}; "
             f"decoder steps {report['decoder_steps']})",
             f"- <state> block read by: " + ("the model" if report.get("state_from", "model") == "model" else
                                             f"the parser, from the conditioning frames ({report['states_read_by_parser']} "
                                             f"clips; the model read the rest)"),
             "- frames drawn by: " + ("the LM (its visual tokens)" if report.get("draw", "lm") == "lm" else
                                      "the renderer, from the LM's states (then DDT-encoded)")
             + (f"; snap: {report['snap_mode']}" if report.get("snap_mode") else ""),
             f"- decoded frames vs the model's symbolic states: median {fmt(a['median'])} px, p95 {fmt(a['p95'])} px, "
             f"balls found {fmt(report['agreement_found'])}"]
    lines += [f"- failed: `{f['video']}`: {f['error']}" for f in report["failures"][:20]]
    return "\n".join(lines) + "\n"


def single_clip_dataset(folder: str | Path, checkpoint: str | Path, video: str | Path | None = None,
                        scene: str | None = None, params: dict | None = None, seed: int = 0) -> Path:
    """A one-clip dataset folder for `generate_dataset`: from a video file (no ground truth; `scene`
    then names its physics), or simulated from scene parameters (the full clip, so it can be evaluated too)."""
    from physar.data.generate import clip_record
    from physar.data.recipe import ClipPlan, classify, load_recipe
    from physar.lm.model import PHYSAR_FILE, resolve_checkpoint
    from simulators.render import render
    from simulators.scenes import PlacementError, get_scene, initial_speeds_and_radii

    folder = Path(folder)
    meta = json.loads((resolve_checkpoint(checkpoint) / PHYSAR_FILE).read_text())
    size, cond, total = meta["resolution"], meta["conditioning_frames"], meta["num_frames"]
    folder.mkdir(parents=True, exist_ok=True)
    if video is not None:
        frames = read_video(video)
        if frames.shape[1:3] != (size, size) or len(frames) < cond:
            raise CheckpointError(f"{video}: {len(frames)} frames of {frames.shape[2]}x{frames.shape[1]} px; the model "
                                  f"needs at least {cond} frames of {size}x{size}")
        name = Path(video).with_suffix(".mp4").name
        write_video(folder / name, frames)
        record = {"index": 0, "video": name, "scene": scene or "video", "split": "eval", "set": "video", "bucket": "custom",
                  "params": {}, "resolution": size, "num_frames": total, "conditioning_frames": cond}
    else:
        p = params or {}
        names = {"uniform": {"v": "velocity", "r": "radius"}, "parabola": {"v": "velocity", "r": "radius"},
                 "collision": {"v1": "velocity", "r1": "radius", "v2": "velocity2", "r2": "radius2"}}
        if scene not in names:
            raise CheckpointError(f"--scene {scene!r}: choose uniform, collision or parabola")
        scene_params = {k: float(p[v]) for k, v in names[scene].items()}
        if any(scene_params[k] <= 0 for k in scene_params if k.startswith("r")):
            raise CheckpointError(f"--scene {scene}: radii must be positive, got {scene_params}")
        try:
            traj = get_scene(scene).simulate(scene_params, np.random.default_rng(seed), total)
        except PlacementError as e:
            raise CheckpointError(f"--scene {scene} {scene_params}: {e}") from None
        recipe_file = Path(__file__).resolve().parents[2] / "datasets" / f"{scene}.yaml"
        bucket = classify(*initial_speeds_and_radii(scene, traj.params, traj), load_recipe(recipe_file).id_box) \
            if recipe_file.is_file() else "custom"
        write_video(folder / "clip.mp4", render(traj, size))
        record = clip_record(traj, ClipPlan(0, "single", None), bucket, "clip.mp4", "eval", seed, size, cond)
    (folder / "metadata.jsonl").write_text(json.dumps(record) + "\n")
    return folder
