"""The DDT tokenizer: FSQ, the k(t) schedule, masking, files, training and resume, and its use
on datasets (tiny configs at 32 px so that everything runs in seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import recipe_path

from physar.data.generate import generate, load_metadata
from physar.evaluation.evaluate import evaluate
from physar.tokenizer.codec import decode_tokens, encode_dataset, inspect_prefixes, load_tokens, reconstruct
from physar.tokenizer.config import ConfigError, TokenizerConfig
from physar.tokenizer.fsq import FSQ
from physar.tokenizer.measure import ball_errors, codebook_usage
from physar.tokenizer.model import CheckpointError, DDTTokenizer
from physar.tokenizer.schedule import coarsest_mask, lm_order, max_visible_index, visible_mask
from physar.tokenizer.train import TrainingError, train
from physar.video import read_video
from simulators.render import render_frames
from simulators.world import world_to_pixel

TINY = dict(resolution=32, num_tokens=4, fsq_levels=[4, 4, 3], encoder_channels=[8, 16], encoder_dim=32,
            encoder_layers=1, encoder_heads=2, context_dim=32, unet_channels=[8, 16], unet_cross_attention_levels=1,
            unet_head_dim=8, batch_size=4, steps=4, warmup_steps=2, eval_every=2, save_every=2, eval_frames=8,
            learning_rate=1e-3)


def tiny(**kw) -> TokenizerConfig:
    return TokenizerConfig(**{**TINY, **kw})


@pytest.fixture(scope="module")
def data32(tmp_path_factory):
    root = tmp_path_factory.mktemp("tok")
    generate(recipe_path("uniform"), "eval", root / "uniform", count=6, resolution=32, progress=False)
    generate(recipe_path("collision"), "eval", root / "collision", count=8, resolution=32, progress=False)
    return root


@pytest.fixture(scope="module")
def trained(data32, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "tok"
    train(tiny(steps=6), [data32 / "uniform", data32 / "collision"], run, frames_per_clip=4, progress=False)
    return run


# --- FSQ and the schedule ------------------------------------------------------------------

def test_fsq_every_id_round_trips():
    fsq = FSQ([8, 5, 3])
    assert fsq.codebook_size == 120
    ids = torch.arange(120)
    codes = fsq.ids_to_codes(ids)
    assert codes.min() >= -1 and codes.max() <= 1
    assert torch.equal(fsq.codes_to_ids(codes), ids)
    assert len({tuple(c.tolist()) for c in codes}) == 120
    # quantizing an already quantized code leaves it on the grid
    z = torch.randn(50, 3) * 3
    q = fsq(z)
    assert torch.equal(fsq.ids_to_codes(fsq.codes_to_ids(q)), q)
    with pytest.raises(ValueError, match="token ids"):
        fsq.ids_to_codes(torch.tensor([120]))


def test_fsq_with_one_fine_dimension_steps_by_one_level():
    """fsq_levels [4096] (configs/tokenizer/cpu_v4.yaml): one dimension a token; a code that moves
    a little moves its id a little (the position of a ball written as one number)."""
    fsq = FSQ([4096])
    ids = torch.arange(4096)
    assert torch.equal(fsq.codes_to_ids(fsq.ids_to_codes(ids)), ids)
    z = torch.linspace(-0.5, 0.5, 4001)[:, None]
    steps = fsq.codes_to_ids(fsq(z)).diff()
    assert steps.min() >= 0 and steps.max() <= 1 and steps.sum() > 1000  # monotone, no level skipped
    # the code is the bounded input to a few 2048ths (the rounding and FSQ's half-level offset)
    assert (fsq(z) - torch.tanh(z)).abs().max() < 4 / 2048


def test_fsq_passes_gradients_straight_through():
    z = torch.randn(10, 3, requires_grad=True)
    FSQ([8, 5, 3])(z).sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0


def test_k_of_t_is_monotone_and_covers_every_token():
    K, T = 8, 1000
    t = torch.arange(T)
    k = max_visible_index(t, K, T)
    assert k[0] == 0 and k[-1] == K - 1
    assert torch.all(k[1:] >= k[:-1])
    assert set(k.tolist()) == set(range(K))
    mask = visible_mask(t, K, T)
    assert mask[:, 0].all()  # the finest token is always visible
    assert torch.equal(mask.sum(1), k + 1)
    assert not mask[0, 1:].any() and mask[-1].all()


def test_coarsest_mask_keeps_the_first_tokens_in_lm_order():
    K = 6
    for n in range(K + 1):
        mask = coarsest_mask(torch.tensor([n]), K)[0]
        assert mask.sum() == n
        assert lm_order(mask)[:n].all()  # LM order starts at index K-1, the coarsest
    ids = torch.arange(K)
    assert torch.equal(lm_order(lm_order(ids)), ids) and lm_order(ids)[0] == K - 1


# --- the model -----------------------------------------------------------------------------

def test_hidden_tokens_do_not_leak_into_the_decoder():
    torch.manual_seed(0)
    model = DDTTokenizer(tiny()).eval()
    x = torch.randn(2, 3, 32, 32)
    codes = model.fsq.ids_to_codes(torch.randint(0, model.fsq.codebook_size, (2, 4)))
    other = codes.clone()
    other[:, 1:] = model.fsq.ids_to_codes(torch.randint(0, model.fsq.codebook_size, (2, 3)))
    kept = torch.ones(2, 4, dtype=torch.bool)
    low = torch.tensor([5, 5])  # k(t) = 0: only token 0 visible
    with torch.no_grad():
        assert torch.allclose(model.denoise(x, low, codes, kept), model.denoise(x, low, other, kept), atol=1e-6)
        high = torch.tensor([999, 999])
        assert not torch.allclose(model.denoise(x, high, codes, kept), model.denoise(x, high, other, kept), atol=1e-6)
        # nothing visible at all (condition dropout): the null token keeps the output finite
        none = torch.zeros(2, 4, dtype=torch.bool)
        assert torch.isfinite(model.render(codes, none)).all()
        assert torch.allclose(model.render(codes, none), model.render(other, none), atol=1e-6)


def test_codes_depend_on_the_frame_from_the_start():
    """Regression: learned queries alone gave frame-independent codes that collapsed to one id."""
    torch.manual_seed(0)
    model = DDTTokenizer(tiny()).eval()
    rng = np.random.default_rng(0)
    positions = rng.uniform(2, 8, (16, 1, 2))
    frames = render_frames(positions, np.array([1.0]), np.array([[255, 0, 0]]), 32)
    with torch.no_grad():
        spread = model.encoder(model.to_model_range(torch.from_numpy(frames))).std(0).mean().item()
    assert spread > 0.03, spread  # 0.047 measured; 0.017 with the learned queries alone


def test_encode_decode_shapes_and_ranges():
    torch.manual_seed(0)
    model = DDTTokenizer(tiny()).eval()
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    ids = model.encode(frames)
    assert ids.shape == (3, 4) and ids.min() >= 0 and ids.max() < model.config.codebook_size
    out = model.decode(ids)
    assert out.shape == (3, 32, 32, 3) and out.dtype == torch.uint8
    assert torch.equal(out, model.decode(ids))  # the renderer is deterministic
    sampled = model.decode(ids, steps=2, generator=torch.Generator().manual_seed(0))
    assert sampled.shape == (3, 32, 32, 3)
    with pytest.raises(ValueError, match="32, 32"):
        model.encode(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))


def test_coordinate_periods_write_a_ball_position_as_phases(tmp_path):
    """The periodic coordinate channels: summed over a ball's coverage, sin and cos at period P give
    its centre modulo P to about a twentieth of a pixel (up to the disc's sign at that frequency, which
    its radius fixes), a smooth function of the input that FSQ can write as a digit."""
    from physar.tokenizer.model import coordinate_channels

    channels = coordinate_channels(2, 64, periods=[8, 2.5])
    assert channels.shape == (2, 10, 64, 64)
    assert channels[0, 2, 5, 3] == pytest.approx(np.sin(2 * np.pi * 3 / 8), abs=1e-6)  # sin x at column 3
    assert channels[0, 5, 5, 3] == pytest.approx(np.cos(2 * np.pi * 5 / 8), abs=1e-6)  # cos y at row 5
    rng = np.random.default_rng(0)
    sin_x, cos_x = channels[0, 2].numpy(), channels[0, 3].numpy()
    errors = []
    for _ in range(40):
        x, y = rng.uniform(3, 7, 2)
        frame = render_frames(np.array([[[x, y]]]), np.array([1.0]), np.array([[255, 0, 0]]), 64)[0]
        coverage = (255.0 - frame[..., 1]) / 255.0
        phase = np.angle((coverage * cos_x).sum() + 1j * (coverage * sin_x).sum()) * 8 / (2 * np.pi)
        col = world_to_pixel(x, y, 64)[0]
        errors.append(min(abs((phase - col + shift + 4) % 8 - 4) for shift in (0, 4)))
    assert np.median(errors) < 0.08 and max(errors) < 0.3  # the threshold centroid: about 0.066 px
    # a tokenizer with them: every part reads the extra channels, and the checkpoint keeps them
    torch.manual_seed(0)
    model = DDTTokenizer(tiny(coordinate_periods=[8, 3])).eval()
    assert model.encoder.stem[0].in_channels == 3 + 2 + 8 and model.renderer.conv_in.in_channels == 3 + 2 + 8
    frames = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert model.decode(model.encode(frames)).shape == (2, 32, 32, 3)
    model.save_pretrained(tmp_path / "ck")
    loaded = DDTTokenizer.from_pretrained(tmp_path / "ck")
    assert loaded.config.coordinate_periods == [8, 3] and torch.equal(loaded.encode(frames), model.encode(frames))


def test_save_and_load_round_trip_and_mismatch(tmp_path):
    torch.manual_seed(0)
    model = DDTTokenizer(tiny()).eval()
    model.save_pretrained(tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == ["config.json", "model.safetensors"]
    loaded = DDTTokenizer.from_pretrained(tmp_path / "ck")
    frames = torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8)
    assert torch.equal(model.encode(frames), loaded.encode(frames))
    assert torch.equal(model.decode(model.encode(frames)), loaded.decode(loaded.encode(frames)))

    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    config["context_dim"] = 48
    (tmp_path / "ck" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="shape|match"):
        DDTTokenizer.from_pretrained(tmp_path / "ck")
    with pytest.raises(CheckpointError, match="not a tokenizer checkpoint"):
        DDTTokenizer.from_pretrained(tmp_path)
    model.save_pretrained(tmp_path / "broken")
    (tmp_path / "broken" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable"):
        DDTTokenizer.from_pretrained(tmp_path / "broken")


@pytest.mark.parametrize("change,needle", [
    ({"resolution": 30}, "resolution"), ({"num_tokens": 0}, "num_tokens"), ({"fsq_levels": [1, 4]}, "fsq_levels"),
    ({"nested_dropout": 1.5}, "nested_dropout"), ({"learning_rate": -1.0}, "learning_rate"),
    ({"unet_cross_attention_levels": 5}, "unet_cross_attention_levels"), ({"colour": 1}, "unknown key colour"),
    ({"parser_loss_weight": -0.1}, "parser_loss_weight"), ({"parser_loss_sharpness": 0}, "parser_loss_sharpness"),
    ({"coordinate_periods": [8, 2]}, "coordinate_periods"), ({"fine_tokens": 4}, "fine_tokens"),
    ({"fine_tokens": 1, "fine_fsq_levels": [64, 64]}, "fine_fsq_levels"), ({"frozen": ["encoder"]}, "frozen"),
    ({"frozen": ["everything"]}, "unknown part"), ({"renderer_sees_fine": False}, "renderer_sees_fine"),
    ({"num_tokens": 5, "fine_tokens": 1, "fine_fsq_levels": [8, 6], "fine_encoder": "keypoints"}, "fine_encoder"),
    ({"refiner_channels": 8}, "refiner_channels"), ({"snap_to_keypoints": True}, "snap_to_keypoints"),
])
def test_bad_config_is_one_line_error(tmp_path, change, needle):
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**TINY, **change}))
    with pytest.raises(ConfigError) as info:
        TokenizerConfig.from_yaml(path)
    assert needle in str(info.value) and "\n" not in str(info.value) and str(path) in str(info.value)


# --- training ------------------------------------------------------------------------------

def test_training_lowers_the_loss(data32, tmp_path):
    cfg = tiny(steps=50, eval_every=50, save_every=50, batch_size=8)
    torch.manual_seed(cfg.seed)
    fresh = DDTTokenizer(cfg)  # the same initial weights as train() builds
    frames = DDTTokenizer.to_model_range(torch.from_numpy(
        np.concatenate([read_video(data32 / "uniform" / r["video"])[::8] for r in load_metadata(data32 / "uniform")])))

    def losses(model):
        with torch.no_grad():
            return model.loss(frames, generator=torch.Generator().manual_seed(123))[1]

    before = losses(fresh)
    run = tmp_path / "run"
    train(cfg, [data32 / "uniform"], run, progress=False)
    after = losses(DDTTokenizer.from_pretrained(run / "checkpoint"))
    assert after["render"] < 0.6 * before["render"], (before, after)
    assert after["diffusion"] < before["diffusion"], (before, after)
    assert (run / "samples" / "step_000050.png").is_file()


def test_resume_continues_exactly(data32, tmp_path):
    data = [data32 / "uniform"]
    train(tiny(steps=4), data, tmp_path / "straight", progress=False)
    train(tiny(steps=2), data, tmp_path / "resumed", progress=False)
    train(tiny(steps=4), data, tmp_path / "resumed", resume=True, progress=False)
    a = DDTTokenizer.from_pretrained(tmp_path / "straight" / "checkpoint").state_dict()
    b = DDTTokenizer.from_pretrained(tmp_path / "resumed" / "checkpoint").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = json.loads((tmp_path / "resumed" / "train_state" / "state.json").read_text())
    assert state["step"] == 4


def test_init_starts_from_a_checkpoint_of_the_same_architecture(data32, trained, tmp_path):
    data = [data32 / "uniform"]
    source = DDTTokenizer.from_pretrained(trained / "checkpoint")
    held_loss = lambda model: model.loss(DDTTokenizer.to_model_range(torch.from_numpy(read_video(
        data32 / "uniform" / load_metadata(data32 / "uniform")[0]["video"]))), generator=torch.Generator().manual_seed(5))[1]
    train(tiny(steps=2, learning_rate=1e-9, warmup_steps=1, parser_loss_weight=0.1), data, tmp_path / "ft",
          init=trained / "checkpoint", progress=False)
    tuned = DDTTokenizer.from_pretrained(tmp_path / "ft" / "checkpoint")
    with torch.no_grad():  # a vanishing learning rate: the trained weights, not fresh ones
        assert held_loss(tuned)["render"] == pytest.approx(held_loss(source)["render"], rel=1e-3)
    with pytest.raises(TrainingError, match="architecture differs .*num_tokens"):
        train(tiny(steps=2, num_tokens=3), data, tmp_path / "other", init=trained / "checkpoint", progress=False)


def test_init_grows_the_input_channels_for_new_coordinate_periods(trained, tmp_path):
    """--init from a checkpoint without periodic channels: the new channels' weights start at zero,
    so the grown model encodes and draws exactly as the checkpoint did before it trains."""
    from physar.tokenizer.codec import load_tokenizer
    from physar.tokenizer.train import _load_initial_weights

    source = load_tokenizer(trained)
    grown = DDTTokenizer(tiny(steps=6, coordinate_periods=[8, 3])).eval()
    _load_initial_weights(grown, trained)
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    ids = source.encode(frames)
    assert torch.equal(grown.encode(frames), ids) and torch.equal(grown.decode(ids), source.decode(ids))
    DDTTokenizer(tiny(steps=6, coordinate_periods=[8])).save_pretrained(tmp_path / "with_periods")
    with pytest.raises(TrainingError, match="not a prefix"):  # channels are only ever added
        _load_initial_weights(DDTTokenizer(tiny(steps=6)), tmp_path / "with_periods")


def test_init_with_other_fsq_levels_keeps_the_trunks_and_starts_the_code_layers_fresh(trained):
    """--init across a change of FSQ levels (one 4096-level dimension a token instead of four of
    eight): every weight but the two that touch the codes is the checkpoint's."""
    from physar.tokenizer.codec import load_tokenizer
    from physar.tokenizer.train import CODE_LAYERS, _load_initial_weights

    source = load_tokenizer(trained).state_dict()
    torch.manual_seed(3)
    model = DDTTokenizer(tiny(steps=6, fsq_levels=[4096]))
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    _load_initial_weights(model, trained)
    loaded = model.state_dict()
    for name, weight in loaded.items():
        if name in CODE_LAYERS:
            assert weight.shape != source[name].shape and torch.equal(weight, fresh[name])
        else:
            assert torch.equal(weight, source[name]), name
    ids = model.encode(torch.randint(0, 256, (2, 32, 32, 3), dtype=torch.uint8))
    assert ids.shape == (2, tiny().num_tokens) and int(ids.max()) < 4096


def test_fine_tokens_come_from_their_own_finer_quantizer_and_round_trip(tmp_path):
    """Fine tokens: the lowest indices come from a second encoder whose FSQ has fewer, finer
    dimensions and the same number of ids; ids, codes and files round-trip through both quantizers."""
    torch.manual_seed(0)
    model = DDTTokenizer(tiny(num_tokens=6, fine_tokens=2, fine_fsq_levels=[8, 6])).eval()
    assert model.fine_fsq.dim == 2 and model.fsq.dim == 3 and model.fine_fsq.codebook_size == 48
    frames = torch.randint(0, 256, (5, 32, 32, 3), dtype=torch.uint8)
    codes = model.quantize(model.to_model_range(frames))
    assert codes.shape == (5, 6, 3) and torch.all(codes[:, :2, 2] == 0)  # fine codes padded to the coarse width
    ids = model.encode(frames)
    assert ids.shape == (5, 6) and int(ids.min()) >= 0 and int(ids.max()) < 48
    assert torch.equal(model.codes_to_ids(model.ids_to_codes(ids)), ids)
    every = torch.arange(48)[:, None].expand(48, 6)  # every id at every position
    assert torch.equal(model.codes_to_ids(model.ids_to_codes(every)), every)
    # a fine dimension has 8 levels where a coarse one has 4: a smaller step
    fine_steps = model.ids_to_codes(every)[:, 0, 0].unique()
    coarse_steps = model.ids_to_codes(every)[:, 2, 0].unique()
    assert len(fine_steps) == 8 and len(coarse_steps) == 4
    assert model.decode(ids).shape == (5, 32, 32, 3)
    with pytest.raises(ValueError, match="6 token ids"):
        model.decode(ids[:, :4])
    model.save_pretrained(tmp_path / "ck")
    assert torch.equal(DDTTokenizer.from_pretrained(tmp_path / "ck").encode(frames), ids)


def test_init_grows_fine_tokens_and_a_frozen_coarse_encoder_keeps_the_checkpoints_ids(data32, trained, tmp_path):
    """--init from a checkpoint without fine tokens, the coarse encoder frozen: the coarse ids are the
    checkpoint's before and after training (so an LM's token files stay valid), the fine encoder starts
    from the checkpoint's trunk and trains, and the fine tokens' global-conditioning columns start at zero."""
    from physar.tokenizer.codec import load_tokenizer
    from physar.tokenizer.train import _load_initial_weights

    source = load_tokenizer(trained)
    cfg = tiny(steps=3, num_tokens=6, fine_tokens=2, fine_fsq_levels=[8, 6], frozen=["encoder"],
               coordinate_periods=[8])
    torch.manual_seed(0)
    grown = DDTTokenizer(cfg).eval()
    _load_initial_weights(grown, trained)
    frames = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    assert torch.equal(grown.encode(frames)[:, 2:], source.encode(frames))
    src, new = source.state_dict(), grown.state_dict()
    trunk = "encoder.transformer.layers.0.linear1.weight"
    assert torch.equal(new["fine_" + trunk], src[trunk]) and torch.equal(new["token_pos"][2:], src["token_pos"])
    columns = new["renderer.class_embedding.linear_1.weight"]
    assert torch.all(columns[:, :2 * cfg.context_dim] == 0)
    assert torch.equal(columns[:, 2 * cfg.context_dim:], src["renderer.class_embedding.linear_1.weight"])

    train(cfg, [data32 / "uniform"], tmp_path / "fine", init=trained, progress=False)
    tuned = DDTTokenizer.from_pretrained(tmp_path / "fine" / "checkpoint")
    assert torch.equal(tuned.encode(frames)[:, 2:], source.encode(frames))
    assert all(torch.equal(v, src[k]) for k, v in tuned.encoder.state_dict(prefix="encoder.").items()
               if "stem.0" not in k)  # the frozen encoder (its first convolution grew by zero columns)
    assert not torch.equal(tuned.state_dict()["fine_" + trunk], src[trunk])
    with pytest.raises(TrainingError, match="num_tokens"):  # the coarse tokens must be the checkpoint's
        _load_initial_weights(DDTTokenizer(tiny(num_tokens=6, fine_tokens=1, fine_fsq_levels=[8, 6])), trained)


def test_init_grows_radius_tokens_onto_keypoints_and_keeps_every_id(data32, tmp_path):
    """--init from a keypoint checkpoint without radius tokens (ddt_cpu_v5 -> v6): with everything
    but the radius encoder frozen, the checkpoint's ids are the grown model's after its radius
    tokens, before and after training, and only the radius encoder learns."""
    from physar.tokenizer.train import _load_initial_weights

    keypoints = dict(fine_fsq_levels=[8, 8], fsq_levels=[4, 4, 4], fine_encoder="keypoints", snap_to_keypoints=True,
                     renderer_sees_fine=False)
    torch.manual_seed(0)
    DDTTokenizer(tiny(num_tokens=8, fine_tokens=4, **keypoints)).save_pretrained(tmp_path / "v5")
    source = DDTTokenizer.from_pretrained(tmp_path / "v5").eval()
    frozen = ["encoder", "renderer", "decoder", "code_in", "fine_code_in", "token_pos", "context_norm", "null_token",
              "fine_encoder"]
    cfg = tiny(steps=3, num_tokens=10, fine_tokens=6, radius_tokens=True, max_radius=8.0, radius_loss_weight=1.0,
               frozen=frozen, **keypoints)
    grown = DDTTokenizer(cfg).eval()
    _load_initial_weights(grown, tmp_path / "v5")
    frames = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)
    assert torch.equal(grown.encode(frames)[:, 2:], source.encode(frames))
    assert torch.equal(grown.state_dict()["token_pos"][2:], source.state_dict()["token_pos"])
    train(cfg, [data32 / "collision"], tmp_path / "v6", init=tmp_path / "v5", progress=False)
    tuned = DDTTokenizer.from_pretrained(tmp_path / "v6" / "checkpoint")
    assert torch.equal(tuned.encode(frames)[:, 2:], source.encode(frames))
    assert not torch.equal(tuned.radius_encoder.masks[0].weight, grown.radius_encoder.masks[0].weight)
    with pytest.raises(TrainingError, match="fine tokens"):  # two keypoints do not grow into one with a radius
        _load_initial_weights(DDTTokenizer(tiny(num_tokens=7, fine_tokens=3, radius_tokens=True, **keypoints)),
                              tmp_path / "v5")


def test_encode_writes_known_keypoints_and_keeps_the_encoders_elsewhere():
    """encode(frames, keypoints): a given keypoint reads back to the tokens' grid step, a NaN one
    and every other token (radius, coarse) are the encoder's; a tokenizer without keypoints refuses."""
    torch.manual_seed(0)
    model = DDTTokenizer(tiny(num_tokens=9, fine_tokens=6, fine_fsq_levels=[8, 8], fsq_levels=[4, 4, 4],
                              fine_encoder="keypoints", radius_tokens=True, max_radius=8.0,
                              snap_to_keypoints=True, renderer_sees_fine=False)).eval()
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    known = torch.tensor([[[3.3, 20.7], [float("nan"), float("nan")]]] * 3)
    plain, written = model.encode(frames), model.encode(frames, known)
    codes = model.ids_to_codes(written)
    points, _ = model.keypoints(codes, model.kept_mask(None, 3))
    assert (points[:, 0] - known[:, 0]).abs().max() <= 31 / (8 * 8 - 1) / 2 + 1e-5
    assert torch.equal(written[:, [0, 1, 3, 5]], plain[:, [0, 1, 3, 5]])  # radii, blue's lo and hi
    assert torch.equal(written[:, 6:], plain[:, 6:])  # coarse tokens
    assert not torch.equal(written[:, [2, 4]], plain[:, [2, 4]])  # red's lo and hi
    with pytest.raises(ValueError, match="expected keypoints"):
        model.encode(frames, known[:, :1])
    with pytest.raises(ValueError, match="no keypoint tokens"):
        DDTTokenizer(tiny()).eval().encode(frames, known)


def test_keypoint_digits_hold_a_position_to_a_grid_step_and_pass_the_gradient():
    from physar.tokenizer.keypoints import keypoint_digits, keypoints_from_digits

    points = (torch.rand(50, 2, 2, generator=torch.Generator().manual_seed(0)) * 63).requires_grad_()
    hi, lo = keypoint_digits(points, 64, 64)
    assert hi.min() >= 0 and hi.max() <= 63 and lo.min() >= 0 and lo.max() <= 63
    assert torch.equal(hi, hi.round()) and torch.allclose(lo, lo.round())
    decoded = keypoints_from_digits(hi, lo, 64, 64)
    step = 63 / (64 * 64 - 1)
    assert (decoded - points).abs().max() <= step / 2 + 1e-5
    decoded.sum().backward()
    assert torch.allclose(points.grad, torch.ones_like(points))


def test_keypoint_encoder_is_a_soft_argmax_and_distance_maps_measure_pixels():
    from physar.tokenizer.keypoints import KeypointEncoder, distance_maps

    encoder = KeypointEncoder(1, 1)
    encoder.scores = torch.nn.Identity()  # score = the input map itself
    scores = torch.full((1, 1, 16, 16), -50.0)
    scores[0, 0, 4, 10] = scores[0, 0, 5, 10] = 0.0  # two pixels in column 10, rows 4 and 5
    assert torch.allclose(encoder(scores), torch.tensor([[[10.0, 4.5]]]), atol=1e-4)
    d = distance_maps(torch.tensor([[[10.0, 4.5]]]), 16)
    assert d.shape == (1, 1, 16, 16) and d[0, 0, 4, 10] == pytest.approx(0.5) and d[0, 0, 0, 13] == pytest.approx(5.408, abs=1e-3)


def test_keypoint_loss_pulls_keypoint_p_to_the_ball_of_palette_colour_p():
    from physar.tokenizer.keypoints import keypoint_loss

    frame = render_frames(np.array([[[3.0, 4.0], [7.0, 6.0]]]), np.array([1.2, 0.8]),
                          np.array([[255, 0, 0], [0, 0, 255]]), 32)
    x = DDTTokenizer.to_model_range(torch.from_numpy(frame))
    right = torch.tensor(np.array([[world_to_pixel(3.0, 4.0, 32), world_to_pixel(7.0, 6.0, 32)]]), dtype=torch.float32)
    assert keypoint_loss(right, x).item() < 0.05  # the soft parser's centres: within about 0.3 px at 32 px
    assert keypoint_loss(right.flip(1), x).item() > 5  # swapped: 12 and 6 px off, linear (Huber) beyond 1 px
    one_ball = DDTTokenizer.to_model_range(torch.from_numpy(render_frames(
        np.array([[[3.0, 4.0]]]), np.array([1.2]), np.array([[255, 0, 0]]), 32)))
    far = right.clone()
    far[0, 1] = torch.tensor([0.0, 0.0])  # no blue ball: its keypoint is free
    assert keypoint_loss(far, one_ball).item() < 0.05


def test_snap_moves_each_ball_to_its_keypoint_and_leaves_the_rest():
    """The snap: two drawn balls 0.5-1.3 px off are moved to their keypoints (here the soft parser's
    centres of the original, what a perfect keypoint encoder writes), so that the evaluator's parser
    reads them where it reads the original's, to a tenth of a pixel; an unknown keypoint or
    an absent colour changes nothing."""
    from physar.evaluation.parse import parse_frames
    from physar.tokenizer.keypoints import snap_to_keypoints
    from physar.tokenizer.parser_loss import soft_ball_moments

    colors = [[255, 0, 0], [0, 0, 255]]
    rows, cols = np.mgrid[0:64, 0:64]

    def draw(centres):  # soft edges, as a decoder draws them: a hard-edged disc moves by whole pixels only
        frame = np.full((64, 64, 3), 255.0)
        for (cx, cy), radius, color in zip(centres, (7.5, 5.0), colors):
            cover = np.clip(radius - np.hypot(cols - cx, rows - cy) + 0.5, 0, 1)[..., None]
            frame = frame * (1 - cover) + np.array(color) * cover
        return frame.round().astype(np.uint8)[None]

    true = [(19.0, 37.8), (44.1, 25.2)]
    original = draw(true)
    drawn = draw([(20.3, 37.4), (43.6, 25.4)])
    x = DDTTokenizer.to_model_range(torch.from_numpy(drawn))
    keypoints = soft_ball_moments(DDTTokenizer.to_model_range(torch.from_numpy(original)))[1][:, :2]
    snapped = DDTTokenizer.to_uint8(snap_to_keypoints(x, keypoints, torch.ones(1, 2, dtype=torch.bool))).numpy()
    error = np.abs(parse_frames(snapped, colors).positions - parse_frames(original, colors).positions) * 63 / 10
    assert error.max() < 0.1, error  # pixels (before the snap: more than 0.4)
    assert np.abs(parse_frames(drawn, colors).positions - parse_frames(original, colors).positions).max() * 6.3 > 0.4
    unknown = snap_to_keypoints(x, keypoints, torch.tensor([[False, False]]))
    assert torch.allclose(unknown, x, atol=1e-5)
    red_only = DDTTokenizer.to_model_range(torch.from_numpy(draw([(20.3, 37.4), (-50.0, -50.0)])))
    # only the blue keypoint known, and no blue ball: nothing moves
    assert torch.allclose(snap_to_keypoints(red_only, keypoints, torch.tensor([[False, True]])), red_only, atol=1e-5)


def test_snap_pastes_a_ball_left_far_behind_whole_beside_the_other():
    """A decoder that leaves a ball 5 px behind, touching the other ball (what ddt_cpu_v2's
    renderer does after a collision): the snap's paste moves it whole to its keypoint (centre and
    radius as the original's, the other ball untouched), where the old shift cut it."""
    from physar.evaluation.parse import parse_frames
    from physar.tokenizer.keypoints import ball_alphas, snap_to_keypoints
    from physar.tokenizer.parser_loss import soft_ball_moments

    colors = [[255, 0, 0], [0, 0, 255]]
    rows, cols = np.mgrid[0:64, 0:64]

    def draw(centres):
        frame = np.full((64, 64, 3), 255.0)
        for (cx, cy), radius, color in zip(centres, (4.0, 7.5), colors):
            cover = np.clip(radius - np.hypot(cols - cx, rows - cy) + 0.5, 0, 1)[..., None]
            frame = frame * (1 - cover) + np.array(color) * cover
        return frame.round().astype(np.uint8)[None]

    original = draw([(16.3, 30.2), (32.0, 30.0)])
    drawn = draw([(20.6, 30.2), (32.0, 30.0)])  # red touches blue (4 + 7.5 < 11.4 + 1)
    x = DDTTokenizer.to_model_range(torch.from_numpy(drawn))
    keypoints = soft_ball_moments(DDTTokenizer.to_model_range(torch.from_numpy(original)))[1][:, :2]
    known = torch.ones(1, 2, dtype=torch.bool)
    want = parse_frames(original, colors)
    pasted = parse_frames(DDTTokenizer.to_uint8(snap_to_keypoints(x, keypoints, known)).numpy(), colors)
    assert np.abs(pasted.positions - want.positions).max() * 6.3 < 0.1  # pixels
    assert np.abs(pasted.radii - want.radii).max() * 6.3 < 0.1
    shifted = parse_frames(DDTTokenizer.to_uint8(snap_to_keypoints(x, keypoints, known, mode="shift")).numpy(), colors)
    # the old snap cut the red ball: its centre 1.8 px off, its radius 0.55 px short
    assert np.abs(shifted.positions - want.positions).max() * 6.3 > 1.0
    assert (want.radii[0, 0] - shifted.radii[0, 0]) * 6.3 > 0.4
    # each pixel belongs to one ball: alpha 1 inside a ball, 0 on the white background
    alpha = ball_alphas(x, 2)[0].numpy()
    assert alpha[:, 30, 20].tolist() == [1.0, 0.0] and alpha[:, 30, 32].tolist() == [0.0, 1.0]
    assert alpha[:, 5, 5].tolist() == [0.0, 0.0] and alpha.sum(0).max() <= 1.0
    with pytest.raises(ValueError, match="snap mode"):
        snap_to_keypoints(x, keypoints, known, mode="nearest")


def test_keypoint_fine_tokens_round_trip_and_the_refiner_starts_at_zero():
    """Keypoint fine tokens: the ids hold the encoder's keypoints to the grid step (read back through
    the codes), in index order lo then hi (so the LM writes hi first), and a fresh refiner leaves the
    renderer's frame as it is."""
    torch.manual_seed(0)
    cfg = tiny(num_tokens=8, fine_tokens=4, fine_fsq_levels=[8, 8], fsq_levels=[4, 4, 4], fine_encoder="keypoints",
               refiner_channels=8, renderer_sees_fine=False, keypoint_loss_weight=1.0)
    model = DDTTokenizer(cfg).eval()
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    x = model.to_model_range(frames)
    assert "keypoint" in model.loss(x, generator=torch.Generator().manual_seed(0))[1]
    with torch.no_grad():
        points = model.fine_encoder(model._unet_input(x))
        ids = model.encode(frames)
        read, known = model.keypoints(model.ids_to_codes(ids), torch.ones(3, 8, dtype=torch.bool))
    assert ids.shape == (3, 8) and known.all()
    assert (read - points).abs().max() <= 31 / 63 / 2 + 1e-4
    digits = model.fine_fsq.ids_to_digits(ids[:, :4])  # [3, 4, 2]: lo of both keypoints, then hi
    assert torch.allclose(read, (digits[:, 2:] * 8 + digits[:, :2]).float() * 31 / 63)
    # hidden lo tokens read as their middle level; a hidden hi token leaves its keypoint unknown
    kept = torch.ones(3, 8, dtype=torch.bool)
    kept[:, :2] = False
    coarse_read, known = model.keypoints(model.ids_to_codes(ids), kept)
    assert known.all() and (coarse_read - points).abs().max() <= 31 / 7 / 2 + 1e-4
    kept[:, 2] = False
    assert model.keypoints(model.ids_to_codes(ids), kept)[1].tolist() == [[False, True]] * 3
    refined = model.decode(ids)
    model.config.refiner_channels = 0  # the same model without the refiner's step
    assert torch.equal(model.decode(ids), refined)


def test_radius_tokens_hold_each_balls_radius_at_the_lowest_indices():
    """Radius tokens (keypoints with radius_tokens): one token a keypoint at the lowest indices (so the
    keypoint tokens keep theirs and come last in the LM's order), holding the radius encoder's
    radius to its grid step; the radius loss is in the training loss; a hidden radius token is
    unknown."""
    from physar.tokenizer.keypoints import mask_radii

    torch.manual_seed(0)
    cfg = tiny(num_tokens=10, fine_tokens=6, fine_fsq_levels=[8, 8], fsq_levels=[4, 4, 4], fine_encoder="keypoints",
               radius_tokens=True, max_radius=8.0, radius_loss_weight=1.0, snap_to_keypoints=True, renderer_sees_fine=False)
    assert cfg.num_keypoints == 2
    model = DDTTokenizer(cfg).eval()
    frames = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    x = model.to_model_range(frames)
    assert "radius" in model.loss(x, generator=torch.Generator().manual_seed(0))[1]
    with torch.no_grad():
        inputs = model._unet_input(x)
        points, radii = model.fine_encoder(inputs), mask_radii(model.radius_encoder(inputs)).clamp(0, 8)
        ids = model.encode(frames)
        codes, all_kept = model.ids_to_codes(ids), torch.ones(3, 10, dtype=torch.bool)
        read_radii, radius_known = model.radii(codes, all_kept)
        read_points, known = model.keypoints(codes, all_kept)
    assert ids.shape == (3, 10) and known.all() and radius_known.all()
    assert (read_radii - radii).abs().max() <= 8 / 63 / 2 + 1e-4
    assert (read_points - points).abs().max() <= 31 / 63 / 2 + 1e-4
    digits = model.fine_fsq.ids_to_digits(ids[:, :2])  # [3, 2, 2]: each radius token's coarse and fine digit
    assert torch.allclose(read_radii, (digits[..., 0] * 8 + digits[..., 1]).float() * 8 / 63)
    kept = all_kept.clone()
    kept[:, :2] = False  # the first n tokens in the LM's order: the radius tokens go first
    assert not model.radii(codes, kept)[1].any() and model.keypoints(codes, kept)[1].all()
    assert model.decode(ids).shape == (3, 32, 32, 3)
    with pytest.raises(ConfigError, match="multiple of 3"):
        tiny(num_tokens=8, fine_tokens=4, fine_fsq_levels=[8, 8], fsq_levels=[4, 4, 4], fine_encoder="keypoints",
             radius_tokens=True)
    with pytest.raises(ConfigError, match="radius_tokens"):
        tiny(radius_tokens=True)
    with pytest.raises(ConfigError, match="no radius_encoder"):
        tiny(num_tokens=8, fine_tokens=4, fine_fsq_levels=[8, 8], fsq_levels=[4, 4, 4], fine_encoder="keypoints",
             frozen=["radius_encoder"])
    with pytest.raises(ConfigError, match="snap_radius_tolerance"):
        tiny(snap_radius_tolerance=-0.5)


def test_snap_with_radii_scales_a_ball_and_draws_a_lost_one():
    """With radius tokens the snap scales a ball drawn too small to its radius (parsed radius within
    0.15 px) and draws a ball the decoder lost (a few pixels of it left) anew at its keypoint; a
    keypoint whose radius token says under a pixel (no such ball) draws nothing."""
    from physar.evaluation.parse import parse_frames
    from physar.tokenizer.keypoints import snap_to_keypoints
    from physar.tokenizer.parser_loss import soft_ball_moments

    colors = [[255, 0, 0], [0, 0, 255]]
    rows, cols = np.mgrid[0:64, 0:64]

    def draw(balls):
        frame = np.full((64, 64, 3), 255.0)
        for (cx, cy, radius), color in zip(balls, colors):
            cover = np.clip(radius - np.hypot(cols - cx, rows - cy) + 0.5, 0, 1)[..., None]
            frame = frame * (1 - cover) + np.array(color) * cover
        return frame.round().astype(np.uint8)[None]

    original = draw([(20.3, 30.2, 6.5), (40.6, 30.0, 4.0)])
    drawn = draw([(21.0, 30.0, 5.2), (38.0, 31.0, 0.9)])  # red too small, blue all but lost
    x = DDTTokenizer.to_model_range(torch.from_numpy(drawn))
    area, centre = soft_ball_moments(DDTTokenizer.to_model_range(torch.from_numpy(original)))
    keypoints, radii = centre[:, :2], (area[:, :2] / torch.pi).sqrt()
    known = torch.ones(1, 2, dtype=torch.bool)
    snapped = snap_to_keypoints(x, keypoints, known, radii=radii, radius_known=known)
    got, want = parse_frames(DDTTokenizer.to_uint8(snapped).numpy(), colors), parse_frames(original, colors)
    assert got.found.all()
    assert np.abs(got.positions - want.positions).max() * 6.3 < 0.15  # pixels
    assert np.abs(got.radii - want.radii).max() * 6.3 < 0.15
    without = parse_frames(DDTTokenizer.to_uint8(snap_to_keypoints(x, keypoints, known)).numpy(), colors)
    assert (want.radii[0, 1] - without.radii[0, 1]) * 6.3 > 2  # without radii the lost ball stays lost
    nothing = snap_to_keypoints(x, keypoints, known, radii=torch.tensor([[6.5, 0.4]]), radius_known=known)
    assert parse_frames(DDTTokenizer.to_uint8(nothing).numpy(), colors).radii[0, 1] * 6.3 < 2
    # a ball drawn within `radius_tolerance` of its radius is pasted as drawn: red is 1.3 px short
    tolerant = snap_to_keypoints(x, keypoints, known, radii=radii, radius_known=known, radius_tolerance=1.5)
    kept = parse_frames(DDTTokenizer.to_uint8(tolerant).numpy(), colors)
    assert abs((want.radii[0, 0] - kept.radii[0, 0]) * 6.3 - 1.3) < 0.2
    assert np.abs(kept.positions - want.positions).max() * 6.3 < 0.15  # still moved to its keypoint
    assert abs(kept.radii[0, 1] - want.radii[0, 1]) * 6.3 < 0.15  # the lost ball is drawn all the same


def test_disc_snap_draws_a_ball_in_view_as_the_scene_renderer_does_and_pastes_one_at_the_edge():
    """snap mode "disc": a decoded ball (blurred, half a pixel off) with its keypoint and radius tokens at
    the true centre and radius parses as the simulator's own frame does (a ball the renderer draws
    there); a ball reaching the frame's edge is pasted as in "paste" mode; no radii, no disc."""
    import cv2

    from physar.evaluation.parse import parse_frames
    from physar.tokenizer.keypoints import snap_to_keypoints
    from simulators.render import render_frames
    from simulators.world import BLUE, RED, world_to_pixel

    positions, radii = np.array([[[3.13, 5.07], [9.6, 4.0]]]), np.array([0.71, 0.9])  # blue past the right edge
    truth = render_frames(positions, radii, np.array([RED, BLUE]), 64)
    decoded = render_frames(positions + [[[0.06, -0.05], [-0.03, 0.0]]], radii, np.array([RED, BLUE]), 64)
    decoded = cv2.GaussianBlur(decoded[0], (3, 3), 0.8)[None]
    cols, rows = world_to_pixel(positions[0, :, 0], positions[0, :, 1], 64)
    keypoints = torch.tensor(np.stack([cols, rows], -1)[None], dtype=torch.float32)
    radius_px = torch.tensor(radii[None] * 6.3, dtype=torch.float32)
    known = torch.ones(1, 2, dtype=torch.bool)
    x = DDTTokenizer.to_model_range(torch.from_numpy(decoded))

    def snapped(mode):
        out = snap_to_keypoints(x, keypoints, known, mode=mode, radii=radius_px, radius_known=known)
        return DDTTokenizer.to_uint8(out).numpy()

    disc, paste = snapped("disc"), snapped("paste")
    colors = [list(RED), list(BLUE)]
    want, got = parse_frames(truth, colors), parse_frames(disc, colors)
    assert np.abs(got.positions[0, 0] - want.positions[0, 0]).max() < 1e-6  # the same pixels as the renderer's
    # pasted, the blurred ball's own shape moves its parsed centre (here 0.004 units)
    assert np.abs(parse_frames(paste, colors).positions[0, 0] - want.positions[0, 0]).max() > 0.002
    blue = (np.abs(disc.astype(int) - [0, 0, 255]).sum(-1) < 200) | (np.abs(paste.astype(int) - [0, 0, 255]).sum(-1) < 200)
    assert np.array_equal(disc[blue], paste[blue])  # the ball at the edge: pasted alike
    with pytest.raises(ValueError, match="radii"):
        snap_to_keypoints(x, keypoints, known, mode="disc")


def test_run_folder_guards(data32, trained, tmp_path):
    with pytest.raises(TrainingError, match="--resume"):
        train(tiny(steps=6), [data32 / "uniform", data32 / "collision"], trained, frames_per_clip=4, progress=False)
    with pytest.raises(TrainingError, match="other settings.*context_dim"):
        train(tiny(steps=8, context_dim=16), [data32 / "uniform", data32 / "collision"], trained, resume=True,
              frames_per_clip=4, progress=False)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny(), [data32 / "uniform"], tmp_path / "new", resume=True, progress=False)


# --- use on datasets -----------------------------------------------------------------------

def test_reconstruct_writes_videos_the_evaluator_reads(data32, trained, tmp_path):
    out = tmp_path / "recon"
    report = reconstruct(data32 / "collision", trained, out, progress=False)
    records = load_metadata(data32 / "collision")
    for r in records:
        video = read_video(out / r["video"])
        assert video.shape == (r["num_frames"], 32, 32, 3)
    assert report["scenes"]["collision"]["all"]["clips"] == len(records)
    assert (out / "tokenizer_report.md").read_text().startswith("# Tokenizer reconstruction")
    assert len(report["usage"]["distinct"]) == 4
    result = evaluate(data32 / "collision", out, out=tmp_path / "ev" / "report.json", progress=False)
    assert sum(s["failed"] for s in result["collision"].values()) == 0


def test_encode_then_decode_equals_reconstruct(data32, trained, tmp_path):
    path = encode_dataset(data32 / "uniform", trained, progress=False)
    ids, info = load_tokens(path)
    records = load_metadata(data32 / "uniform")
    assert ids.shape == (len(records), 32, 4) and ids.min() >= 0 and ids.max() < 48
    assert json.loads(info["videos"]) == [r["video"] for r in records]
    decode_tokens(path, trained, tmp_path / "dec", progress=False)
    reconstruct(data32 / "uniform", trained, tmp_path / "rec", progress=False)
    for r in records:
        assert np.array_equal(read_video(tmp_path / "dec" / r["video"]), read_video(tmp_path / "rec" / r["video"]))


def test_wrong_resolution_is_refused(trained, tmp_path):
    generate(recipe_path("uniform"), "eval", tmp_path / "d64", count=5, progress=False)
    with pytest.raises(CheckpointError, match="64 px"):
        reconstruct(tmp_path / "d64", trained, tmp_path / "r", progress=False)


def test_inspect_prefixes_writes_table_and_figure(data32, trained, tmp_path):
    result = inspect_prefixes(data32 / "collision", trained, tmp_path / "insp", clips=3, steps=2, progress=False)
    assert [r["num_tokens"] for r in result["rows"]] == [0, 1, 2, 3, 4]
    for name in ("prefixes.md", "prefixes.json", "prefixes.png", "prefix_strip.png"):
        assert (tmp_path / "insp" / name).is_file()


# --- measures ------------------------------------------------------------------------------

def test_ball_errors_measure_shifts_in_pixels():
    positions = np.array([[[3.0, 5.0], [7.0, 5.0]]] * 4)
    radii, colors = np.array([1.0, 1.2]), np.array([[255, 0, 0], [0, 0, 255]])
    frames = render_frames(positions, radii, colors, 64)
    same = ball_errors(frames, frames, colors)
    assert np.all(same["centre"] == 0) and same["found"].all() and len(same["found"]) == 8
    shift = 10 / 63  # one pixel in world units
    moved = render_frames(positions + np.array([shift, 0.0]), radii, colors, 64)
    errors = ball_errors(frames, moved, colors)
    assert np.allclose(errors["centre"], 1.0, atol=0.1)
    gone = ball_errors(frames, np.full_like(frames, 255), colors)
    assert not gone["found"].any()


def _model_range(frames: np.ndarray) -> torch.Tensor:
    return DDTTokenizer.to_model_range(torch.from_numpy(frames))


def test_soft_parser_agrees_with_the_evaluators_parser():
    from physar.evaluation.parse import parse_frames
    from physar.tokenizer.parser_loss import soft_ball_moments

    positions = np.array([[[3.0, 4.0], [6.5, 5.2]], [[3.13, 4.41], [6.21, 5.0]]])
    radii, colors = np.array([0.9, 0.6]), np.array([[255, 0, 0], [0, 0, 255]])
    frames = render_frames(positions, radii, colors, 64)
    area, centre = soft_ball_moments(_model_range(frames))
    hard = parse_frames(frames, colors)
    hard_col, _ = world_to_pixel(hard.positions[..., 0], hard.positions[..., 1], 64)
    assert np.allclose(centre[:, :2, 0].numpy(), hard_col, atol=0.05)
    assert np.allclose(area[:, :2].numpy(), np.pi * (hard.radii * 63 / 10) ** 2, rtol=0.02)
    assert area[:, 2:].max() < 0.5  # absent palette colours: under half a pixel, from soft edges


def test_parser_loss_grows_with_the_shift_and_ignores_lost_balls():
    from physar.tokenizer.parser_loss import parser_loss

    positions = np.array([[[3.0, 4.0], [6.5, 5.2]]])
    radii, colors = np.array([0.9, 0.6]), np.array([[255, 0, 0], [0, 0, 255]])
    original = _model_range(render_frames(positions, radii, colors, 64))
    losses = [parser_loss(_model_range(render_frames(positions + [dx / 6.3, 0.0], radii, colors, 64)), original).item()
              for dx in (0.0, 0.5, 1.0, 2.0, 3.5, 6.0, 9.0)]
    assert losses[0] < 1e-9 and all(a < b for a, b in zip(losses[:5], losses[1:5])), losses
    assert losses[4] - losses[3] == pytest.approx(2 * (3.5 - 2.0), rel=0.1)  # linear past one pixel (squared: 8.25)
    assert losses[5] == losses[6] == pytest.approx(2 * 4.0 - 1)  # flat beyond the reach: the pixel loss's job
    bigger = _model_range(render_frames(positions, radii * 1.3, colors, 64))
    assert parser_loss(bigger, original) > 0.1
    blank = torch.ones_like(original, requires_grad=True)  # both balls lost: no centre term, a finite loss
    loss = parser_loss(blank, original)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(blank.grad).all()


def test_parser_loss_is_added_to_the_training_loss_when_configured():
    frames = _model_range(render_frames(np.array([[[3.0, 4.0]], [[6.0, 5.0]]]), np.array([1.2]),
                                        np.array([[255, 0, 0]]), 32))
    torch.manual_seed(0)
    model = DDTTokenizer(tiny(parser_loss_weight=0.5, nested_dropout=0.0, condition_dropout=0.0))
    loss, logs = model.loss(frames, generator=torch.Generator().manual_seed(1))
    assert logs["parser"] > 0  # an untrained renderer misplaces the ball
    assert loss.item() == pytest.approx(logs["diffusion"] + logs["render"] + 0.5 * logs["parser"], rel=1e-5)
    assert "parser" not in DDTTokenizer(tiny()).loss(frames, generator=torch.Generator().manual_seed(1))[1]


def test_codebook_usage_counts_per_position():
    ids = np.array([[0, 5], [1, 5], [2, 5], [3, 5]])
    usage = codebook_usage(ids, 8)
    assert usage["distinct"] == [4, 1] and usage["total_distinct"] == 5
    assert usage["perplexity"][0] == pytest.approx(4.0) and usage["perplexity"][1] == pytest.approx(1.0)


@pytest.mark.parametrize("name,median_px", [("ddt_cpu", 2.0), ("ddt_cpu_v2", 2.0), ("ddt_cpu_v5", 0.3), ("ddt_cpu_v6", 0.3)])
def test_shipped_checkpoint_loads_and_reconstructs_a_ball(name, median_px):
    from conftest import ROOT

    from physar.tokenizer.codec import load_tokenizer

    path = ROOT / "checkpoints" / name
    if not (path / "model.safetensors").is_file():
        pytest.skip(f"no shipped checkpoint {name} in this checkout")
    model = load_tokenizer(path)
    positions = np.array([[[3.0, 6.0], [7.0, 6.0]], [[3.5, 6.0], [6.5, 6.0]]])
    colors = np.array([[255, 0, 0], [0, 0, 255]])
    frames = render_frames(positions, np.array([1.0, 1.0]), colors, 64)
    recon = model.decode(model.encode(torch.from_numpy(frames))).numpy()
    errors = ball_errors(frames, recon, colors)
    assert errors["found"].all() and np.median(errors["centre"]) < median_px, errors
    if name == "ddt_cpu_v6":  # its radius tokens: each ball's radius (6.3 px here) to a fraction of a pixel
        assert np.median(np.abs(errors["radius"])) < 0.3, errors
