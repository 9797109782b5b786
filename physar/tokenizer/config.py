"""The tokenizer's configuration: architecture and training settings in one YAML file."""

from __future__ import annotations

from dataclasses import dataclass, field

from physar.config_file import YamlConfig
from physar.errors import ConfigError


# the parts of the model a config may freeze (model.py attribute names)
FROZEN_PARTS = ("encoder", "code_in", "token_pos", "context_norm", "null_token", "decoder", "renderer",
                "fine_encoder", "fine_code_in", "radius_encoder")
SNAP_MODES = ("paste", "shift", "disc")  # keypoints.snap_to_keypoints


@dataclass
class TokenizerConfig(YamlConfig):
    # frames and tokens
    resolution: int = 64
    num_tokens: int = 8  # K tokens per frame, fine ones included
    fsq_levels: list[int] = field(default_factory=lambda: [8, 8, 8, 8])  # codebook = prod = 4096
    # fine tokens: the finest `fine_tokens` indices (0 .. M-1) come from a second encoder whose FSQ has
    # fewer, finer dimensions (the same number of ids, so one vocabulary serves both); the other
    # K - M are the coarse encoder's (model.py, "Fine tokens")
    fine_tokens: int = 0
    fine_fsq_levels: list[int] = field(default_factory=lambda: [64, 64])
    # "transformer": the fine tokens come from a FrameEncoder with their own FSQ; "keypoints": from P = fine_tokens / 2
    # keypoints (a spatial soft-argmax), each written as a hi and a lo token of fine_fsq_levels [L, L] (keypoints.py)
    fine_encoder: str = "transformer"
    keypoint_loss_weight: float = 0.0  # keypoint p toward the centre of palette colour p's ball (keypoints.py)
    # keypoints with radius tokens: fine_tokens = 3P, each keypoint's ball radius (pixels, 0..max_radius) also written as
    # one token of fine_fsq_levels (a coarse and a fine digit), at the lowest indices (keypoints.py, RadiusEncoder)
    radius_tokens: bool = False
    max_radius: float = 16.0
    radius_loss_weight: float = 0.0  # the radius encoder's ball masks toward palette colour p's pixels (keypoints.py)
    snap_to_keypoints: bool = False  # move each drawn ball so that its centre is its keypoint (keypoints.py)
    # "paste": the ball moves whole; "disc": a ball wholly in view drawn anew at its keypoint and radius tokens
    # (radius tokens needed); "shift": the pixels near its drawn centre (before 2026-12-01)
    snap_mode: str = "paste"
    # with radius tokens: a ball drawn within this many pixels of its radius is pasted unscaled (resampling a
    # ball to a slightly other size blurs its rim, which moves the threshold parser's centre a little a frame)
    snap_radius_tolerance: float = 0.0
    # > 0: a convolutional refiner of this width corrects the renderer's frame, reading each keypoint's distance map
    refiner_channels: int = 0
    # parts that keep their (--init) weights: any of FROZEN_PARTS; "encoder" keeps the coarse ids of the checkpoint
    frozen: list[str] = field(default_factory=list)
    renderer_sees_fine: bool = True  # False: the renderer draws from the coarse tokens; the fine ones act after it (snap, refiner)
    # encoder: conv stem to an 8x8 grid, then a transformer over [patches; K queries]
    encoder_channels: list[int] = field(default_factory=lambda: [32, 64, 128])
    encoder_dim: int = 128
    encoder_layers: int = 4
    encoder_heads: int = 4
    # extra input channels of the encoder and both decoders: sin and cos of x and y at these periods
    # (in pixels), so a sub-pixel position can be written as phases, digit by digit (model.py)
    coordinate_periods: list[float] = field(default_factory=list)
    context_dim: int = 128  # width of the token embeddings the decoders cross-attend to
    # diffusion decoder and one-step renderer: diffusers UNet2DConditionModel, pixel space
    unet_channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])
    unet_cross_attention_levels: int = 2  # cross-attention in the last (coarsest) levels
    unet_head_dim: int = 32
    global_conditioning: bool = True  # also add the flattened visible tokens to the timestep embedding
    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "v_prediction"
    # training
    batch_size: int = 32
    learning_rate: float = 3e-4
    weight_decay: float = 0.0
    steps: int = 4000
    warmup_steps: int = 200
    condition_dropout: float = 0.1  # all tokens hidden (unconditional), as Selftok
    nested_dropout: float = 0.3  # keep only the first n tokens in LM order, so prefixes decode
    renderer_weight: float = 1.0
    ball_pixel_weight: float = 4.0  # extra loss weight on non-background pixels (balls are small)
    parser_loss_weight: float = 0.0  # the renderer's soft-parser centre and radius error (parser_loss.py)
    parser_loss_sharpness: float = 8.0  # width of the soft colour threshold, in 0..255 units
    eval_every: int = 250
    save_every: int = 250
    eval_frames: int = 64
    seed: int = 0

    @property
    def codebook_size(self) -> int:
        return _product(self.fsq_levels)

    @property
    def coarse_tokens(self) -> int:
        return self.num_tokens - self.fine_tokens

    @property
    def has_keypoints(self) -> bool:
        """Whether the fine tokens are keypoint tokens (keypoints.py)."""
        return bool(self.fine_tokens) and self.fine_encoder == "keypoints"

    @property
    def num_keypoints(self) -> int:
        """P: with keypoints, fine_tokens = 2P (hi, lo), or 3P with radius tokens."""
        return self.fine_tokens // (3 if self.radius_tokens else 2)

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{key}: {why}")

        if self.resolution < 16 or self.resolution % 8:
            bad("resolution", f"must be a multiple of 8, at least 16, got {self.resolution}")
        if self.num_tokens < 1:
            bad("num_tokens", f"must be >= 1, got {self.num_tokens}")
        if not self.fsq_levels or any(int(x) < 2 for x in self.fsq_levels):
            bad("fsq_levels", f"each level must be >= 2, got {self.fsq_levels}")
        if not 0 <= self.fine_tokens < self.num_tokens:
            bad("fine_tokens", f"must be in 0..num_tokens - 1 ({self.num_tokens - 1}), got {self.fine_tokens}")
        if self.fine_tokens:
            if not self.fine_fsq_levels or any(int(x) < 2 for x in self.fine_fsq_levels):
                bad("fine_fsq_levels", f"each level must be >= 2, got {self.fine_fsq_levels}")
            if _product(self.fine_fsq_levels) != self.codebook_size:
                bad("fine_fsq_levels", f"must make as many ids as fsq_levels ({self.codebook_size}), so one vocabulary "
                                       f"serves both, got {_product(self.fine_fsq_levels)}")
            if self.fine_encoder not in ("transformer", "keypoints"):
                bad("fine_encoder", f"must be 'transformer' or 'keypoints', got {self.fine_encoder!r}")
            per_keypoint = 3 if self.radius_tokens else 2
            if self.fine_encoder == "keypoints" and (self.fine_tokens % per_keypoint or len(self.fine_fsq_levels) != 2
                                                     or self.fine_fsq_levels[0] != self.fine_fsq_levels[1]):
                bad("fine_encoder", f"keypoints need fine_tokens a multiple of {per_keypoint} (a hi and a lo token a "
                                    f"keypoint{', and a radius token' if self.radius_tokens else ''}) and "
                                    f"fine_fsq_levels [L, L], got {self.fine_tokens} and {self.fine_fsq_levels}")
        elif "encoder" in self.frozen:
            bad("frozen", "freezing the only encoder leaves nothing to learn the tokens: set fine_tokens too")
        if self.radius_tokens and not self.has_keypoints:
            bad("radius_tokens", "radius tokens belong to keypoints: set fine_tokens and fine_encoder: keypoints")
        if self.max_radius <= 0:
            bad("max_radius", f"must be positive, got {self.max_radius}")
        if self.radius_loss_weight < 0:
            bad("radius_loss_weight", f"must be >= 0, got {self.radius_loss_weight}")
        unknown = [f for f in self.frozen if f not in FROZEN_PARTS]
        if unknown:
            bad("frozen", f"unknown part {unknown[0]!r}; choose from {', '.join(FROZEN_PARTS)}")
        absent = [f for f in self.frozen if f in ("fine_encoder", "fine_code_in") and not self.fine_tokens
                  or f == "radius_encoder" and not self.radius_tokens]
        if absent:
            bad("frozen", f"this config has no {absent[0]} (it comes with fine_tokens / radius_tokens)")
        if not self.renderer_sees_fine and not (self.refiner_channels or self.snap_to_keypoints):
            bad("renderer_sees_fine", "false needs snap_to_keypoints or a refiner, the fine tokens' only way in")
        if self.snap_mode not in SNAP_MODES:
            bad("snap_mode", f"must be one of {SNAP_MODES}")
        if self.snap_radius_tolerance < 0:
            bad("snap_radius_tolerance", "must be at least 0 pixels")
        if self.snap_to_keypoints and not self.has_keypoints:
            bad("snap_to_keypoints", "needs keypoints: set fine_tokens and fine_encoder: keypoints")
        if self.refiner_channels < 0 or self.refiner_channels and not self.has_keypoints:
            bad("refiner_channels", "a refiner reads keypoints: set fine_tokens and fine_encoder: keypoints")
        if len(self.encoder_channels) < 1 or self.resolution % 2 ** len(self.encoder_channels):
            bad("encoder_channels", "the stem halves the frame once per entry; the resolution must divide")
        if not 0 < self.unet_cross_attention_levels <= len(self.unet_channels):
            bad("unet_cross_attention_levels", f"must be in 1..{len(self.unet_channels)}")
        for key in ("condition_dropout", "nested_dropout"):
            if not 0 <= getattr(self, key) < 1:
                bad(key, f"must be in [0, 1), got {getattr(self, key)}")
        for key in ("batch_size", "steps", "eval_every", "save_every", "eval_frames", "encoder_dim", "context_dim"):
            if getattr(self, key) < 1:
                bad(key, f"must be >= 1, got {getattr(self, key)}")
        if any(float(p) <= 2 for p in self.coordinate_periods):
            bad("coordinate_periods", f"each period must be more than 2 pixels (at 2, sin is 0 at every pixel), "
                                      f"got {self.coordinate_periods}")
        if self.keypoint_loss_weight < 0:
            bad("keypoint_loss_weight", f"must be >= 0, got {self.keypoint_loss_weight}")
        if self.parser_loss_weight < 0:
            bad("parser_loss_weight", f"must be >= 0, got {self.parser_loss_weight}")
        if self.parser_loss_sharpness <= 0:
            bad("parser_loss_sharpness", f"must be positive, got {self.parser_loss_sharpness}")
        if self.learning_rate <= 0:
            bad("learning_rate", f"must be positive, got {self.learning_rate}")


def _product(levels: list[int]) -> int:
    n = 1
    for level in levels:
        n *= int(level)
    return n
