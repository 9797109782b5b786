"""The LM: a Llama built from the config, or a local Hugging Face causal LM with its vocabulary
extended by the physics language; and the checkpoint format that ties it to its DDT tokenizer.

A checkpoint folder holds the model and tokenizer (`save_pretrained`) and `physar.json`: the
language settings, the DDT tokenizer (a path, relative to the folder when it can be), the clip
geometry it was trained on, and the run's summary.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from physar.errors import CheckpointError, ConfigError
from physar.language import OPTIONS as LANGUAGE_OPTIONS, PhysicsLanguage
from physar.lm.config import LMConfig

PHYSAR_FILE = "physar.json"


def build_tokenizer(lang: PhysicsLanguage, base_model: str | Path | None = None):
    """The language's own word-level tokenizer, or the base model's tokenizer with the language's
    tokens added (so text keeps its meaning and every physics token is one id)."""
    if base_model is None:
        return lang.build_tokenizer()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_model)
    special = {"eos_token": "<eos>"} if tok.eos_token is None else {}
    if tok.pad_token is None:
        special["pad_token"] = "<pad>"
    if tok.bos_token is None:
        special["bos_token"] = "<bos>"
    tok.add_special_tokens(special)
    tok.add_tokens([t for t in lang.vocab if t not in ("<pad>", "<bos>", "<eos>", "<unk>")])
    tok.padding_side = "left"
    return tok


def build_model(cfg: LMConfig, tok, fsq_levels: list[int] | None = None, fine_fsq_levels: list[int] | None = None):
    """A fresh Llama of the config's size over `tok`'s vocabulary, or cfg.base_model resized to it.
    With cfg.visual_embeddings "codes", the visual tokens' new embeddings start from the DDT
    tokenizer's FSQ levels (`fsq_levels`), and the keypoint tokens' (<k0> ..., cfg.keypoint_tokens)
    from its fine FSQ's (`fine_fsq_levels`: a keypoint's x and y levels); rows a base model already
    had are kept."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    new_rows_from = 0  # the embedding rows this call creates (a base model's own rows stay as trained)
    if cfg.base_model:
        model = AutoModelForCausalLM.from_pretrained(cfg.base_model, dtype=torch.float32)
        new_rows_from = model.get_input_embeddings().weight.shape[0]
        model.resize_token_embeddings(len(tok))
        if getattr(model.config, "max_position_embeddings", cfg.max_length) < cfg.max_length:
            model.config.max_position_embeddings = cfg.max_length  # rotary positions: longer is only a setting
    else:
        torch.manual_seed(cfg.seed)
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=len(tok), hidden_size=cfg.hidden_size, num_hidden_layers=cfg.num_layers,
            num_attention_heads=cfg.num_heads, num_key_value_heads=cfg.num_heads,
            intermediate_size=cfg.intermediate_size, max_position_embeddings=cfg.max_length,
            tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id))
    if cfg.visual_embeddings == "codes":
        from physar.lm.visual_embeddings import init_visual_embeddings

        if not fsq_levels:
            raise ConfigError("visual_embeddings: 'codes' needs the DDT tokenizer's fsq_levels")
        visual = tok.convert_tokens_to_ids([f"<v{i}>" for i in range(math.prod(fsq_levels))])
        std = getattr(model.config, "initializer_range", 0.02)
        init_visual_embeddings(model.get_input_embeddings(), visual, fsq_levels, seed=cfg.seed, std=std,
                               keep_below=new_rows_from)
        if cfg.keypoint_tokens:
            if not fine_fsq_levels:
                raise ConfigError("keypoint_tokens with visual_embeddings 'codes' needs the DDT tokenizer's fine_fsq_levels")
            keypoint = tok.convert_tokens_to_ids([f"<k{i}>" for i in range(math.prod(fine_fsq_levels))])
            init_visual_embeddings(model.get_input_embeddings(), keypoint, fine_fsq_levels, seed=cfg.seed + 1, std=std,
                                   keep_below=new_rows_from)
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    return model


def language_info(lang: PhysicsLanguage) -> dict:
    return {"codebook_size": lang.codebook_size, "tokens_per_frame": lang.tokens_per_frame, "fine_tokens": lang.fine_tokens,
            **{k: getattr(lang, k) for k in LANGUAGE_OPTIONS}}


def _relative(path: Path, start: Path) -> str:
    try:
        return os.path.relpath(path.resolve(), start.resolve())
    except ValueError:  # another drive
        return str(path.resolve())


def save_checkpoint(folder: str | Path, model, tok, lang: PhysicsLanguage, tokenizer_path: str | Path, info: dict) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    meta = {"language": language_info(lang), "tokenizer": _relative(Path(tokenizer_path), folder), **info}
    (folder / PHYSAR_FILE).write_text(json.dumps(meta, indent=1))


GENERATION_DEFAULTS = {"state_from": "model", "draw": "lm"}


def generation_settings(meta: dict, state_from: str | None = None, draw: str | None = None) -> tuple[str, str]:
    """Who reads the <state> block and who draws the frames: as asked, else the checkpoint's own
    setting (physar.json "generation", written where a checkpoint is shipped to run so, as Hugging
    Face keeps a model's decoding defaults in generation_config.json), else the LM for both."""
    own = {**GENERATION_DEFAULTS, **meta.get("generation", {})}
    return state_from or own["state_from"], draw or own["draw"]


def resolve_checkpoint(folder: str | Path) -> Path:
    """A checkpoint folder, or a run folder holding checkpoint/ -> the checkpoint folder."""
    folder = Path(folder)
    if (folder / "checkpoint" / PHYSAR_FILE).is_file():
        folder = folder / "checkpoint"
    if not (folder / PHYSAR_FILE).is_file():
        raise CheckpointError(f"{folder}: not a Phys-AR LM checkpoint (no {PHYSAR_FILE})")
    return folder


def tokenizer_folder(folder: str | Path) -> Path:
    """The DDT tokenizer folder an LM checkpoint (or a run folder holding checkpoint/) names in its
    physar.json, resolved; CheckpointError when it is missing."""
    folder = resolve_checkpoint(folder)
    ddt = (folder / json.loads((folder / PHYSAR_FILE).read_text())["tokenizer"]).resolve()
    if not (ddt / "config.json").is_file():
        raise CheckpointError(f"{folder}: its DDT tokenizer {ddt} is missing")
    return ddt


def load_checkpoint(folder: str | Path):
    """(model, tok, lang, meta) of a checkpoint folder, or of a run folder holding checkpoint/;
    meta["tokenizer"] is resolved to the DDT tokenizer's folder."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()  # "Loading weights" bars, one per load
    folder = resolve_checkpoint(folder)
    meta = json.loads((folder / PHYSAR_FILE).read_text())
    # the first checkpoints: no scene token, numbers most significant digit first
    lang = PhysicsLanguage(**{"scene_token": False, "little_endian": False, **meta["language"]})
    tok = AutoTokenizer.from_pretrained(folder)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    if model.get_input_embeddings().weight.shape[0] < len(tok):
        raise CheckpointError(f"{folder}: the model has {model.get_input_embeddings().weight.shape[0]} embeddings "
                              f"for {len(tok)} tokens")
    meta["tokenizer"] = str(tokenizer_folder(folder))
    return model, tok, lang, meta
