"""Settings of the LM and its supervised fine-tuning, in one YAML file (configs/lm/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from physar.config_file import YamlConfig
from physar.errors import ConfigError
from physar.language import OPTIONS as LANGUAGE_OPTIONS, LanguageError, PhysicsLanguage


@dataclass
class LMConfig(YamlConfig):
    # data: tokenized dataset folders (`physar tokenizer encode`), and the DDT tokenizer that made the tokens
    data: list[str] = field(default_factory=list)
    tokenizer: str = "checkpoints/ddt_cpu"
    token_file: str = "ddt"  # DATA_DIR/tokens/<token_file>.safetensors
    eval_clips: int = 96  # clips held out (spread over the folders) for the eval loss
    # the physics language
    symbolic: bool = True  # False: the visual-only ablation
    scene_token: bool = True  # the prompt names the scene (uniform, collision, parabola): see physar/language.py
    decimals: int = 2
    little_endian: bool = True  # numbers least significant digit first (physar/language.py)
    frame_velocity: bool = False  # every frame writes each ball's velocity beside its position (physar/language.py)
    frame_displacement: bool = False  # every frame writes each ball's step since the last frame, then its position
    state_steps: bool = False  # with frame_displacement: the <state> block's velocities as steps per frame
    # with both: every frame writes each ball's change of step (acceleration x dt^2); steps and positions summed
    frame_acceleration: bool = False
    # with it, for collisions (physar/language.py): each frame of a clip with several balls begins with
    # the balls' free-flight gap (contact_gap); a collision's change written whole in one frame (whole_jumps)
    contact_gap: bool = False
    whole_jumps: bool = False
    signed_changes: bool = False  # a change that is not zero begins with its sign, <+> or <-> (the decision first)
    relative_steps: bool = False  # with contact_gap: where the gap is negative, the steps relative to the centre of mass
    relative_jumps: bool = False  # with relative_steps: there each ball writes its new relative step, not its change
    relative_per_ball: bool = False  # with relative_steps: each ball's relative step inside its own <p>, not all after <rel>
    restitution_jumps: bool = False  # with relative_steps: there each ball writes the factor of its relative step (-1: elastic)
    normal_rel: bool = False  # with restitution_jumps: <rel> writes one number a ball along the line of centres, one factor a ball
    contact_timing: bool = False  # with restitution_jumps: a collision frame's positions take the old step up to the contact
    # the <state> block's numbers most significant digit first (the frames' stay little-endian; physar/language.py)
    state_big_endian: bool = False
    # a keypoint tokenizer's keypoint and radius tokens written as tokens of their own, <k0> ... (physar/language.py);
    # with visual_embeddings "codes" their embeddings start from the keypoint's coordinate levels
    keypoint_tokens: bool = False
    # the reading task: up to this many extra examples per training clip, each a random window of
    # frames -> the <state> block at its last frame (physar/lm/sequences.py); batched by length
    reading_examples: int = 0
    # the collision task: this many extra copies of each training clip's collision, each the clip up
    # to the frame that writes its jump as the prompt and that frame's per-ball changes as the
    # completion (physar/lm/sequences.py jump_examples); 0: none
    jump_examples: int = 0
    # the model: a Llama built from these sizes, or base_model (a local Hugging Face causal LM folder)
    base_model: str | None = None
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 768
    # how the visual tokens' embeddings start: "random" (as every other token), or "codes" (from the
    # DDT id's FSQ levels, so ids a level apart start close: physar/lm/visual_embeddings.py)
    visual_embeddings: str = "random"
    max_length: int = 1280  # longest prompt + completion, in tokens
    # each batch from one length bucket (mostly one scene), batches in random order: less padding when
    # the scenes' lengths differ much (physar/lm/batching.py; always on with reading_examples)
    group_by_length: bool = False
    # training (trl SFTTrainer)
    batch_size: int = 8
    gradient_accumulation: int = 1
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 100
    steps: int = 2000
    eval_every: int = 250
    save_every: int = 250
    seed: int = 0

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{key}: {why}")

        if not isinstance(self.data, list):
            bad("data", "must be a list of dataset folders")
        for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_length", "batch_size",
                    "gradient_accumulation", "steps", "eval_every", "save_every"):
            if getattr(self, key) < 1:
                bad(key, f"must be >= 1, got {getattr(self, key)}")
        if self.hidden_size % self.num_heads:
            bad("hidden_size", f"{self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if not 0 <= self.decimals <= 4:
            bad("decimals", f"must be in 0..4, got {self.decimals}")
        for key in ("eval_clips", "warmup_steps", "reading_examples", "jump_examples"):
            if getattr(self, key) < 0:
                bad(key, f"must be >= 0, got {getattr(self, key)}")
        # the language options' rules are the language's own: build one and report what it refuses
        try:
            PhysicsLanguage(1, 1, **{k: getattr(self, k) for k in LANGUAGE_OPTIONS})
        except LanguageError as e:
            raise ConfigError(f"language options: {e}") from None
        if self.reading_examples and not self.symbolic:
            bad("reading_examples", "needs the symbolic format (the visual-only one has no <state> block to read into)")
        if self.jump_examples and not (self.frame_acceleration and self.signed_changes):
            bad("jump_examples", "needs frame_acceleration and signed_changes (a signed change marks the frame of a jump)")
        if self.visual_embeddings not in ("random", "codes"):
            bad("visual_embeddings", f"must be 'random' or 'codes', got {self.visual_embeddings!r}")
        if self.learning_rate <= 0:
            bad("learning_rate", f"must be positive, got {self.learning_rate}")
