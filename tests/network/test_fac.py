"""FAC: the shift-and-accumulate version equals the unfold reference, values and gradients."""

from __future__ import annotations

import pytest
import torch

from napari_lfdeblur.network.fac import fac, fac_unfold

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _direct(image, kernels, k=7):
    """The formula written out, pixel by pixel (tiny sizes only)."""
    _n, _c, h, w = image.shape
    r = k // 2
    out = torch.zeros_like(image)
    for y in range(h):
        for x in range(w):
            for dy in range(k):
                for dx in range(k):
                    yy = min(max(y + dy - r, 0), h - 1)  # replicate padding
                    xx = min(max(x + dx - r, 0), w - 1)
                    out[:, :, y, x] += kernels[:, dy * k + dx, y, x][:, None] * image[:, :, yy, xx]
    return out


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 3, 13, 21), (3, 3, 1, 5), (1, 3, 40, 33), (2, 1, 9, 10)])
def test_fac_equals_unfold(shape):
    g = torch.Generator().manual_seed(sum(shape))
    n, _c, h, w = shape
    image = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    kernels = torch.randn((n, 49, h, w), generator=g, dtype=torch.float64)
    a = fac(image, kernels)
    b = fac_unfold(image, kernels)
    assert a.shape == shape
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # float32 too
    torch.testing.assert_close(fac(image.float(), kernels.float()), b.float(), atol=1e-5, rtol=1e-5)


def test_fac_matches_formula():
    g = torch.Generator().manual_seed(0)
    image = torch.rand((2, 3, 6, 5), generator=g, dtype=torch.float64)
    kernels = torch.randn((2, 49, 6, 5), generator=g, dtype=torch.float64)
    torch.testing.assert_close(fac(image, kernels), _direct(image, kernels), atol=1e-10, rtol=0)


def test_fac_identity_and_shift():
    image = torch.rand(1, 3, 11, 12)
    k = torch.zeros(1, 49, 11, 12)
    k[:, 24] = 1.0  # centre tap
    torch.testing.assert_close(fac(image, k), image)
    k = torch.zeros(1, 49, 11, 12)
    k[:, 3 * 7 + 4] = 1.0  # dy=3, dx=4: the right neighbour
    out = fac(image, k)
    torch.testing.assert_close(out[..., :-1], image[..., 1:])
    torch.testing.assert_close(out[..., -1], image[..., -1])  # replicated border


@pytest.mark.parametrize("shape", [(2, 3, 9, 14), (1, 3, 16, 7)])
def test_fac_gradients_equal(shape):
    g = torch.Generator().manual_seed(1)
    n, _c, h, w = shape
    img0 = torch.rand(shape, generator=g, dtype=torch.float64)
    ker0 = torch.randn((n, 49, h, w), generator=g, dtype=torch.float64)
    weight = torch.randn(shape, generator=g, dtype=torch.float64)
    grads = []
    for fn in (fac, fac_unfold):
        img = img0.clone().requires_grad_(True)
        ker = ker0.clone().requires_grad_(True)
        (fn(img, ker) * weight).sum().backward()
        grads.append((img.grad, ker.grad))
    torch.testing.assert_close(grads[0][0], grads[1][0], atol=1e-5, rtol=0)
    torch.testing.assert_close(grads[0][1], grads[1][1], atol=1e-5, rtol=0)


def test_fac_gradcheck():
    g = torch.Generator().manual_seed(2)
    img = torch.rand((1, 2, 5, 4), generator=g, dtype=torch.float64, requires_grad=True)
    ker = torch.randn((1, 49, 5, 4), generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fac, (img, ker))


def test_fac_channels_last():
    image = torch.rand(2, 3, 10, 12).contiguous(memory_format=torch.channels_last)
    kernels = torch.randn(2, 49, 10, 12).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fac(image, kernels), fac_unfold(image, kernels), atol=1e-5, rtol=1e-5)


def test_fac_rejects_bad_shapes():
    with pytest.raises(ValueError, match="49"):
        fac(torch.rand(1, 3, 8, 8), torch.rand(1, 48, 8, 8))
    with pytest.raises(ValueError):
        fac(torch.rand(3, 8, 8), torch.rand(49, 8, 8))
    with pytest.raises(ValueError):
        fac(torch.rand(1, 3, 8, 8), torch.rand(1, 49, 8, 9))
