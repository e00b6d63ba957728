"""Training pairs made on the training device (training/ondevice), on the CPU: the physics, determinism, the
preloaded real pairs, the mix, and the trainer's data_on_device / channels_last / compile options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_lfdeblur.errors import TrainingError
from napari_lfdeblur.training import LightFieldPairs, ProceduralPairs, open_pairs, train
from napari_lfdeblur.training.ondevice import (
    DeviceBatches,
    LightFieldSource,
    MixSource,
    PairSource,
    ProceduralSource,
    device_source,
    step_generator,
)

TINY = {"model": {"base": 4, "input_detail": True}, "batch": 2, "patch": 32, "device": "cpu", "seed": 3,
        "amp": False}


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _gen(step=0, seed=0):
    return step_generator(seed, step, 0, "cpu")


# --------------------------------------------------------------------------- procedural light fields
def test_procedural_batches_are_a_function_of_seed_and_step():
    src = ProceduralSource(patch=32, views=5)
    a = src.batch(3, _gen(5))
    b = src.batch(3, _gen(5))
    c = src.batch(3, _gen(6))
    assert a[0].shape == a[1].shape == (3, 3, 32, 32) and a[0].dtype == torch.float32
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert 0 <= float(a[0].min()) and float(a[0].max()) <= 1


def test_blur_grows_with_the_focus_error_and_vanishes_in_focus():
    # one textured plane at disparity 0, the whole aperture: only the focus changes
    src = ProceduralSource(patch=32, views=7, layers=(1, 1), disparity_range=(0.0, 0.0), focus=(-1.5, 1.5),
                           apertures=(1.0, 1.0))
    scene = src.draw(4, _gen())
    errors = []
    for f in (0.0, 0.25, 0.5, 1.0):
        scene.focus = torch.full((4,), f)
        blur, sharp = src.render(scene)
        errors.append(float((blur - sharp).abs().mean()))
    assert errors[0] < 1e-6  # in focus: the views coincide, the blurred image is the sharp one
    assert errors[1] < errors[2] < errors[3], errors
    assert errors[1] > 1e-3


def test_blur_is_the_aperture_average_of_the_shifted_centre_view():
    # a focus error of 1 px per view step: view (v, u) is the plane shifted by (v - vc, u - uc) whole pixels
    src = ProceduralSource(patch=32, views=5, layers=(1, 1), disparity_range=(1.0, 1.0), focus=(0.0, 0.0),
                           apertures=(1.0, 1.0))
    blur, sharp = src.render(src.draw(2, _gen()))
    r = 2
    expected = torch.zeros_like(sharp[..., r:-r, r:-r])
    for dv in range(-r, r + 1):
        for du in range(-r, r + 1):
            expected += sharp[..., r + dv : 32 - r + dv, r + du : 32 - r + du] / 25
    assert torch.allclose(blur[..., r:-r, r:-r], expected, atol=1e-5)


def test_an_in_focus_layer_stays_sharp_in_front_of_blurred_ones():
    src = ProceduralSource(patch=48, views=7, layers=(3, 3), disparity_range=(-1.0, 1.0), apertures=(1.0, 1.0))
    scene = src.draw(4, _gen(1))
    scene.focus = scene.disparity[:, 2].clone()  # focus on the front layer
    blur, sharp = src.render(scene)
    M, P = src.margin, src.patch
    front = scene.rgba[:, 2, 3, M : M + P, M : M + P] >= 1  # where the front object is opaque
    behind = scene.rgba[:, 2, 3, M : M + P, M : M + P] <= 0
    assert int(front.sum()) > 50 and int(behind.sum()) > 50
    err = (blur - sharp).abs().mean(1)
    assert float(err[front].max()) < 1e-5
    assert float(err[behind].mean()) > 1e-3  # the layers behind, out of focus, are blurred


def test_noise_is_averaged_down_in_the_blurred_image():
    flat = np.full((200, 200, 3), 128, np.uint8)
    src = ProceduralSource(patch=64, views=5, layers=(1, 1), disparity_range=(0.0, 0.0), focus=(0.0, 0.0),
                           apertures=(1.0, 1.0), noise=0.05, images=[flat])
    blur, sharp = src.batch(2, _gen())
    assert abs(float(sharp.std()) - 0.05) < 0.005
    assert abs(float(blur.std()) - 0.05 / 5) < 0.002  # 25 views average the noise down 5 times


def test_photos_texture_the_pools_scenes_too():
    photo = np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    src = ProceduralSource(patch=16, views=3, size=40, layers=(1, 1), disparity_range=(0.0, 0.0), pool=1,
                           images=[photo])
    assert src._scenes.photos
    src.at_step(0, 1, seed=0)
    centre = src._slots[0, 4].permute(1, 2, 0).numpy()
    side = centre.shape[0]

    def window_of_photo(w):
        ys, xs = np.nonzero((photo == w[0, 0]).all(-1))
        return any((photo[y : y + side, x : x + side] == w).all() for y, x in zip(ys, xs))

    # one plane at disparity 0: the centre view is a window of the photo at its native scale (flipped or not)
    assert window_of_photo(centre) or window_of_photo(centre[:, ::-1])
    with pytest.raises(TrainingError, match="at least"):
        ProceduralSource(patch=16, views=3, size=40, pool=1, images=[photo[:50, :50]])


def test_photos_texture_the_layers_at_their_native_scale():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    src = ProceduralSource(patch=32, views=3, layers=(1, 1), disparity_range=(0.0, 0.0), focus=(0.0, 0.0),
                           images=[photo])
    _, sharp = src.batch(2, _gen())
    win = (sharp[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    # the sharp image is a window of the photo (flipped or not), pixel for pixel
    found = any((photo[y : y + 32, x : x + 32] == w).all()
                for w in (win, win[:, ::-1]) for y in range(89) for x in range(89))
    assert found


def test_pooled_pairs_are_refocused_from_the_pools_light_fields():
    from napari_lfdeblur.lightfield.core import LightField
    from napari_lfdeblur.lightfield.refocus import refocus

    src = ProceduralSource(patch=16, views=5, size=40, focus=(0.7, 0.7), apertures=(1.0, 1.0), pool=2, refresh=64,
                           augment=False)
    assert not src._scenes.photos  # the pool's scenes wear the bundled textures, rescaled and tinted
    src.at_step(0, 4, seed=0)
    blur, sharp = src.batch(4, _gen())
    S = src.view_side
    fields = [src._slots[k].to(torch.float32).div(255).permute(0, 2, 3, 1).reshape(5, 5, S, S, 3).numpy()
              for k in range(2)]
    for b, s in zip(blur, sharp):
        s = s.permute(1, 2, 0).numpy()
        hits = [(k, y, x) for k, lf in enumerate(fields) for y in range(S - 15) for x in range(S - 15)
                if np.abs(lf[2, 2, y : y + 16, x : x + 16] - s).max() < 1e-6]
        assert hits, "the sharp image is a window of a pooled scene's centre view"
        k, y, x = hits[0]
        ref = np.asarray(refocus(LightField(fields[k]), 0.7, aperture=1.0))[y : y + 16, x : x + 16]
        assert np.abs(ref - b.permute(1, 2, 0).numpy()).max() < 1e-4


def test_the_pool_is_a_function_of_the_step():
    a = ProceduralSource(patch=16, views=3, size=32, pool=3, refresh=8)
    for step in range(6):  # scenes replaced on the way
        a.at_step(step, 2, seed=4)
    b = ProceduralSource(patch=16, views=3, size=32, pool=3, refresh=8)
    b.at_step(5, 2, seed=4)  # straight to step 5, as a resumed run
    assert a._generation == b._generation and max(a._generation) >= 1
    assert torch.equal(a._slots, b._slots)
    assert all(torch.equal(x, y) for x, y in zip(a.batch(3, _gen(5)), b.batch(3, _gen(5))))
    c = ProceduralSource(patch=16, views=3, size=32, pool=3, refresh=8)
    c.at_step(5, 2, seed=5)
    assert not torch.equal(c._slots, b._slots)


def test_procedural_source_options_are_checked():
    with pytest.raises(TrainingError, match="odd"):
        ProceduralSource(patch=32, views=4)
    with pytest.raises(TrainingError, match="multiple of 8"):
        ProceduralSource(patch=30)
    with pytest.raises(TrainingError, match="at least"):
        ProceduralSource(patch=64, images=[np.zeros((40, 40, 3), np.uint8)])


# --------------------------------------------------------------------------- real pairs and light fields
def test_pair_source_crops_windows_of_the_preloaded_pairs(tiny_pair_folder):
    src = PairSource(open_pairs(tiny_pair_folder, patch=16), patch=16, augment=False)
    assert len(src) == 4 and src.pairs.dtype == torch.uint8
    blur, sharp = src.batch(6, _gen())
    assert blur.shape == sharp.shape == (6, 3, 16, 16)
    # the fixture's blurred shot is sharp // 2 + 64: every window pairs the same place of the same scene
    s8 = (sharp * 255).round()
    assert torch.equal((blur * 255).round(), torch.div(s8, 2, rounding_mode="floor") + 64)
    full = src.pairs[:, 1].to(torch.float32)
    for w in s8:
        assert any(torch.equal(full[i, :, y : y + 16, x : x + 16], w) for i in range(4) for y in range(25)
                   for x in range(25))
    again = src.batch(6, _gen())
    assert torch.equal(again[1], sharp)


def test_pair_source_flips_both_images_alike_and_refuses_too_much_data(tiny_pair_folder):
    src = PairSource(open_pairs(tiny_pair_folder, patch=16), patch=16, augment=True)
    blur, sharp = src.batch(16, _gen(2))
    assert torch.equal((blur * 255).round(), torch.div((sharp * 255).round(), 2, rounding_mode="floor") + 64)
    with pytest.raises(TrainingError, match="data_on_device=False"):
        PairSource(open_pairs(tiny_pair_folder, patch=16), patch=16, max_mb=0.01)


def test_light_field_source_refocuses_as_the_refocus_module():
    from napari_lfdeblur.lightfield.refocus import refocus
    from napari_lfdeblur.lightfield.synthetic import synthetic_lightfield

    lf = synthetic_lightfield(seed=1, views=5, size=48, n_layers=3, disparity_range=(-1, 1))
    ds = LightFieldPairs([lf], patch=16, focus=(0.6, 0.6), apertures=(1.0, 1.0), augment=False)
    src = LightFieldSource(ds, patch=16, augment=False)
    blur, sharp = src.batch(3, _gen())
    ref = np.clip(np.asarray(refocus(lf, 0.6, aperture=1.0)), 0, 1)
    centre = np.asarray(lf.center_view())
    for b, s in zip(blur, sharp):
        s = s.permute(1, 2, 0).numpy()
        hits = [(y, x) for y in range(33) for x in range(33)
                if np.abs(centre[y : y + 16, x : x + 16] - s).max() < 3 / 255]
        assert hits, "the sharp image is a window of the centre view"
        y, x = hits[0]
        assert np.abs(ref[y : y + 16, x : x + 16] - b.permute(1, 2, 0).numpy()).max() < 3 / 255


def test_mix_draws_in_the_given_proportions(tiny_pair_folder, tmp_path):
    from PIL import Image

    for sub in ("blur", "sharp"):
        (tmp_path / "white" / sub).mkdir(parents=True)
        Image.fromarray(np.full((20, 20, 3), 255, np.uint8)).save(tmp_path / "white" / sub / "w.png")
    dark = PairSource(open_pairs(tiny_pair_folder, patch=16), patch=16)
    white = PairSource(open_pairs(tmp_path / "white", patch=16), patch=16)
    mix = MixSource([dark, white], [1, 3])
    _, sharp = mix.batch(400, _gen())
    share = float((sharp.flatten(1).min(1).values == 1).float().mean())
    assert 0.68 < share < 0.82


def test_device_source_of_datasets_and_what_it_refuses(tiny_pair_folder):
    from napari_lfdeblur.training import ConcatPairs

    proc = ProceduralPairs(patch=32, views=5, disparity_range=(-0.5, 0.5), layers=(2, 3))
    src = device_source(proc, patch=32, device="cpu")
    assert isinstance(src, ProceduralSource) and src.views == 5 and src.layers == (2, 3)
    pairs = open_pairs(tiny_pair_folder, patch=32)
    both = device_source(ConcatPairs([pairs, proc]), patch=32, device="cpu")
    assert isinstance(both, MixSource) and float(both.p[0]) == pytest.approx(4 / (4 + len(proc)))
    with pytest.raises(TrainingError, match="data_on_device=False"):
        device_source(torch.utils.data.TensorDataset(torch.zeros(2, 3, 8, 8)), patch=32, device="cpu")


# --------------------------------------------------------------------------- in the trainer
def _proc():
    return ProceduralPairs(patch=32, views=5, length=64)


def test_training_on_device_resumes_exactly(tmp_path):
    from napari_lfdeblur.training import CancelToken, Step

    whole = train(_proc(), steps=4, data_on_device=True, **TINY)
    token = CancelToken()

    def stop_after_2(e):
        if isinstance(e, Step) and e.step == 2:
            token.cancel()

    first = train(_proc(), steps=4, data_on_device=True, out=tmp_path / "r", cancel=token, callback=stop_after_2,
                  **TINY)
    assert first.cancelled and first.steps == 2
    rest = train(_proc(), steps=4, data_on_device=True, out=tmp_path / "r", resume=True, **TINY)
    assert rest.steps == 4
    np.testing.assert_allclose(rest.losses, whole.losses, rtol=0, atol=1e-6)
    for a, b in zip(rest.model.state_dict().values(), whole.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_data_on_device_auto_keeps_the_data_loader_on_the_cpu(tiny_pair_folder):
    from napari_lfdeblur.training.trainer import Trainer

    tr = Trainer(tiny_pair_folder, _cfg(steps=1), model=4)
    tr._start()
    assert tr.source is None and isinstance(tr.loader, torch.utils.data.DataLoader)
    on = Trainer(tiny_pair_folder, _cfg(steps=1, data_on_device=True), model=4)
    on._start()
    assert isinstance(on.source, PairSource) and isinstance(on.loader, DeviceBatches)


def _cfg(**kw):
    from napari_lfdeblur.training import TrainConfig

    return TrainConfig(batch=2, patch=16, device="cpu", amp=False, distributed=False, **kw)


def test_data_on_device_true_says_when_the_data_cannot_be_made_there():
    data = torch.utils.data.TensorDataset(torch.zeros(4, 3, 32, 32), torch.zeros(4, 3, 32, 32))
    with pytest.raises(TrainingError, match="cannot be made on the training device"):
        train(data, steps=1, data_on_device=True, **TINY)


def test_channels_last_trains_the_same_run():
    plain = train(_proc(), steps=3, data_on_device=True, **TINY)
    cl = train(_proc(), steps=3, data_on_device=True, channels_last=True, **TINY)
    assert [h["loss"] for h in cl.history] == pytest.approx([h["loss"] for h in plain.history], rel=1e-4, abs=1e-6)
    assert next(cl.model.parameters()).dim() == 4  # a conv weight, in channels-last order during training
    assert next(cl.model.parameters()).is_contiguous(memory_format=torch.channels_last)


def test_compile_runs_a_training_step():
    # the "eager" backend traces the network with TorchDynamo without generating code, so the test needs no C++
    # compiler and takes seconds; compile=True (inductor) is the same path with code generation, which ran here
    # too but compiled for 6.5 minutes on the shared 2-core CPU
    r = train(_proc(), steps=1, data_on_device=True, compile="eager", **TINY)
    assert r.steps == 1 and np.isfinite(r.history[0]["loss"])


@pytest.mark.parametrize("option, value", [("data_on_device", "yes"), ("channels_last", 1), ("compile", "")])
def test_bad_options_are_refused(option, value):
    from napari_lfdeblur.training import TrainConfig

    with pytest.raises(TrainingError, match=option):
        TrainConfig(**{option: value})
