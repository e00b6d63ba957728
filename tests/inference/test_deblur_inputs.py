"""Inputs that used to come back wrong without a word: narrow images, tiny lazy arrays, unknown
shapes, options that are not numbers, damaged tiles read late.

The network runs the shipped default model (the user's door: ``lfd.deblur(image)``), on images of a
few hundred pixels at most.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import napari_lfdeblur as lfd
from napari_lfdeblur.errors import DeblurInputError, ImageFileError
from napari_lfdeblur.inference.deblur import MIN_SIDE

iio = pytest.importorskip("imageio.v3")


def _photo(h, w, c=3, seed=0):
    """Smooth structure plus a little noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 0.5 + 0.4 * np.sin(xx / 5.0 + yy / 7.0)
    img = np.clip(base[..., None] + 0.05 * rng.standard_normal((h, w, c)), 0, 1)
    return img.astype(np.float32)


@pytest.mark.parametrize(
    "shape, rgb",
    [((64, 3), None), ((64, 8), None), ((5, 64), None), ((300, 6, 3), None), ((64, 64, 3), False)],
    ids=["64x3", "64x8", "5x64", "300x6 rgb", "64x64x3 rgb=False"],
)
def test_narrow_images_reach_the_network_mirrored_out_and_come_back_finite(network_calls, shape, rgb):
    # at 8 px or less the network's 1/8-scale bottleneck is one pixel, where bfloat16 CPU kernels gave NaN
    image = _photo(*shape[:2], c=shape[2] if len(shape) == 3 else 1)
    image = image if len(shape) == 3 else image[..., 0]
    out = lfd.deblur(image, rgb=rgb)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert np.isfinite(out).all()
    assert np.abs(out - image).mean() < 0.05  # a deblurred copy, not garbage
    assert network_calls and all(min(hw) >= MIN_SIDE for hw in network_calls), network_calls


def test_a_lazy_image_smaller_than_the_halo_is_deblurred_like_the_numpy_one():
    da = pytest.importorskip("dask.array")
    image = _photo(40, 30)
    lazy = lfd.deblur(da.from_array(image))
    np.testing.assert_allclose(lazy.compute(), lfd.deblur(image), atol=1e-6)


def test_a_dask_array_of_unknown_shape_is_refused_with_what_to_do():
    da = pytest.importorskip("dask.array")
    image = da.from_array(_photo(100, 100, c=1)[..., 0], chunks=50)
    filtered = image[image[:, 0] > 0.5]
    with pytest.raises(DeblurInputError, match="compute_chunk_sizes"):
        lfd.deblur(filtered)


@pytest.mark.parametrize(
    "option, value",
    [("tile", "abc"), ("tile", 100.5), ("tile", 8), ("overlap", -1), ("overlap", "x"), ("batch", 0),
     ("batch", True), ("chunk", "big"), ("chunk", 4)],
)
def test_options_that_are_not_sensible_numbers_are_refused_by_name(option, value):
    with pytest.raises(DeblurInputError, match=option):
        lfd.deblur(_photo(64, 64), **{option: value})


def test_a_damaged_tile_read_lazily_names_the_file(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    path = tmp_path / "big.tif"
    tifffile.imwrite(path, (_photo(600, 600) * 255).astype(np.uint8), tile=(256, 256))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a copy cut short: the later tiles are missing
    lazy = lfd.deblur(lfd.io.open_image(path, lazy=True))
    with pytest.raises(ImageFileError, match="big.tif"):
        lazy.compute()


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "napari_lfdeblur.cli", *args], capture_output=True, text=True,
                          timeout=300)


def test_cli_deblurs_a_six_pixel_wide_png_and_a_tiny_zarr(tmp_path):
    zarr = pytest.importorskip("zarr")
    narrow = (_photo(300, 6) * 255).round().astype(np.uint8)
    iio.imwrite(tmp_path / "narrow.png", narrow)
    small = zarr.open(str(tmp_path / "small.zarr"), mode="w", shape=(40, 48, 3), chunks=(40, 48, 3), dtype="u1")
    small[:] = (_photo(40, 48) * 255).round().astype(np.uint8)
    for name, source in (("narrow.png", narrow), ("small.zarr", small[:])):
        out = tmp_path / f"out_{name.split('.')[0]}.png"
        r = _run_cli("deblur", str(tmp_path / name), "-o", str(out))
        assert r.returncode == 0, r.stderr
        result = iio.imread(out)
        assert result.shape == source.shape
        reference = lfd.deblur(source, dtype="float32")  # float32 was always right
        assert np.abs(result.astype(float) - reference).mean() < 2  # bfloat16's level or two, not garbage


@pytest.mark.parametrize(
    "options, match",
    [({"normalize": (0, 1, 2)}, "two numbers"), ({"normalize": (0, float("nan"))}, "finite"),
     ({"progress": "x"}, r"deblur: progress must be None or a function called as progress\(done, total\), got str")],
)
def test_options_of_the_wrong_kind_are_refused_by_name(options, match):
    with pytest.raises(DeblurInputError, match=match):
        lfd.deblur(_photo(64, 64), **options)


def test_normalize_none_refuses_an_image_that_is_not_in_0_1():
    # taken as it is, a 0-255 float image was clipped to [0, 1]: the result differed by half the range
    with pytest.raises(DeblurInputError, match="normalize='none' takes images already in"):
        lfd.deblur(_photo(64, 64) * 255, normalize="none")
    image = _photo(64, 64)
    np.testing.assert_allclose(lfd.deblur(image, normalize="none"), lfd.deblur(image), atol=1e-6)


def test_a_module_that_is_not_an_image_network_is_a_model_error():
    torch = pytest.importorskip("torch")
    from napari_lfdeblur.errors import ModelError

    with pytest.raises(ModelError, match="could not run on an image"):
        lfd.deblur(_photo(64, 64), model=torch.nn.Linear(3, 3), device="cpu")
    with pytest.raises(ModelError, match="returned"):
        lfd.deblur(_photo(64, 64), model=torch.nn.Conv2d(3, 3, 3), device="cpu")  # no padding: 62x62 back
