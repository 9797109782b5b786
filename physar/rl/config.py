"""Settings of stage 2 (GRPO with physics rewards), in one YAML file (configs/rl/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from physar.config_file import YamlConfig
from physar.errors import ConfigError
from physar.language import FIELDS
from physar.rl.rewards import READING_SCALES, READING_WEIGHTS

MODES = ("supervised", "label_free")
SOURCES = ("symbolic", "decoded")
ROLLOUTS = ("clip", "state", "field")
STATE_FIELDS = tuple(tag[1:-1] for tag in FIELDS)  # r, x, y, vx, vy: a <state> block's numbers a ball, as the parser names them
REWARDS = ("physics", "agreement", "format_ok", "reading")


@dataclass
class RLConfig(YamlConfig):
    checkpoint: str = "checkpoints/sft_cpu"  # the SFT checkpoint: the policy's start and the KL reference
    prompts: list[str] = field(default_factory=list)  # dataset folders whose conditioning frames are the prompts
    max_prompts: int | None = None  # per folder (an even spread); None: all
    mode: str = "supervised"  # supervised: simulator truth; label_free: only what the conditioning frames show
    trajectory: str = "symbolic"  # read positions from the model's symbolic states, or from its decoded frames
    # who writes the <state> block: the policy (model), or the evaluator's parser from the conditioning
    # frames (frames: the block ends each prompt, as `physar generate --state-from frames` forces it)
    state_from: str = "model"
    # physics: the scene's law over the trajectory; agreement: decoded frames vs symbolic states; format_ok: it
    # parses; reading: the <state> block against what the conditioning frames show (label-free: the evaluator's
    # parser reads them) or against the simulator's state there (supervised)
    reward_weights: dict = field(default_factory=lambda: {"physics": 1.0, "agreement": 0.5, "format_ok": 0.1})
    # what a rollout is: the whole clip, or only the <state> block (the policy's reading of the conditioning
    # frames, ~70 tokens against ~1100: the reading rewarded alone, state_from: model, reward reading)
    # field: one number of the block (a ball's r, x, y, vx or vy), the block before it given as the reference reads
    # it: each field scored alone, so a rollout's advantage is that number's (grpo.field_rows)
    rollout: str = "clip"
    # the block's fields a `rollout: field` pool asks for (each of each ball: one prompt apiece)
    reading_fields: list = field(default_factory=lambda: list(STATE_FIELDS))
    # the reading reward's scales (radius, position in units, velocity in units/s): each field's error at its
    # scale halves that field's share; scales near the policy's errors grade them most steeply
    reading_scales: list = field(default_factory=lambda: list(READING_SCALES))
    # the shares of radius, position and velocity in a ball's reading score (equal by default)
    reading_weights: list = field(default_factory=lambda: list(READING_WEIGHTS))
    # who draws each rollout frame's visual tokens: the policy (lm), or the renderer from the policy's
    # states (renderer: as `physar generate --draw renderer`, so rollouts are the videos it is judged by)
    draw: str = "lm"
    # which completion tokens the GRPO loss and KL count: all, or only the policy's decisions (tokens
    # where the grammar allowed more than one and the renderer did not draw: grpo.decision_mask)
    loss_on: str = "all"
    # the log-probabilities of GRPO's ratio and KL: over the whole vocabulary (raw, trl's), or over the
    # tokens the grammar allowed at each step (constrained: the distribution the rollouts were drawn from)
    logprobs: str = "raw"
    num_generations: int = 4  # group size G
    prompts_per_step: int = 2
    beta: float = 0.04  # KL to the SFT reference
    learning_rate: float = 1e-5
    temperature: float = 1.0
    # nucleus sampling of the rollouts (after the grammar and the temperature): < 1 keeps the tokens the policy is sure
    # of fixed and varies the uncertain ones (at temperature 1.0-1.2 v11's groups were all alike, at 1.5 they blundered)
    top_p: float = 1.0
    steps: int = 100
    save_every: int = 25
    seed: int = 0

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{key}: {why}")

        if self.mode not in MODES:
            bad("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.trajectory not in SOURCES:
            bad("trajectory", f"must be one of {', '.join(SOURCES)}, got {self.trajectory!r}")
        if self.state_from not in ("model", "frames"):
            bad("state_from", f"must be 'model' or 'frames', got {self.state_from!r}")
        if self.rollout not in ROLLOUTS:
            bad("rollout", f"must be one of {', '.join(ROLLOUTS)}, got {self.rollout!r}")
        if self.rollout in ("state", "field"):
            if self.state_from != "model":
                bad("rollout", f"{self.rollout} rollouts are the policy's own <state> block: they need state_from: model")
            judged = sorted(n for n in ("physics", "agreement") if self.reward_weights.get(n, 0))
            if judged:
                bad("reward_weights", f"{', '.join(judged)} judge(s) the frames, which state rollouts do not write; "
                                      "weigh reading and format_ok")
        if not self.reading_fields or set(self.reading_fields) - set(STATE_FIELDS):
            bad("reading_fields", f"one or more of {', '.join(STATE_FIELDS)}, got {self.reading_fields}")
        if self.draw not in ("lm", "renderer"):
            bad("draw", f"must be 'lm' or 'renderer', got {self.draw!r}")
        if self.loss_on not in ("all", "decisions"):
            bad("loss_on", f"must be 'all' or 'decisions', got {self.loss_on!r}")
        if self.logprobs not in ("raw", "constrained"):
            bad("logprobs", f"must be 'raw' or 'constrained', got {self.logprobs!r}")
        if self.num_generations < 2:
            bad("num_generations", f"GRPO needs groups of at least 2, got {self.num_generations}")
        for key in ("prompts_per_step", "steps", "save_every"):
            if getattr(self, key) < 1:
                bad(key, f"must be >= 1, got {getattr(self, key)}")
        if not 0 < self.top_p <= 1:
            bad("top_p", f"must be in (0, 1], got {self.top_p}")
        if self.beta < 0 or self.learning_rate <= 0 or self.temperature <= 0:
            bad("beta" if self.beta < 0 else "learning_rate" if self.learning_rate <= 0 else "temperature",
                "must be positive")
        if len(self.reading_scales) != 3 or not all(s > 0 for s in self.reading_scales):
            bad("reading_scales", f"three positive scales (radius, position, velocity), got {self.reading_scales}")
        if len(self.reading_weights) != 3 or min(self.reading_weights) < 0 or sum(self.reading_weights) <= 0:
            bad("reading_weights", f"three weights >= 0, not all 0 (radius, position, velocity), got {self.reading_weights}")
        unknown = set(self.reward_weights) - set(REWARDS)
        if unknown:
            bad("reward_weights", f"unknown reward {', '.join(sorted(unknown))} ({', '.join(REWARDS)})")
