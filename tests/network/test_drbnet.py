"""DRBNet: the full configuration is the authors' network; lighter widths; padding; input checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from napari_lfdeblur.errors import DeblurInputError, ModelError
from napari_lfdeblur.network.drbnet import DRBNet, pad_to_multiple

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SPEC = ROOT.parent / "shared" / "spec" / "drbnet_official_state_dict.txt"
N_PARAMS_PAPER = 11_689_616


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def read_spec(path: Path = SPEC) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every tensor listed in the spec file ("name 32x3x3x3" per line)."""
    if not path.exists():
        pytest.skip(f"spec file not available: {path}")
    out = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        name, shape = line.split()
        out.append((name, tuple(int(s) for s in shape.split("x"))))
    return out


@pytest.fixture(scope="module")
def full():
    torch.manual_seed(0)
    return DRBNet().eval()


@pytest.fixture(scope="module")
def lite():
    torch.manual_seed(0)
    return DRBNet(base=8).eval()


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def test_full_parameter_count(full):
    assert n_params(full) == N_PARAMS_PAPER
    assert full.config == {"arch": "DRBNet", "base": 32, "res_blocks": 2}
    assert full.input_convention == "rgb_minus1_1"


def test_full_names_and_shapes_match_the_authors(full):
    spec = read_spec()
    assert len(spec) == 138
    ours = [(k, tuple(v.shape)) for k, v in full.state_dict().items()]
    assert ours == spec  # same names, same shapes, same order
    assert sum(torch.Size(s).numel() for _, s in spec) == N_PARAMS_PAPER
    # strict load of a state dict with those names and shapes
    sd = {k: torch.zeros(s) for k, s in spec}
    DRBNet().load_state_dict(sd, strict=True)


@pytest.mark.parametrize("base", [16, 8])
def test_lighter_widths_scale(base):
    m = DRBNet(base=base)
    sd = m.state_dict()
    f = base / 32
    assert sd["conv1_1.0.weight"].shape == (base, 3, 3, 3)
    assert sd["conv4_1.0.weight"].shape[0] == 8 * base
    assert sd["upconv0_kernel.2.weight"].shape[0] == 49  # kernels stay 7x7
    assert sd["upconv0_res.2.0.weight"].shape[0] == 3
    assert sd["img_d8_feature.2.0.weight"].shape[0] == int(256 * f)
    # convolution weights dominate: about f**2 of the parameters
    assert 0.8 * f**2 < n_params(m) / N_PARAMS_PAPER < 1.2 * f**2
    assert len(sd) == 138


def test_res_blocks_config():
    m = DRBNet(base=8, res_blocks=1)
    names = set(m.state_dict())
    assert "conv4_4.1.stem.0.0.weight" in names and "conv4_4.2.0.weight" in names  # index 2 = last conv
    assert "conv4_4.2.stem.0.0.weight" not in names
    assert "upconv3_1.stem.0.0.weight" in names and "upconv3_2.stem.0.0.weight" not in names
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.inference_mode():
        assert m.eval()(x).shape == x.shape
    assert DRBNet.from_config(m.config).config == m.config


@pytest.mark.parametrize("bad", [0, -8, 3.5, True, "32"])
def test_bad_config(bad):
    with pytest.raises(ModelError):
        DRBNet(base=bad)


@pytest.mark.parametrize("config", [{"base": 100_000}, {"base": 257}, {"base": 8, "res_blocks": 10**6}])
def test_unreasonable_widths_are_refused_before_allocating(config):
    import time

    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="unreasonably"):
        DRBNet.from_config(config)  # base 100000 asked the allocator for terabytes
    assert time.perf_counter() - t0 < 1


def test_from_config_rejects_unknown():
    with pytest.raises(ModelError, match="unknown"):
        DRBNet.from_config({"base": 8, "heads": 4})
    with pytest.raises(ModelError, match="architecture"):
        DRBNet.from_config({"arch": "UNet", "base": 8})


def test_forward_full_small(full):
    x = torch.rand(1, 3, 24, 32) * 2 - 1
    with torch.inference_mode():
        y, inter = full(x, return_intermediate=True)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= -1 and float(y.max()) <= 1
    assert [tuple(e.shape[-2:]) for e in inter] == [(3, 4), (6, 8), (12, 16)]
    assert torch.isfinite(y).all()


def test_odd_size_equals_crop_of_padded_forward(lite):
    x = torch.rand(2, 3, 37, 53) * 2 - 1
    with torch.inference_mode():
        y = lite(x)
        padded = F.pad(x, (0, 3, 0, 3), mode="reflect")  # 40 x 56
        y_pad = lite(padded)
    assert y.shape == x.shape
    torch.testing.assert_close(y, y_pad[..., :37, :53], atol=1e-6, rtol=0)


def test_batch_matches_single(lite):
    x = torch.rand(3, 3, 16, 24) * 2 - 1
    with torch.inference_mode():
        yb = lite(x)
        y1 = torch.cat([lite(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(yb, y1, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (4, 9), (8, 8), (7, 16)])
def test_tiny_images(lite, hw):
    x = torch.rand(1, 3, *hw) * 2 - 1
    with torch.inference_mode():
        assert lite(x).shape == x.shape


def test_pad_to_multiple_modes():
    x = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 5, 5)
    p, h, w = pad_to_multiple(x)
    assert p.shape[-2:] == (8, 8) and (h, w) == (5, 5)
    # 3 rows of padding on a side of 5: reflect (x[3], x[2], x[1])
    assert p[0, 0, 0, 5:].tolist() == [3.0, 2.0, 1.0]
    q, _, _ = pad_to_multiple(torch.rand(1, 1, 3, 3))  # pad 5 >= 3: replicate
    assert q.shape[-2:] == (8, 8)
    assert pad_to_multiple(torch.rand(1, 1, 16, 8))[0].shape[-2:] == (16, 8)


def test_nearest_upsampling_is_area_for_x2():
    e = torch.rand(2, 3, 5, 7)
    torch.testing.assert_close(
        F.interpolate(e, scale_factor=2, mode="nearest"), F.interpolate(e, scale_factor=2, mode="area")
    )


def test_input_checks(lite):
    with pytest.raises(DeblurInputError, match="3"):
        lite(torch.rand(1, 1, 16, 16))
    with pytest.raises(DeblurInputError, match="4-D"):
        lite(torch.rand(3, 16, 16))
    with pytest.raises(DeblurInputError):
        lite(torch.zeros(1, 3, 0, 16))
    with pytest.raises(DeblurInputError, match="floating"):
        lite(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_training_backward_and_intermediates():
    torch.manual_seed(0)
    m = DRBNet(base=8).train()
    m.clip_output = False
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y, inter = m(x, return_intermediate=True)
    loss = (y - x).abs().mean() + sum((e - F.avg_pool2d(x, 16 // e.shape[-1])).abs().mean() for e in inter)
    loss.backward()  # in-place ops must not break autograd
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_unfold_fac_gives_same_network_output(lite):
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.inference_mode():
        a = lite(x)
        lite.fac_impl = "unfold"
        try:
            b = lite(x)
        finally:
            lite.fac_impl = "shift"
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    with pytest.raises(ModelError):
        lite.fac_impl = "fft"


def test_channels_last_gives_the_same_output():
    torch.manual_seed(0)
    m = DRBNet(base=8).eval()
    x = torch.rand(2, 3, 24, 40) * 2 - 1
    with torch.inference_mode():
        a = m(x)
        m_cl = DRBNet(base=8).eval()
        m_cl.load_state_dict(m.state_dict())
        m_cl = m_cl.to(memory_format=torch.channels_last)
        b = m_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_pointwise_nchw_matches_conv():
    from napari_lfdeblur.network.drbnet import _pointwise_nchw

    conv = torch.nn.Conv2d(16, 49, 1)
    x = torch.randn(2, 16, 7, 9)
    ref = conv(x)
    out = _pointwise_nchw(conv, x.contiguous(memory_format=torch.channels_last))
    assert out.is_contiguous()
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    out.sum().backward()  # differentiable
    assert conv.weight.grad is not None
    with torch.inference_mode():  # the out= path
        fast = _pointwise_nchw(conv, x.contiguous(memory_format=torch.channels_last))
    assert fast.is_contiguous()
    torch.testing.assert_close(fast, ref.detach(), atol=1e-5, rtol=1e-5)
    nobias = torch.nn.Conv2d(16, 49, 1, bias=False)
    with torch.no_grad():
        torch.testing.assert_close(
            _pointwise_nchw(nobias, x.contiguous(memory_format=torch.channels_last)), nobias(x), atol=1e-5, rtol=1e-5
        )


def test_input_detail_network_starts_as_the_identity():
    """With input_detail the untrained network hands the input through exactly (odd sizes too),
    while the paper's estimate path does not, and the weights have the paper's names."""
    torch.manual_seed(0)
    net = DRBNet(base=8, input_detail=True).eval()
    x = torch.rand(2, 3, 37, 53) * 2 - 1
    with torch.no_grad():
        y, inter = net(x, return_intermediate=True)
    assert torch.allclose(y, x, atol=1e-5)
    assert torch.allclose(inter[0], F.avg_pool2d(pad_to_multiple(x, 8)[0], 8)[..., :5, :7], atol=1e-5)
    paper = DRBNet(base=8).eval()
    paper.load_state_dict(net.state_dict())  # same names and shapes
    with torch.no_grad():
        assert (paper(x) - x).abs().max() > 0.05  # the paper's path: a blocky 1/8 estimate refined
    assert net.config == {"arch": "DRBNet", "base": 8, "res_blocks": 2, "input_detail": True}
    assert "input_detail" not in DRBNet(base=8).config  # the authors' config stays as theirs
    assert DRBNet.from_config(net.config).input_detail


def test_input_detail_network_learns():
    """The zeroed heads still get gradients, so one step moves the output off the identity."""
    torch.manual_seed(0)
    net = DRBNet(base=4, input_detail=True)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    target = torch.zeros_like(x)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    (net(x) - target).abs().mean().backward()
    grads = [net.upconv0_res[-1][0].weight.grad, net.upconv0_kernel[-1].weight.grad]
    assert all(g is not None and g.abs().sum() > 0 for g in grads)
    opt.step()
    with torch.no_grad():
        assert (net(x) - x).abs().mean() > 1e-4
