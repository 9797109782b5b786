"""Stage 2: GRPO from the SFT checkpoint with physics-consistency rewards (trl's GRPOTrainer).

Prompts are the conditioning frames of dataset clips. For each prompt the policy samples a group
of continuations (constrained to the physics language); each is read back, its trajectory taken
from the model's symbolic states or from its decoded frames, and scored by the physics law of
its scene (rewards.py) against a reference: the simulator's truth (supervised) or what the
conditioning frames show (label-free). The run folder holds trl's checkpoints (trainer/), log.jsonl,
rewards.png (one curve per reward component) and the final checkpoint/.
"""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path

import numpy as np

from physar.data.generate import load_metadata
from physar.errors import ConfigError
from physar.evaluation.parse import parse_frames
from physar.language import (FIELDS, MAX_INT_DIGITS, SIGN, LanguageError, SequenceParser, given_state_block,
                              object_order, read_state_block, split_tokens)
from physar.lm.assess import EVALUATION_SEED
from physar.lm.frame_reading import read_state
from physar.rl import rewards
from physar.rl.config import STATE_FIELDS, RLConfig
from physar.video import read_video
from simulators.world import FRAME_DT

REWARDED_SCENES = ("uniform", "collision", "parabola")


def _spread(records: list[dict], n: int | None) -> list[dict]:
    if n is None or n >= len(records):
        return records
    return [records[i] for i in np.linspace(0, len(records) - 1, n).round().astype(int)]


def prompt_pool(folders: list[str | Path], ddt, lang, mode: str, max_prompts: int | None = None,
                state_from: str = "model", fields: list[str] | None = None, progress: bool = False) -> list[dict]:
    """One row per clip: the prompt text and the reference its rollouts are scored against
    (start positions [N, 2] at the last conditioning frame, initial velocities [N, 2], radii, colours,
    and `reading` [N, 5]: r, x, y, vx, vy as the language writes that state in a <state> block).
    state_from="frames": the parser's <state> block ends the prompt (clips it cannot read are left out).
    `fields` (rollout: field): instead, one row per ball and named field (`field_rows`)."""
    from tqdm import tqdm

    from physar.tokenizer.codec import encode_clip

    rows = []
    for folder in map(Path, folders):
        records = _spread(load_metadata(folder), max_prompts)
        for r in tqdm(records, desc=f"prompts {folder.name}", unit="clip", disable=not progress):
            if r["split"] == "eval" and r.get("seed") == EVALUATION_SEED:
                raise ConfigError(f"prompts: {folder} holds evaluation clips (eval split, seed {EVALUATION_SEED}, the "
                                  f"clips `physar evaluate` and `physar compare` judge); simulate prompts with another --seed")
            if r["scene"] not in REWARDED_SCENES:
                raise ConfigError(f"prompts: {folder} holds {r['scene']!r} clips; rewards exist for "
                                  f"{', '.join(REWARDED_SCENES)}")
            cond = r["conditioning_frames"]
            frames = read_video(folder / r["video"])[:cond]
            prompt = lang.prompt(encode_clip(ddt, frames), cond, r["scene"])
            read = read_state(frames, r["scene"]) if state_from == "frames" or mode != "supervised" else None
            if state_from == "frames":
                if read is None:
                    continue
                prompt += lang.state_block(read, cond - 1)
            if mode == "supervised":
                reading = reading_of(lang, r, cond - 1)
                start = np.asarray(r["positions"])[cond - 1]
                v0 = np.asarray(r["velocities"])[cond - 1]
                radii = np.asarray(r["radii"])
            else:  # label-free: only what the conditioning frames show
                if read is None or read["colors"] != [list(c) for c in r["colors"]]:
                    continue  # a ball not wholly in view: its centre and velocity cannot be read
                start, v0 = np.asarray(read["positions"][-1]), np.asarray(read["velocities"][-1])
                radii = np.asarray(read["radii"])
                reading = reading_of(lang, read, cond - 1)
            row = {"prompt": lang.text(prompt), "scene": r["scene"], "video": str(folder / r["video"]), "reading": reading,
                   "start": start.tolist(), "v0": v0.tolist(), "radii": radii.tolist(), "colors": r["colors"]}
            if fields is None:
                rows.append(row)
            else:
                reference = r if mode == "supervised" else read
                rows += field_rows(lang, row, prompt, lang.state_block(reference, cond - 1), fields)
    if not rows:
        raise ConfigError("prompts: no usable clips in " + ", ".join(map(str, folders)))
    return rows


def field_rows(lang, row: dict, prompt: list[str], block: list[str], fields: list[str]) -> list[dict]:
    """rollout: field. For each ball and each of `fields`, `row` with the prompt followed by the reference's
    <state> block up to that field's tag (`block`: as the language writes the reference), `suffix` the block
    after the field's number (the judge closes the rollout's number with it), `field` [ball, index in
    STATE_FIELDS]. A rollout is then one number, scored alone: with the whole block as one rollout, every
    token shares one advantage, and a field the policy reads is credited with the noise of all the others."""
    out, ball = [], -1
    for i, token in enumerate(block):
        ball += token == "<obj>"
        if token in FIELDS and token[1:-1] in fields:
            end = i + 1 + number_length(lang, block[i + 1:])
            out.append({**row, "prompt": lang.text(prompt + block[:i + 1]), "suffix": lang.text(block[end:]),
                        "field": [ball, FIELDS.index(token)]})
    return out


def number_length(lang, tokens: list[str]) -> int:
    """How many of `tokens` the number they begin with takes: in a little_endian language (the only kind
    rollout: field reads; its block may be written either way round, `state_big_endian`) a number is a
    fixed width of digits, after a sign if it has one."""
    if not lang.little_endian:
        raise ConfigError("rollout: field needs a checkpoint whose language writes little-endian numbers")
    return (tokens[:1] == [SIGN]) + MAX_INT_DIGITS + lang.decimals


def reading_of(lang, state: dict, frame: int) -> list[list[float]] | None:
    """[N, 5] r, x, y, vx, vy (units/s) of `state` (a clip record, or `read_state`'s reading) at `frame`,
    as the language writes them in a <state> block (rounded, steps back to velocities): the reading
    reward's reference. None for a visual-only language."""
    if not lang.symbolic:
        return None
    return state_array(read_state_block(lang, lang.state_block(state, frame)), state["colors"])[0].tolist()


def state_array(objects: list[dict], colors) -> tuple[np.ndarray, int]:
    """A <state> block's balls in the order of `colors`: ([N, 5] r, x, y, vx, vy, a NaN row where no ball
    has that colour; the number of balls of other colours)."""
    order = object_order(objects, colors)
    rows = [[np.nan] * 5 if j is None else [objects[j][k] for k in STATE_FIELDS] for j in order]
    return np.array(rows, dtype=float).reshape(len(colors), 5), len(objects) - sum(j is not None for j in order)


def _fill_gaps(positions: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames where a ball was not found (NaN), per ball and axis."""
    out = positions.copy()
    t = np.arange(len(out))
    for i in range(out.shape[1]):
        for axis in range(2):
            col = out[:, i, axis]
            ok = np.isfinite(col)
            if ok.any() and not ok.all():
                out[:, i, axis] = np.interp(t, t[ok], col[ok])
    return out


class RolloutJudge:
    """Reads a completion back and scores it; one judgement per distinct completion, shared by the
    reward functions trl calls one after the other."""

    def __init__(self, lang, tok, ddt, num_frames: int, max_objects: int, source: str, agreement: bool = True,
                 snap_mode: str | None = None, state_only: bool = False,
                 reading_scales: tuple[float, float, float] = rewards.READING_SCALES,
                 reading_weights: tuple[float, float, float] = rewards.READING_WEIGHTS):
        self.lang, self.tok, self.ddt, self.snap_mode = lang, tok, ddt, snap_mode  # snap_mode: the decoder's (None: its own)
        self.num_frames, self.max_objects, self.source = num_frames, max_objects, source
        self.state_only = state_only  # rollouts are <state> blocks (RL config rollout: state)
        self.reading_scales, self.reading_weights = tuple(reading_scales), tuple(reading_weights)
        # decoding a rollout's frames (most of a judgement's time) only when a reward looks at them
        self.decodes = (source != "symbolic" or agreement) and not state_only
        self.cache: dict[tuple, dict] = {}

    def __call__(self, ids: list[int], row: dict) -> dict:
        key = (tuple(ids), json.dumps(row["start"]), row.get("prompt", ""))
        if key not in self.cache:
            if len(self.cache) > 4096:
                self.cache.clear()
            self.cache[key] = self._judge(ids, row)
        return self.cache[key]

    def _judge(self, ids: list[int], row: dict) -> dict:
        from physar.tokenizer.codec import decode_clip

        written = [t for t in self.tok.convert_ids_to_tokens(ids) if t not in (self.tok.pad_token, self.tok.eos_token)]
        # a block given in the prompt (state_from: frames; rollout: field, up to the field) is where the reading starts
        given = given_state_block(split_tokens(row.get("prompt", "")))
        tokens = given + written
        colors = [list(c) for c in row["colors"]]
        broken = {"format_ok": 0.0, "physics": 0.0, "agreement": 0.0, "reading": 0.0}
        if self.state_only and row.get("field") is not None:  # one number: closed by the rest of the reference's block
            block = given + written[:number_length(self.lang, written)] + split_tokens(row["suffix"])
            objects = read_state_block(self.lang, block)
            return broken if objects is None else {**broken, "format_ok": 1.0, "reading": self._field(objects, row)}
        if self.state_only:
            objects = read_state_block(self.lang, tokens)
            return broken if objects is None else {**broken, "format_ok": 1.0, "reading": self._reading(objects, row)}
        try:
            clip = self.lang.parse(tokens, self.num_frames, self.max_objects)
        except LanguageError:
            return broken
        parsed = parse_frames(decode_clip(self.ddt, clip.visual, snap_mode=self.snap_mode), colors) if self.decodes else None
        symbolic, named = None, 1.0
        if self.lang.symbolic:
            order = object_order(clip.objects, colors)
            if None in order and len(clip.objects) >= len(colors):
                # a ball given the wrong colour: judge the balls in the order written, at half credit,
                # so a poor policy's rollouts still differ in reward (GRPO learns nothing from ties)
                order, named = list(range(len(colors))), 0.5
            if None not in order:
                symbolic = clip.positions[:, order]
        if self.source == "symbolic":
            positions, found = symbolic, 1.0
        else:
            positions, found = _fill_gaps(parsed.positions), float(parsed.found.mean())
        physics = 0.0
        if positions is not None and np.isfinite(positions).all():
            full = np.concatenate([np.asarray(row["start"])[None], positions])
            v0 = np.asarray(row["v0"])
            if row["scene"] == "uniform":
                physics = rewards.velocity_reward(full, v0, FRAME_DT)
            elif row["scene"] == "parabola":
                physics = rewards.gravity_reward(full, v0, FRAME_DT)
            else:
                physics = rewards.collision_rewards(full, np.asarray(row["radii"]), v0, FRAME_DT)["collision"]
            physics *= found * named
        agreement = rewards.agreement_reward(parsed.positions, symbolic, parsed.found, self.ddt.config.resolution) \
            if symbolic is not None and parsed is not None else 0.0
        reading = self._reading(clip.objects, row) if self.lang.symbolic else 0.0
        return {"format_ok": 1.0, "physics": float(physics), "agreement": float(agreement), "reading": reading}

    def _field(self, objects: list[dict], row: dict) -> float:
        """rollout: field: 1 / (1 + error / scale) of the one number the rollout wrote (its field's scale)."""
        ball, k = row["field"]
        written = state_array(objects, row["colors"])[0][ball, k]
        return rewards.field_reward(written, row["reading"][ball][k], k, self.reading_scales)

    def _reading(self, objects: list[dict], row: dict) -> float:
        if row.get("reading") is None:
            return 0.0
        reference = np.asarray(row["reading"], dtype=float)
        written, extra = state_array(objects, row["colors"])
        if np.isnan(written).any() and len(objects) >= len(reference):
            # balls given the wrong colours: read in the order written, at half credit, as the physics does
            in_order = np.array([[o[k] for k in STATE_FIELDS] for o in objects[:len(reference)]], dtype=float)
            return 0.5 * rewards.reading_reward(in_order, reference, len(objects) - len(reference),
                                               self.reading_scales, self.reading_weights)
        return rewards.reading_reward(written, reference, extra, self.reading_scales, self.reading_weights)


def grammar_steps(grammar, prompt: tuple[int, ...], completion: tuple[int, ...], drawn: bool,
                  state_only: bool = False) -> list[frozenset | None]:
    """Per completion token of one rollout, the set of tokens the sampler could have chosen there:
    what the grammar (a `GrammarConstraint`, for its language and vocabulary) allowed, or (`drawn`)
    only the token itself for a visual token the renderer drew; None once the sequence is over (or
    where a broken rollout stops being readable, or, `state_only`, after its <state> block)."""
    lang = grammar.lang
    parser, steps = SequenceParser(lang, grammar.num_frames, grammar.max_objects), []
    try:
        for token in given_state_block(grammar.tok.convert_ids_to_tokens(list(prompt))):
            parser.feed(token)
        for token_id in completion:
            if parser.done:
                break
            token = grammar.token_of.get(token_id, "<unk>")
            allowed = parser.allowed()
            steps.append(frozenset({token}) if drawn and lang.is_frame_slot(allowed) else allowed)
            parser.feed(token)
            if state_only and token == "</state>":
                break
    except LanguageError:
        pass  # a truncated or broken rollout: read up to where it breaks
    return steps + [None] * (len(completion) - len(steps))


def decision_mask(steps: list[list[frozenset | None]], decisions_only: bool = True) -> np.ndarray:
    """[B, C] 1 where the policy decided the token (`grammar_steps`: more than one was possible), or
    (not `decisions_only`) wherever `grammar_steps` read one: 0 after the sequence's end or,
    state_only, its <state> block. Most tokens are not decisions: digits the grammar writes
    (positions, gaps), structure, and with drawing every frame's K visual tokens."""
    out = np.zeros((len(steps), max(map(len, steps), default=0)), dtype=np.int64)
    for row, row_steps in enumerate(steps):
        for j, allowed in enumerate(row_steps):
            out[row, j] = allowed is not None and (len(allowed) > 1 or not decisions_only)
    return out


def constrained_trainer():
    """trl's GRPOTrainer for a policy sampled under the physics language's grammar.

    - `constrained` (RL config `logprobs: constrained`): log-probabilities, of the policy and of the
      KL reference, are those of the distribution the sampler drew from, the model's softmax over
      the tokens the grammar allowed there. trl's own are over the whole vocabulary: there a negative
      advantage is most cheaply met by moving mass onto tokens the grammar never lets through, which
      changes nothing the policy does, and the KL, measured on that mass, reached 27-193 nats within
      30-40 steps (configs/rl/cpu_v2_contact.yaml and cpu_v2_contact_decisions.yaml, 2026-11-30).
    - `decisions_only` (`loss_on: decisions`): the loss and KL count only the tokens the policy chose
      (`decision_mask`), through trl's per-token mask for tokens the policy did not write (`tool_mask`).
    - `state_only` (`rollout: state`): rollouts are cut at the longest <state> block; in one with fewer
      balls what follows its </state> is out of the loss and KL, through the same mask.
    """
    import torch
    from trl import GRPOTrainer

    class ConstrainedGRPOTrainer(GRPOTrainer):
        def __init__(self, *args, grammar, drawn: bool, constrained: bool, decisions_only: bool,
                     state_only: bool = False, **kwargs):
            super().__init__(*args, **kwargs)
            self.grammar, self.constrained, self.decisions_only = grammar, constrained, decisions_only
            self.state_only = state_only
            # each rollout's grammar is replayed once, then shared by the decision mask and the policy's,
            # the reference's (and the old policy's) log-probabilities
            self.steps_of_row = functools.lru_cache(maxsize=1024)(
                lambda p, c: grammar_steps(grammar, p, c, drawn, state_only))

        def steps_of(self, prompt_ids, prompt_mask, completion_ids, completion_mask):
            return [self.steps_of_row(tuple(p[pm.bool()].tolist()), tuple(c[cm.bool()].tolist()))
                    for p, pm, c, cm in zip(prompt_ids, prompt_mask, completion_ids, completion_mask)]

        def _generate_and_score_completions(self, inputs):
            out = super()._generate_and_score_completions(inputs)
            if self.decisions_only or self.state_only:
                steps = self.steps_of(out["prompt_ids"], out["prompt_mask"], out["completion_ids"], out["completion_mask"])
                decided = torch.from_numpy(decision_mask(steps, self.decisions_only))
                mask = torch.zeros_like(out["completion_mask"])
                mask[:, :decided.shape[1]] = decided.to(mask)
                if "tool_mask" in out:
                    mask = mask * out["tool_mask"]
                out["tool_mask"] = mask
                out["num_items_in_batch"] = self.accelerator.gather((out["completion_mask"] * mask).sum()).sum()
            return out

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False, **kw):
            if not self.constrained:
                return super()._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **kw)
            completion = input_ids[:, -logits_to_keep:]
            steps = self.steps_of(input_ids[:, :-logits_to_keep], attention_mask[:, :-logits_to_keep],
                                  completion, attention_mask[:, -logits_to_keep:])
            # one mask per distinct allowed set, and each position's index into them (None, past the
            # end: everything, as padding is masked out of the loss anyway)
            sets = list(dict.fromkeys([None] + [a for row in steps for a in row]))
            index = {a: i for i, a in enumerate(sets)}
            where = torch.tensor([[index[a] for a in (row + [None] * logits_to_keep)[:logits_to_keep]]
                                  for row in steps], device=input_ids.device)
            batch_size = batch_size or input_ids.size(0)
            all_logps, all_entropies = [], []
            for start in range(0, input_ids.size(0), batch_size):
                end = min(start + batch_size, input_ids.size(0))
                with self.accelerator.autocast():
                    logits = model(input_ids=input_ids[start:end], attention_mask=attention_mask[start:end]).logits
                logits = logits[:, -logits_to_keep - 1:-1].float() / self.temperature
                vocab = logits.shape[-1]
                table = torch.stack([torch.ones(vocab, dtype=torch.bool) if a is None else self.grammar.mask(a, vocab)
                                     for a in sets]).to(logits.device)
                allowed = table[where[start:end]]
                logps = logits.masked_fill(~allowed, float("-inf")).log_softmax(-1)
                all_logps.append(logps.gather(-1, completion[start:end, :, None]).squeeze(-1))
                if compute_entropy:
                    probs = logps.exp()
                    all_entropies.append(-torch.where(allowed, probs * logps, 0.0).sum(-1))
            logps = torch.cat(all_logps)
            return logps, torch.cat(all_entropies) if compute_entropy else None, None

    return ConstrainedGRPOTrainer


def reward_functions(judge: RolloutJudge, names: list[str]) -> list:
    """One trl reward function per component (trl logs each as rewards/<name>/mean)."""
    def make(name):
        def score(prompts, completions, completion_ids, **columns):
            keys = [k for k in ("scene", "start", "v0", "radii", "colors", "reading", "field", "suffix") if k in columns]
            return [judge(ids, {**{k: columns[k][i] for k in keys}, "prompt": prompts[i]})[name]
                    for i, ids in enumerate(completion_ids)]

        score.__name__ = name
        return score

    return [make(n) for n in names]


def train_rl(config: RLConfig | str | Path, out: str | Path, resume: bool = False, steps: int | None = None,
             progress: bool = True) -> dict:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from physar.lm.drawing import drawn_snap_mode
    from physar.lm.generate import GrammarConstraint, constrain
    from physar.lm.model import load_checkpoint, resolve_checkpoint, save_checkpoint
    from physar.lm.runs import check_run, json_log_callback, start_run
    from physar.tokenizer.codec import load_tokenizer

    cfg = config if isinstance(config, RLConfig) else RLConfig.from_yaml(config)
    if steps is not None:
        cfg.steps = steps
    if not cfg.prompts:
        raise ConfigError("prompts: no dataset folders")
    run = Path(out)
    last = check_run(run, cfg.to_dict(), resume, RLConfig().to_dict())

    _, tok, lang, meta = load_checkpoint(cfg.checkpoint)
    sft_folder = resolve_checkpoint(cfg.checkpoint)
    ddt = load_tokenizer(meta["tokenizer"])
    num_frames = meta["num_frames"] - meta["conditioning_frames"]
    pool = prompt_pool(cfg.prompts, ddt, lang, cfg.mode, cfg.max_prompts, cfg.state_from,
                       cfg.reading_fields if cfg.rollout == "field" else None, progress)
    names = [n for n, w in cfg.reward_weights.items() if w != 0]
    state_only = cfg.rollout in ("state", "field")
    if state_only and not lang.symbolic:
        raise ConfigError(f"rollout: {cfg.rollout} needs a symbolic checkpoint (one that writes a <state> block); "
                          f"{cfg.checkpoint} is visual-only")
    drawn = cfg.draw == "renderer" and not state_only  # a <state> block has no frames to draw
    judge = RolloutJudge(lang, tok, ddt, num_frames, meta["max_objects"], cfg.trajectory, agreement="agreement" in names,
                         snap_mode=drawn_snap_mode(ddt) if drawn else None, state_only=state_only,
                         reading_scales=cfg.reading_scales, reading_weights=cfg.reading_weights)
    start_run(run, cfg.to_dict())
    args = GRPOConfig(
        output_dir=str(run / "trainer"), max_steps=cfg.steps, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.prompts_per_step * cfg.num_generations, num_generations=cfg.num_generations,
        max_completion_length=lang.number_length if cfg.rollout == "field"
        else lang.max_state_length(meta["max_objects"]) if state_only
        else lang.max_completion_length(num_frames, meta["max_objects"]),
        temperature=cfg.temperature, top_k=0, top_p=cfg.top_p, beta=cfg.beta, reward_weights=[cfg.reward_weights[n] for n in names],
        logging_steps=1, save_strategy="steps", save_steps=cfg.save_every, save_total_limit=2, seed=cfg.seed,
        report_to="none", use_cpu=not torch.cuda.is_available(), bf16=False, activation_checkpointing=False,
        model_init_kwargs={"dtype": torch.float32}, disable_tqdm=not progress)
    log_path = run / "log.jsonl"
    # trl builds the policy and the KL reference from the checkpoint folder
    common = dict(model=str(sft_folder), reward_funcs=reward_functions(judge, names), args=args,
                  train_dataset=Dataset.from_list(pool), processing_class=tok, callbacks=[json_log_callback(log_path)])
    if drawn and not lang.symbolic:
        raise ConfigError(f"draw: renderer needs a symbolic checkpoint (it draws the states); {cfg.checkpoint} is visual-only")
    if cfg.loss_on == "decisions" or cfg.logprobs == "constrained" or state_only:
        trainer = constrained_trainer()(**common, grammar=GrammarConstraint(lang, tok, num_frames, meta["max_objects"]),
                                        drawn=drawn, constrained=cfg.logprobs == "constrained",
                                        decisions_only=cfg.loss_on == "decisions", state_only=state_only)
    else:
        trainer = GRPOTrainer(**common)
    constrain(trainer.model, lang, tok, num_frames, meta["max_objects"],
              prefix_from_prompt=cfg.state_from == "frames" or cfg.rollout == "field",
              draw_with=ddt if drawn else None)
    clock = time.time()
    trainer.train(resume_from_checkpoint=str(last) if resume else None)
    info = {**{k: meta[k] for k in ("conditioning_frames", "num_frames", "resolution", "max_objects")},
            "sft_checkpoint": str(sft_folder), "rl_seconds": round(time.time() - clock, 1), "rl": cfg.to_dict(),
            "prompts": len(pool), "config": meta["config"]}
    if trainer.is_world_process_zero():
        save_checkpoint(run / "checkpoint", trainer.model, tok, lang, meta["tokenizer"], info)
        plot_rewards(log_path, run / "rewards.png", names)
    return info


def plot_rewards(log_path: Path, out: Path, names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name in names + ["reward"]:
        key = name if name == "reward" else f"rewards/{name}/mean"
        points = [(r["step"], r[key]) for r in rows if key in r]
        if points:
            ax.plot(*zip(*points), label="total (weighted)" if name == "reward" else name)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean reward")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
