"""deblur on whole images: shapes, dtype, range, odd sizes, input refusals, model choice."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import napari_lfdeblur as lfd
from napari_lfdeblur.errors import DeblurInputError, ModelError
from napari_lfdeblur.inference import models as deblur_mod
from napari_lfdeblur.inference.deblur import deblur
from napari_lfdeblur.inference.runtime import resolve_runtime
from napari_lfdeblur.network.checkpoint import save_model
from napari_lfdeblur.network.drbnet import DRBNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(1)
    return DRBNet(base=8).eval()


def rgb(h, w, seed=0):
    return np.random.default_rng(seed).random((h, w, 3))


@pytest.mark.parametrize("hw", [(37, 53), (16, 16), (5, 3)])
def test_shape_dtype_range(net, hw):
    out = deblur(rgb(*hw), model=net, device="cpu")
    assert out.shape == (*hw, 3) and out.dtype == np.float64  # the input's dtype is kept
    assert out.min() >= 0 and out.max() <= 1 and np.isfinite(out).all()


def test_matches_the_network(net):
    img = rgb(40, 56).astype(np.float32)  # both sides >= MIN_SIDE: what the network sees is the image itself
    out = deblur(img, model=net, device="cpu", dtype="float32")
    x = torch.from_numpy(img).permute(2, 0, 1)[None] * 2 - 1
    with torch.inference_mode():
        ref = ((net(x) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-6)


@pytest.mark.parametrize("native", [True, False])
def test_cpu_default_precision_is_bfloat16_where_native_and_stays_within_a_level(monkeypatch, native):
    from skimage.data import astronaut

    from napari_lfdeblur.network import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    deblur_mod.clear_model_cache()
    img = astronaut()[96:288, 128:320]  # uint8 RGB photo, 192x192
    exact = deblur(img, device="cpu", dtype="float32")
    auto = deblur(img, device="cpu")
    deblur_mod.clear_model_cache()
    diff = np.abs(auto.astype(int) - exact.astype(int))
    if not native:
        np.testing.assert_array_equal(auto, exact)
        return
    # the shipped model in bfloat16 autocast: really a different computation, but within a level or two of 255
    assert diff.any() and diff.max() <= 2 and diff.mean() < 0.1


def test_input_not_modified(net):
    img = rgb(16, 24).astype(np.float32)
    before = img.copy()
    deblur(img, model=net, device="cpu")
    np.testing.assert_array_equal(img, before)


def test_public_api(net):
    assert lfd.deblur is deblur
    assert lfd.DRBNet is DRBNet
    out = lfd.deblur(rgb(9, 10).astype(np.float16), model=net, device="cpu")
    assert out.shape == (9, 10, 3) and out.dtype == np.float16


def test_the_runtime_runs_batches_and_single_images(net):
    batch = np.stack([rgb(40, 40, s) for s in range(3)]).astype(np.float32)
    runtime = resolve_runtime(net, "cpu")
    assert runtime.backend == "torch" and runtime.batch == 1 and runtime.halo == 64
    out = runtime(batch)
    np.testing.assert_allclose(runtime(batch[2]), out[2], atol=1e-6)
    assert out.shape == batch.shape
    np.testing.assert_allclose(out[1], deblur(batch[1], model=net, device="cpu"), atol=1e-5)


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((0, 16, 3)), "too small"),
        (np.zeros((16, 1, 3)), "too small"),
        (np.zeros((16,)), "at least"),
        (np.zeros((16, 16, 3), dtype=bool), "dtype"),
        (np.zeros((16, 16, 3), dtype=np.complex64), "dtype"),
        (np.full((16, 16, 3), np.nan), "NaN"),
    ],
)
def test_bad_input(net, image, match):
    with pytest.raises(DeblurInputError, match=match):
        deblur(image, model=net, device="cpu")


@pytest.mark.parametrize("c, dtype", [(2, np.uint16), (5, np.float32)])
def test_a_channel_axis_of_other_counts_is_deblurred_channel_by_channel(net, c, dtype):
    # a (Y, X, 2) two-channel microscopy image was taken for Y thin planes of X x 2 pixels
    scale = 4000 if dtype == np.uint16 else 1
    img = (np.random.default_rng(0).random((24, 40, c)) * scale).astype(dtype)
    out = deblur(img, model=net, device="cpu")
    assert out.shape == img.shape and out.dtype == img.dtype
    for k in range(c):  # each channel as a greyscale image, with its own intensity range
        np.testing.assert_array_equal(out[..., k], deblur(img[..., k], model=net, device="cpu"))
    np.testing.assert_array_equal(deblur(img, model=net, device="cpu", rgb=True), out)


def test_a_channel_axis_of_other_counts_lazy(net):
    import dask.array as da

    img = (np.random.default_rng(1).random((136, 144, 2)) * 4000).astype(np.uint16)
    lazy = deblur(da.from_array(img, chunks=(72, 144, 2)), model=net, device="cpu", normalize=(0, 4000))
    assert isinstance(lazy, da.Array) and lazy.shape == img.shape
    expected = deblur(img, model=net, device="cpu", normalize=(0, 4000))
    assert np.abs(lazy.compute().astype(int) - expected.astype(int)).max() <= 1


def test_image_path_is_read_and_non_images_are_refused(net, tmp_path):
    import imageio.v3 as iio

    img = (rgb(24, 32) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "photo.png", img)
    np.testing.assert_array_equal(deblur(str(tmp_path / "photo.png"), model=net, device="cpu"),
                                  deblur(img, model=net, device="cpu"))
    with pytest.raises(DeblurInputError, match="got None"):
        deblur(None, model=net)
    with pytest.raises(DeblurInputError, match="does not exist"):
        deblur(tmp_path / "nope.png", model=net)


def test_model_by_path_is_cached(tmp_path, net):
    p = save_model(net, tmp_path / "m.pt")
    deblur_mod.clear_model_cache()
    a = deblur(rgb(16, 16), model=str(p), device="cpu")
    m1 = deblur_mod.cached_model(p, device="cpu")
    m2 = deblur_mod.cached_model(str(p), device="cpu")
    assert m1 is m2
    np.testing.assert_allclose(a, deblur(rgb(16, 16), model=net, device="cpu"), atol=1e-6)
    deblur_mod.clear_model_cache()


def test_default_model_message(monkeypatch, tmp_path):
    from napari_lfdeblur.network import checkpoint

    monkeypatch.setattr(checkpoint, "default_model_path", lambda: tmp_path / "default.pt")
    monkeypatch.setattr(deblur_mod, "_model_cache", type(deblur_mod._model_cache)())
    with pytest.raises(ModelError, match="default model file is missing"):
        deblur(rgb(8, 8))


def test_import_does_not_import_torch():
    code = (
        "import sys, napari_lfdeblur, napari_lfdeblur.inference.deblur; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
