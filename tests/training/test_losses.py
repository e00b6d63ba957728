"""Losses and metrics on known inputs; the VGG19 path with a tiny VGG in torchvision's key layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_lfdeblur.errors import TrainingError
from napari_lfdeblur.training.losses import (
    CombinedLoss,
    PixelLoss,
    ShiftTolerantL1,
    VGGLoss,
    charbonnier,
    make_loss,
)
from napari_lfdeblur.training.metrics import psnr, ssim
from napari_lfdeblur.training.vgg import (
    LAYER_INDEX,
    VGG19_URL,
    VGG19Features,
    load_vgg19,
    vgg19_state_dict_keys,
)


def _smooth(seed=0, n=2, size=80):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size // 4, size // 4, generator=g)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def test_l1_and_charbonnier_known_values():
    pred = torch.zeros(1, 3, 8, 8)
    target = torch.full((1, 3, 8, 8), 0.5)
    assert float(PixelLoss("l1", multiscale=False)(pred, target)) == pytest.approx(0.5)
    assert float(PixelLoss("mse", multiscale=False)(pred, target)) == pytest.approx(0.25)
    assert float(charbonnier(pred, pred, eps=1e-3)) == pytest.approx(1e-3)
    assert float(charbonnier(pred, target, eps=1e-3)) == pytest.approx(math.sqrt(0.25 + 1e-6))


def test_multiscale_weights_and_area_downsampled_targets():
    target = torch.rand(2, 3, 32, 32)
    inter = [F.avg_pool2d(target, s) for s in (8, 4, 2)]
    loss = PixelLoss("l1")  # weights 1, 0.5, 0.25, 0.125
    assert float(loss(target, target, inter)) == pytest.approx(0.0, abs=1e-7)
    off = [e + 0.1 for e in inter]  # every estimate off by 0.1
    expected = 0.125 * 0.1 + 0.25 * 0.1 + 0.5 * 0.1
    assert float(loss(target, target, off)) == pytest.approx(expected, rel=1e-5)
    assert float(PixelLoss("l1", multiscale=False)(target, target, off)) == 0.0


def test_shift_tolerant_l1_ignores_a_small_shift():
    big = _smooth(1, size=88)
    pred = big[..., 4:84, 4:84]
    target = big[..., 6:86, 2:82]  # the same content moved by (2, -2) px
    plain = float((pred - target).abs().mean())
    assert plain > 0.01
    exact = ShiftTolerantL1()  # max_shift 3, scales 1, 2, 4
    assert float(exact(pred, target)) < 1e-6
    # aligned images: the same as L1 (at scale 1)
    other = _smooth(2, size=80)
    st = ShiftTolerantL1(max_shift=0, scales=(1,))
    assert float(st(pred, other)) == pytest.approx(float((pred - other).abs().mean()), rel=1e-5)
    # a real difference is not shifted away
    assert float(exact(pred, other)) > 0.5 * float((pred - other).abs().mean())


def test_shift_tolerant_l1_has_gradients():
    pred = _smooth(3, n=1, size=48).requires_grad_(True)
    loss = ShiftTolerantL1()(pred, _smooth(4, n=1, size=48))
    loss.backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0


def _tiny_vgg_file(tmp_path, upto=29):
    """A random narrow VGG19 in torchvision's key layout (features.N.*, plus a classifier key)."""
    widths = [4, 4, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16, 16]
    torch.manual_seed(0)
    net = VGG19Features(layers=(upto,), widths=widths)
    sd = {k: v for k, v in net.state_dict().items()}
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    path = tmp_path / "vgg19-tiny.pth"
    torch.save(sd, path)
    return path


def test_vgg_keys_match_torchvision_layout():
    keys = list(VGG19Features(layers=("relu5_4",)).state_dict())
    assert keys == vgg19_state_dict_keys(35)
    assert keys[0] == "features.0.weight" and keys[-1] == "features.34.bias" and len(keys) == 32
    assert LAYER_INDEX["relu1_2"] == 3 and LAYER_INDEX["relu3_4"] == 17 and LAYER_INDEX["relu5_1"] == 29


def test_vgg_loss_with_a_weights_file(tmp_path):
    path = _tiny_vgg_file(tmp_path)
    loss = VGGLoss(weights=path)
    x = torch.rand(1, 3, 32, 32)
    assert float(loss(x, x.clone())) == 0.0
    y = torch.rand(1, 3, 32, 32)
    assert float(loss(x, y)) > 0
    vgg = load_vgg19(path, layers=("relu2_2",))
    assert len(vgg.features) == LAYER_INDEX["relu2_2"] + 1
    assert not any(p.requires_grad for p in vgg.parameters())
    combo = make_loss("vgg+0.5*shift_l1", "feature", vgg_weights=path)
    assert isinstance(combo, CombinedLoss) and combo.names == ["vgg", "shift_l1"]
    v = combo(x, y)
    assert combo.terms["vgg"] > 0 and float(v) == pytest.approx(combo.terms["vgg"] + 0.5 * combo.terms["shift_l1"],
                                                                 rel=1e-5)


def test_missing_vgg_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(TrainingError) as e:
        make_loss(None, "feature")  # the feature phase's default loss is VGG
    msg = str(e.value)
    assert VGG19_URL in msg and "vgg_weights" in msg and "shift_l1" in msg
    assert str(tmp_path / "torch_home" / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth") in msg
    with pytest.raises(TrainingError, match="vgg19"):
        VGGLoss(weights=tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(TrainingError, match="not a torchvision VGG19"):
        VGGLoss(weights=bad)


def test_make_loss_specs():
    assert make_loss(None, "pixel").spec == "l1"
    assert make_loss("charbonnier", "pixel").parts[0].kind == "charbonnier"
    assert make_loss("shift_l1", "feature").parts[0].max_shift == 3
    assert make_loss("l1", "feature").parts[0].multiscale is False
    with pytest.raises(TrainingError, match="unknown loss term"):
        make_loss("ssim", "pixel")
    with pytest.raises(TrainingError, match="phase"):
        make_loss("l1", "adversarial")


def test_psnr_known_value_and_ssim_matches_skimage():
    a = np.zeros((16, 16, 3))
    b = np.full((16, 16, 3), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert psnr(a, a) == math.inf
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    x = rng.random((40, 36, 3))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    ref = structural_similarity(x, y, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                use_sample_covariance=False)
    assert ssim(x, y) == pytest.approx(ref, abs=1e-6)
    tx = torch.from_numpy(x.transpose(2, 0, 1)).float()[None]
    ty = torch.from_numpy(y.transpose(2, 0, 1)).float()[None]
    assert ssim(tx, ty) == pytest.approx(ref, abs=1e-4)
    assert ssim(tx, tx) == pytest.approx(1.0, abs=1e-5)
