"""The DDT tokenizer: frame -> K discrete tokens -> frame.

    encoder      conv stem to a coarse grid, then a transformer over [patches; K queries], each
                 query a learned embedding plus a linear read of the whole feature map
    FSQ          each query -> one of prod(fsq_levels) token ids
    context      token codes -> embeddings (+ position), masked ones zeroed, plus a null token
                 that is always visible (a fully masked attention row would otherwise leak)
    decoder      diffusers UNet2DConditionModel: denoises x_t (v-prediction) cross-attending to
                 the tokens visible at t, k(t) from `schedule.visible_mask`
    renderer     a second UNet of the same shape: tokens -> frame in one deterministic step
                 (Selftok's renderer), for fast and precise decoding

Both UNets also get two coordinate channels, so they know where each pixel is (placing a ball
to a fraction of a pixel is the whole job here), and the visible tokens, flattened, through
their timestep embedding.

Fine tokens (`fine_tokens` M > 0): the finest indices 0 .. M-1 come from a second encoder whose
FSQ has fewer, finer dimensions (`fine_fsq_levels`, e.g. [64, 64]: the same 4096 ids as
[8, 8, 8, 8], so the LM's vocabulary serves both). With 8 levels a code dimension steps a large
fraction of the frame, so a coordinate to a tenth of a pixel has to be written like digits across
dimensions, which the coarse encoder never learned (its codes hold a ball to about 0.4 px,
checkpoints/ddt_cpu_v2/README.md). The second encoder is a FrameEncoder (`fine_encoder:
transformer`) or keypoints (`keypoints`: a spatial soft-argmax, each keypoint a hi and a lo token,
keypoints.py). With `frozen: [encoder]` the coarse encoder keeps its weights, so a tokenizer grown
from a shipped one (`--init`) writes the same coarse ids as it and the LM's sequences keep their
coarse tokens; the fine ones come last in the LM's order (coarse to fine).

Snap (`snap_to_keypoints`, with keypoints): each decoded ball is moved so that its centre is its
keypoint (keypoints.py), and with radius tokens (`radius_tokens`, the lowest indices) scaled to its
radius, or drawn anew where the decoder lost it; a refiner (`refiner_channels` > 0) is a learned
alternative that reads each keypoint's distance map. With `renderer_sees_fine: false` the renderer
draws from the coarse tokens alone, so a frozen renderer draws exactly what the checkpoint drew
before the snap.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from physar.tokenizer.config import TokenizerConfig
from physar.errors import CheckpointError
from physar.tokenizer.fsq import FSQ
from physar.tokenizer.keypoints import (KeypointEncoder, RadiusEncoder, distance_maps, fixed_point_digits,
                                       from_fixed_point, keypoint_digits, keypoint_loss, keypoints_from_digits,
                                       mask_radii, radius_loss, snap_to_keypoints)
from physar.tokenizer.parser_loss import parser_loss
from physar.tokenizer.schedule import coarsest_mask, visible_mask

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def coordinate_channels(batch: int, size: int, device=None, periods=()) -> torch.Tensor:
    """[B, 2 + 4 len(periods), H, W]: x and y of every pixel centre in [-1, 1], then for each period
    P (pixels) sin and cos of 2 pi x / P and of 2 pi y / P (x, y the pixel's column and row).

    Why the periodic ones: FSQ writes each code dimension with a few levels (8), so a position to a
    tenth of a pixel must be spread over several dimensions like digits, and a digit is a sawtooth
    of the position, which a network reading linear coordinates makes badly (the v2 codes hold the
    ball to 0.41 px, checkpoints/ddt_cpu_v2/README.md). Summed over a ball's pixels, sin and cos at
    period P give the phase of its centre modulo P, a smooth function of these channels; a few
    periods (16, 6, 3 px) are the digits, and the decoders read the same channels to draw there."""
    axis = torch.linspace(-1.0, 1.0, size, device=device)
    ys, xs = torch.meshgrid(axis, axis, indexing="ij")
    channels = [xs, ys]
    pixels = torch.arange(size, dtype=torch.float32, device=device)
    rows, cols = torch.meshgrid(pixels, pixels, indexing="ij")
    for period in periods:
        for grid in (cols, rows):
            angle = 2 * torch.pi * grid / float(period)
            channels += [torch.sin(angle), torch.cos(angle)]
    return torch.stack(channels)[None].expand(batch, -1, -1, -1)


def coordinate_channel_count(cfg: TokenizerConfig) -> int:
    return 2 + 4 * len(cfg.coordinate_periods)


class FrameEncoder(nn.Module):
    """Frame [B, 3, H, W] in [-1, 1] -> `num_queries` continuous code vectors [B, num_queries, code_dim]."""

    def __init__(self, cfg: TokenizerConfig, code_dim: int, num_queries: int):
        super().__init__()
        layers, channels = [], 3 + coordinate_channel_count(cfg)  # RGB + coordinates
        for c in cfg.encoder_channels:
            layers += [nn.Conv2d(channels, c, 3, padding=1), nn.GroupNorm(8, c), nn.SiLU(),
                       nn.Conv2d(c, c, 4, stride=2, padding=1), nn.SiLU()]
            channels = c
        layers.append(nn.Conv2d(channels, cfg.encoder_dim, 1))
        self.stem = nn.Sequential(*layers)
        self.periods = tuple(cfg.coordinate_periods)
        grid = cfg.resolution // 2 ** len(cfg.encoder_channels)
        self.patch_pos = nn.Parameter(torch.randn(grid * grid, cfg.encoder_dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(num_queries, cfg.encoder_dim) * 0.02)
        # Each query also starts from a linear read of the whole feature map. Learned queries alone
        # average 64 mostly-background patches: their outputs barely depend on the frame at
        # initialisation, FSQ rounds that away, and the codes collapse to one id per position
        # (measured: 1 distinct id over 240 frames after 500 steps).
        self.map_reduce = nn.Conv2d(cfg.encoder_dim, 16, 1)
        self.map_to_queries = nn.Linear(16 * grid * grid, num_queries * cfg.encoder_dim)
        block = nn.TransformerEncoderLayer(cfg.encoder_dim, cfg.encoder_heads, 4 * cfg.encoder_dim, dropout=0.0,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(block, cfg.encoder_layers, enable_nested_tensor=False)
        self.out = nn.Sequential(nn.LayerNorm(cfg.encoder_dim), nn.Linear(cfg.encoder_dim, code_dim))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b = frames.shape[0]
        x = torch.cat([frames, coordinate_channels(b, frames.shape[-1], frames.device, self.periods)], 1)
        features = self.stem(x)
        patches = features.flatten(2).transpose(1, 2) + self.patch_pos
        queries = self.queries + self.map_to_queries(self.map_reduce(features).flatten(1)).view(b, *self.queries.shape)
        h = self.transformer(torch.cat([patches, queries], 1))
        return self.out(h[:, patches.shape[1]:])


def _unet(cfg: TokenizerConfig):
    from diffusers import UNet2DConditionModel

    n, attn = len(cfg.unet_channels), cfg.unet_cross_attention_levels
    down = ["DownBlock2D"] * (n - attn) + ["CrossAttnDownBlock2D"] * attn
    up = ["CrossAttnUpBlock2D"] * attn + ["UpBlock2D"] * (n - attn)
    return UNet2DConditionModel(
        sample_size=cfg.resolution, in_channels=3 + coordinate_channel_count(cfg), out_channels=3,
        cross_attention_dim=cfg.context_dim,
        block_out_channels=tuple(cfg.unet_channels), layers_per_block=1, attention_head_dim=cfg.unet_head_dim,
        norm_num_groups=min(16, cfg.unet_channels[0]), down_block_types=tuple(down), up_block_types=tuple(up),
        # the visible tokens, flattened, are also added to the timestep embedding, which reaches every
        # ResNet block at every resolution: cross-attention alone reaches only the coarse levels and
        # takes thousands of steps to start using the tokens
        class_embed_type="projection" if cfg.global_conditioning else None,
        projection_class_embeddings_input_dim=cfg.num_tokens * cfg.context_dim if cfg.global_conditioning else None,
    )


class DDTTokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig):
        super().__init__()
        self.config = config
        self.fsq = FSQ(list(config.fsq_levels))
        self.encoder = FrameEncoder(config, self.fsq.dim, config.coarse_tokens)
        self.code_in = nn.Linear(self.fsq.dim, config.context_dim)
        self.fine_fsq = FSQ(list(config.fine_fsq_levels)) if config.fine_tokens else None
        if config.has_keypoints:
            self.fine_encoder = KeypointEncoder(3 + coordinate_channel_count(config), config.num_keypoints)
        elif config.fine_tokens:
            self.fine_encoder = FrameEncoder(config, self.fine_fsq.dim, config.fine_tokens)
        if config.radius_tokens:
            self.radius_encoder = RadiusEncoder(3 + coordinate_channel_count(config), config.num_keypoints)
        if config.fine_tokens:
            # two layers: a LayerNorm after one linear map of a 2-d code would keep only its direction
            self.fine_code_in = nn.Sequential(nn.Linear(self.fine_fsq.dim, config.context_dim), nn.SiLU(),
                                              nn.Linear(config.context_dim, config.context_dim))
        self.code_dim = max(self.fsq.dim, self.fine_fsq.dim if self.fine_fsq is not None else 0)
        self.token_pos = nn.Parameter(torch.randn(config.num_tokens, config.context_dim) * 0.02)
        self.context_norm = nn.LayerNorm(config.context_dim)
        self.null_token = nn.Parameter(torch.randn(1, 1, config.context_dim) * 0.02)
        self.decoder = _unet(config)
        self.renderer = _unet(config)
        from diffusers import DDPMScheduler

        if config.refiner_channels:
            # a small UNet: it must see a whole ball (radius up to ~10 px) to tell where its edge belongs;
            # five plain 3x3 convolutions (11 px across) moved the centre error only from 0.45 to 0.43 px
            from diffusers import UNet2DModel

            c = config.refiner_channels
            self.refiner = UNet2DModel(
                sample_size=config.resolution, in_channels=3 + config.num_keypoints + coordinate_channel_count(config),
                out_channels=3, block_out_channels=(c, 2 * c, 2 * c), layers_per_block=1, norm_num_groups=8,
                down_block_types=("DownBlock2D",) * 3, up_block_types=("UpBlock2D",) * 3)
            nn.init.zeros_(self.refiner.conv_out.weight)  # no change at first: the renderer's frame as it is
            nn.init.zeros_(self.refiner.conv_out.bias)
        for name in config.frozen:  # a module or a parameter: both take requires_grad_
            getattr(self, name).requires_grad_(False)
        self.noise_scheduler = DDPMScheduler(num_train_timesteps=config.num_train_timesteps,
                                             beta_schedule=config.beta_schedule, prediction_type=config.prediction_type)

    # --- tokens ----------------------------------------------------------------------------

    @staticmethod
    def to_model_range(frames: torch.Tensor) -> torch.Tensor:
        """uint8 [B, H, W, 3] or [B, 3, H, W] -> float [B, 3, H, W] in [-1, 1]."""
        if frames.shape[-1] == 3:
            frames = frames.permute(0, 3, 1, 2)
        return frames.float() / 127.5 - 1.0

    @staticmethod
    def to_uint8(images: torch.Tensor) -> torch.Tensor:
        """float [B, 3, H, W] in [-1, 1] -> uint8 [B, H, W, 3]."""
        return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)

    def _check_frames(self, frames: torch.Tensor) -> None:
        size = self.config.resolution
        if frames.ndim != 4 or tuple(frames.shape[-2:]) != (size, size):
            raise ValueError(f"expected frames [B, 3, {size}, {size}], got {tuple(frames.shape)}")

    def quantize(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [B, 3, H, W] in [-1, 1] -> codes [B, K, d] (straight-through); fine tokens' codes
        (the first M rows) have fewer dimensions and are padded with zeros to d = `code_dim`."""
        return self._quantize(frames)[0]

    def _quantize(self, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(codes, the fine encoder's outputs before FSQ bounds them (keypoints: the keypoints in
        pixels; with radius tokens, (keypoints, ball-mask logits)), or None)."""
        self._check_frames(frames)
        coarse = self.fsq(self.encoder(frames))
        if self.fine_fsq is None:
            return coarse, None
        if self.config.fine_encoder == "keypoints":
            cfg, x = self.config, self._unet_input(frames)
            levels = cfg.fine_fsq_levels[0]
            points = self.fine_encoder(x)
            hi, lo = keypoint_digits(points, cfg.resolution, levels)
            digits = [lo, hi]
            if cfg.radius_tokens:  # radius tokens at the lowest indices: (coarse digit, fine digit) of each radius
                masks = self.radius_encoder(x)
                digits.insert(0, torch.stack(fixed_point_digits(mask_radii(masks), cfg.max_radius, levels), -1))
                points = (points, masks)
            return self._join(self._digits_to_codes(torch.cat(digits, 1)), coarse), points
        fine = self.fine_encoder(frames)
        return self._join(self.fine_fsq(fine), coarse), fine

    def keypoints(self, codes: torch.Tensor, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Keypoints [B, P, 2] in pixels read back from the fine codes (a hidden lo token reads as
        its middle level), and [B, P] whether each is known (its hi token visible)."""
        cfg = self.config
        p, levels, first = cfg.num_keypoints, cfg.fine_fsq_levels[0], cfg.num_keypoints if cfg.radius_tokens else 0
        digits = self._codes_to_digits(codes[:, first:first + 2 * p])
        lo = torch.where(kept[:, first:first + p, None], digits[:, :p], torch.full_like(digits[:, :p], levels // 2))
        return keypoints_from_digits(digits[:, p:], lo, cfg.resolution, levels), kept[:, first + p:first + 2 * p]

    def radii(self, codes: torch.Tensor, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """With radius tokens: each keypoint's ball radius [B, P] in pixels, and [B, P] whether its
        token is visible."""
        p = self.config.num_keypoints
        digits = self._codes_to_digits(codes[:, :p])
        return from_fixed_point(digits[..., 0], digits[..., 1], self.config.max_radius,
                                self.config.fine_fsq_levels[0]), kept[:, :p]

    def _digits_to_codes(self, digits: torch.Tensor) -> torch.Tensor:
        """Keypoint and radius digits [B, n, 2], 0 .. L - 1, as the fine FSQ's codes in [-1, 1]."""
        half = self.config.fine_fsq_levels[0] // 2
        return (digits - half) / half

    def _codes_to_digits(self, codes: torch.Tensor) -> torch.Tensor:
        half = self.config.fine_fsq_levels[0] // 2
        return codes[..., :2] * half + half

    def _join(self, fine: torch.Tensor, coarse: torch.Tensor) -> torch.Tensor:
        pad = lambda c: F.pad(c, (0, self.code_dim - c.shape[-1]))  # noqa: E731
        return torch.cat([pad(fine), pad(coarse)], 1)

    def codes_to_ids(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, d] -> token ids [B, K] (index order)."""
        if self.fine_fsq is None:
            return self.fsq.codes_to_ids(codes)
        m = self.config.fine_tokens
        return torch.cat([self.fine_fsq.codes_to_ids(codes[:, :m, :self.fine_fsq.dim]),
                          self.fsq.codes_to_ids(codes[:, m:, :self.fsq.dim])], 1)

    def ids_to_codes(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids [B, K] (index order) -> codes [B, K, d]."""
        if ids.shape[-1] != self.config.num_tokens:
            raise ValueError(f"expected {self.config.num_tokens} token ids a frame, got {ids.shape[-1]}")
        if self.fine_fsq is None:
            return self.fsq.ids_to_codes(ids)
        m = self.config.fine_tokens
        return self._join(self.fine_fsq.ids_to_codes(ids[:, :m]), self.fsq.ids_to_codes(ids[:, m:]))

    def embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, d] -> [B, K, C], each quantizer's rows through its own projection."""
        if self.fine_fsq is None:
            return self.code_in(codes)
        m = self.config.fine_tokens
        return torch.cat([self.fine_code_in(codes[:, :m, :self.fine_fsq.dim]), self.code_in(codes[:, m:, :self.fsq.dim])], 1)

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, keypoints: torch.Tensor | None = None) -> torch.Tensor:
        """Frames (uint8 [B, H, W, 3] or float [B, 3, H, W] in [-1, 1]) -> token ids [B, K] on the
        CPU, index order (0 = finest).

        `keypoints` [B, P, 2] (column, row in pixels; NaN where not known): where a ball's centre is
        known exactly (a frame drawn from known states, `physar.lm.drawing`), its keypoint tokens
        are written from it instead of found by the keypoint encoder, which holds a ball to about
        0.08 px (rms) where the tokens hold 0.015 px."""
        if frames.dtype == torch.uint8:
            frames = self.to_model_range(frames)
        codes = self.quantize(frames.to(self.null_token.device))
        if keypoints is not None:
            codes = self._with_keypoints(codes, keypoints.to(codes))
        return self.codes_to_ids(codes).cpu()

    def _with_keypoints(self, codes: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        """Codes [B, K, d] with the keypoint tokens of the keypoints given [B, P, 2] (NaN: keep)."""
        cfg = self.config
        if not cfg.has_keypoints:
            raise ValueError("this tokenizer has no keypoint tokens to write (fine_encoder is not 'keypoints')")
        p = cfg.num_keypoints
        if keypoints.shape != (codes.shape[0], p, 2):
            raise ValueError(f"expected keypoints [{codes.shape[0]}, {p}, 2], got {tuple(keypoints.shape)}")
        first = p if cfg.radius_tokens else 0  # index order: radius tokens, then the lo, then the hi tokens
        given = ~keypoints.isnan().any(-1, keepdim=True)  # [B, P, 1]
        hi, lo = keypoint_digits(keypoints.nan_to_num(), cfg.resolution, cfg.fine_fsq_levels[0])
        codes = codes.clone()
        for offset, digits in ((first, lo), (first + p, hi)):
            rows = codes[:, offset:offset + p, :2]
            codes[:, offset:offset + p, :2] = torch.where(given, self._digits_to_codes(digits), rows)
        return codes

    def context(self, codes: torch.Tensor, visible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-attention inputs: [B, 1 + K, C] embeddings (null token first; hidden tokens zeroed)
        and the [B, 1 + K] attention mask."""
        b = codes.shape[0]
        tokens = self.context_norm(self.embed_codes(codes) + self.token_pos) * visible[..., None]
        states = torch.cat([self.null_token.expand(b, -1, -1), tokens], 1)
        mask = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=codes.device), visible], 1)
        return states, mask

    def _global(self, states: torch.Tensor) -> torch.Tensor | None:
        """The token embeddings (hidden ones already zero) as one vector per sample."""
        return states[:, 1:].flatten(1) if self.config.global_conditioning else None

    def _unet_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, coordinate_channels(x.shape[0], x.shape[-1], x.device, self.config.coordinate_periods)], 1)

    # --- decoders --------------------------------------------------------------------------

    def denoise(self, x_t: torch.Tensor, t: torch.Tensor, codes: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        """The decoder's prediction at timesteps t, seeing tokens visible at t (k(t)) and kept."""
        visible = visible_mask(t, self.config.num_tokens, self.config.num_train_timesteps) & kept
        states, mask = self.context(codes, visible)
        return self.decoder(self._unet_input(x_t), t, encoder_hidden_states=states, encoder_attention_mask=mask.float(),
                            class_labels=self._global(states)).sample

    def render(self, codes: torch.Tensor, kept: torch.Tensor, snap_mode: str | None = None) -> torch.Tensor:
        """One deterministic step: codes [B, K, d] -> frames [B, 3, H, W] in [-1, 1]."""
        cfg, b, size = self.config, codes.shape[0], self.config.resolution
        seen = kept
        if not cfg.renderer_sees_fine:
            seen = kept.clone()
            seen[:, :cfg.fine_tokens] = False
        states, mask = self.context(codes, seen)
        blank = torch.zeros(b, 3, size, size, device=codes.device)
        t = torch.full((b,), cfg.num_train_timesteps - 1, device=codes.device, dtype=torch.long)
        frames = self.renderer(self._unet_input(blank), t, encoder_hidden_states=states, encoder_attention_mask=mask.float(),
                               class_labels=self._global(states)).sample
        return self._finish(frames, codes, kept, snap_mode)

    def _finish(self, frames: torch.Tensor, codes: torch.Tensor, kept: torch.Tensor,
                snap_mode: str | None = None) -> torch.Tensor:
        """The keypoints' corrections of a decoded frame: the refiner's, then the snap (`snap_mode`,
        default the config's)."""
        cfg, b, size = self.config, frames.shape[0], frames.shape[-1]
        if cfg.refiner_channels or cfg.snap_to_keypoints:
            points, known = self.keypoints(codes, kept)
        if cfg.refiner_channels:
            distance = torch.where(known[..., None, None], distance_maps(points, size), torch.full_like(frames[:, :1], size))
            coordinates = coordinate_channels(b, size, frames.device, cfg.coordinate_periods)
            zero = torch.zeros(b, dtype=torch.long, device=frames.device)
            frames = frames + self.refiner(torch.cat([frames, distance / 8.0, coordinates], 1), zero).sample
        if cfg.snap_to_keypoints:
            radii, radius_known = self.radii(codes, kept) if cfg.radius_tokens else (None, None)
            frames = snap_to_keypoints(frames, points, known, mode=snap_mode or cfg.snap_mode, radii=radii,
                                       radius_known=radius_known,
                                       radius_tolerance=cfg.snap_radius_tolerance)
        return frames

    def kept_mask(self, num_kept: int | None, batch: int, device=None) -> torch.Tensor:
        n = self.config.num_tokens if num_kept is None else num_kept
        if not 0 <= n <= self.config.num_tokens:
            raise ValueError(f"num_tokens must be in 0..{self.config.num_tokens}, got {n}")
        return coarsest_mask(torch.full((batch,), n, device=device), self.config.num_tokens)

    @torch.no_grad()
    def decode(self, ids: torch.Tensor, steps: int = 0, num_tokens: int | None = None,
               generator: torch.Generator | None = None, snap_mode: str | None = None) -> torch.Tensor:
        """Token ids [B, K] (index order) -> uint8 frames [B, H, W, 3] on the CPU.

        steps = 0: the one-step renderer (deterministic); steps >= 1: DDIM sampling with the
        diffusion decoder, the visible tokens recomputed from k(t) at every step. `num_tokens`
        keeps only the first n tokens in the LM's order (coarse first). `snap_mode` overrides the
        config's (keypoints.snap_to_keypoints).
        """
        codes = self.ids_to_codes(ids.long().cpu()).to(self.null_token.device)
        kept = self.kept_mask(num_tokens, ids.shape[0], codes.device)
        if steps == 0:
            return self.to_uint8(self.render(codes, kept, snap_mode)).cpu()
        from diffusers import DDIMScheduler

        scheduler = DDIMScheduler.from_config(self.noise_scheduler.config)
        scheduler.set_timesteps(steps)
        size = self.config.resolution
        x = torch.randn(ids.shape[0], 3, size, size, generator=generator).to(codes.device)
        for t in scheduler.timesteps:
            tt = torch.full((ids.shape[0],), int(t), device=codes.device, dtype=torch.long)
            x = scheduler.step(self.denoise(x, tt, codes, kept), t, x).prev_sample
        return self.to_uint8(self._finish(x, codes, kept, snap_mode)).cpu()

    # --- training --------------------------------------------------------------------------

    def forward(self, frames: torch.Tensor, generator: torch.Generator | None = None):
        """The training loss (so that DistributedDataParallel syncs its gradients)."""
        return self.loss(frames, generator)

    def loss(self, frames: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """Diffusion loss with the k(t) token mask + the renderer's reconstruction loss (+ its
        soft-parser loss, when configured).

        frames: float [B, 3, H, W] in [-1, 1]. Condition dropout hides every token of a sample;
        nested dropout keeps only its first n tokens in LM order (n uniform in 1..K).
        """
        cfg, b, device = self.config, frames.shape[0], frames.device
        codes, fine = self._quantize(frames)
        u = torch.rand(b, generator=generator).to(device)
        n = torch.randint(1, cfg.num_tokens + 1, (b,), generator=generator).to(device)
        n = torch.where(u < cfg.nested_dropout, n, torch.full_like(n, cfg.num_tokens))
        n = torch.where(u > 1 - cfg.condition_dropout, torch.zeros_like(n), n)
        kept = coarsest_mask(n, cfg.num_tokens)
        # balls are a small part of the frame: weight their pixels up so edges are learnt
        weight = 1.0 + cfg.ball_pixel_weight * (frames.min(1, keepdim=True).values < 0.99).float()

        t = torch.randint(0, cfg.num_train_timesteps, (b,), generator=generator).to(device)
        noise = torch.randn(frames.shape, generator=generator).to(device)
        x_t = self.noise_scheduler.add_noise(frames, noise, t)
        target = self.noise_scheduler.get_velocity(frames, noise, t) if cfg.prediction_type == "v_prediction" else noise
        diffusion = (weight * (self.denoise(x_t, t, codes, kept) - target) ** 2).mean()

        full = kept.all(1)  # the renderer learns from every sample, nested ones included
        rendered = self.render(codes, kept)
        render = (weight * (rendered - frames) ** 2).mean()
        loss = diffusion + cfg.renderer_weight * render
        logs = {}
        if cfg.parser_loss_weight > 0 and full.any():  # only frames rendered from all their tokens
            parser = parser_loss(rendered[full], frames[full], cfg.parser_loss_sharpness)
            loss = loss + cfg.parser_loss_weight * parser
            logs["parser"] = parser.item()
        if fine is not None and cfg.fine_encoder == "keypoints":
            if cfg.radius_tokens:
                fine, masks = fine
                if cfg.radius_loss_weight > 0:
                    radius = radius_loss(masks, frames)
                    loss = loss + cfg.radius_loss_weight * radius
                    logs["radius"] = radius.item()
            if cfg.keypoint_loss_weight > 0:
                keypoint = keypoint_loss(fine, frames)
                loss = loss + cfg.keypoint_loss_weight * keypoint
                logs["keypoint"] = keypoint.item()
        elif fine is not None:  # keep the fine codes where tanh still passes a gradient (64 levels saturate)
            saturation = F.relu(fine.abs() - 2.0).pow(2).mean()
            loss = loss + saturation
            logs["fine_saturation"] = saturation.item()
        with torch.no_grad():
            mse_full = F.mse_loss(rendered[full], frames[full]).item() if full.any() else float("nan")
        return loss, {"loss": loss.item(), "diffusion": diffusion.item(), "render": render.item(),
                      "render_mse_full": mse_full, **logs}

    # --- files -----------------------------------------------------------------------------

    def save_pretrained(self, folder: str | Path) -> None:
        """config.json + model.safetensors, each written atomically."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{WEIGHTS}.tmp"
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(tmp))
        tmp.replace(folder / WEIGHTS)
        tmp = folder / f".{CONFIG}.tmp"
        self.config.save(tmp)
        tmp.replace(folder / CONFIG)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> "DDTTokenizer":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        for name in (CONFIG, WEIGHTS):
            if not (folder / name).is_file():
                raise CheckpointError(f"{folder}: not a tokenizer checkpoint (no {name})")
        try:
            config = TokenizerConfig.from_dict(json.loads((folder / CONFIG).read_text()), str(folder / CONFIG))
        except ValueError as e:
            raise CheckpointError(f"{folder / CONFIG}: {e}") from None
        model = cls(config)
        try:
            state = load_file(str(folder / WEIGHTS), device=str(device))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{folder / WEIGHTS}: unreadable ({e})") from None
        missing, unexpected = model.state_dict().keys() - state.keys(), state.keys() - model.state_dict().keys()
        if missing or unexpected:
            raise CheckpointError(f"{folder}: weights do not match the config ({len(missing)} missing, "
                                  f"{len(unexpected)} unexpected, e.g. {sorted(missing | unexpected)[:2]})")
        for k, v in model.state_dict().items():
            if v.shape != state[k].shape:
                raise CheckpointError(f"{folder}: {k} has shape {tuple(state[k].shape)}, the config makes {tuple(v.shape)}")
        model.load_state_dict(state)
        return model.to(device).eval()
