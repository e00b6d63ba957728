"""Malformed input to the light-field API: a LightFieldError that says what is wrong, never a raw Python error
or a silently wrong result (NaN, inf or 0..255 values in refocused images and pairs)."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

import napari_lfdeblur as lfd
from napari_lfdeblur import LightFieldError


def _data(value=0.5, shape=(3, 3, 16, 16, 3), dtype=np.float32):
    return np.full(shape, value, dtype)


# -- LightField(...) built by hand ------------------------------------------------
@pytest.mark.parametrize("data", [None, [[0.5]], "lf.png"])
def test_lightfield_refuses_what_is_not_an_array(data):
    with pytest.raises(LightFieldError, match="numpy or dask array.*read_lightfield"):
        lfd.LightField(data)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_lightfield_refuses_infinite_pixels(bad):
    x = _data()
    x[0, 0, 4, 4, 1] = bad
    with pytest.raises(LightFieldError, match=r"infinite values in view \(0, 0\)"):
        lfd.refocus(lfd.LightField(x), 0.5, device="cpu")


def test_lightfield_refuses_nan_inside_a_present_view():
    """One NaN pixel used to come out as 12 NaN pixels of the refocused image."""
    x = _data()
    x[0, 0, 4, 4] = np.nan
    with pytest.raises(LightFieldError, match=r"view \(0, 0\) holds 3 NaN values.*missing view"):
        lfd.LightField(x)
    mask = np.ones((3, 3), bool)
    with pytest.raises(LightFieldError, match="NaN"):
        lfd.LightField(x, view_mask=mask)


def test_nan_still_marks_missing_views():
    x = _data()
    x[0, 2] = np.nan
    lf = lfd.LightField(x)  # an all-NaN view is a missing view, as read_lightfield takes it
    assert not lf.view_mask[0, 2] and lf.n_views == 8
    out = lfd.refocus(lf, 0.5, device="cpu")
    assert np.isfinite(out).all()
    mask = np.ones((3, 3), bool)
    mask[0, 2] = False
    assert lfd.LightField(x, view_mask=mask).n_views == 8
    x[2, 2, 0, 0, 0] = 7.0  # a missing view's values are not used, so not checked either
    mask[2, 2] = False
    assert lfd.LightField(x, view_mask=mask).n_views == 7
    with pytest.raises(LightFieldError, match=r"view \(0, 2\) is entirely NaN.*view_mask"):
        lfd.LightField(x, view_mask=np.ones((3, 3), bool))
    with pytest.raises(LightFieldError, match="Every view .* is NaN"):
        lfd.LightField(np.full((2, 2, 4, 4, 1), np.nan, np.float32))


@pytest.mark.parametrize(
    "data, match",
    [
        (_data(200, (3, 3, 8, 8, 3), np.int64), "dtype int64.*scale="),  # A109
        (_data(200.0, (3, 3, 8, 8, 3)), r"values in \[200, 200\], outside \[0, 1\]"),  # A481
        (_data(-0.5, (3, 3, 8, 8, 3), np.float64), r"outside \[0, 1\]"),
    ],
)
def test_lightfield_refuses_values_outside_0_1(data, match):
    with pytest.raises(LightFieldError, match=match):
        lfd.refocus(lfd.LightField(data), 0.5, device="cpu")


def test_make_pairs_from_0_255_integers_is_refused():
    """A482: pairs with pixels up to 254 were written without a word."""
    data = np.random.default_rng(0).integers(0, 255, (3, 3, 32, 32, 3))
    with pytest.raises(LightFieldError, match="scale="):
        lfd.make_pairs(lfd.LightField(data), (1.0,), 2, crop=0, device="cpu")


def test_8_and_16_bit_views_are_scaled_as_the_readers_do():
    u8 = np.random.default_rng(1).integers(0, 256, (3, 3, 8, 8, 3)).astype(np.uint8)
    lf = lfd.LightField(u8)
    assert lf.data.dtype == np.float32
    np.testing.assert_array_equal(lf.data, lfd.read_lightfield(u8).data)
    assert lf.data.max() <= 1.0
    np.testing.assert_array_equal(lfd.LightField(u8.astype(np.uint16) * 257).data, lf.data)
    out = lfd.refocus(lf, 0.3, device="cpu")
    assert 0.0 <= out.min() and out.max() <= 1.0 + 1e-6
    # float rounding just above 1 (an average of ones) is not a wrong scale
    assert lfd.LightField(_data(1.0 + 1e-7, (2, 2, 4, 4, 1))).n_views == 4


def test_lazy_lightfield_is_checked_chunk_by_chunk():
    import dask.array as da

    x = _data(shape=(3, 3, 8, 8, 1))
    x[1, 2, 0, 0, 0] = 5.0
    lf = lfd.LightField(da.from_array(x, chunks=(1, 1, 8, 8, 1)))  # nothing read yet
    assert lf.is_lazy
    with pytest.raises(LightFieldError, match="outside"):
        lfd.refocus(lf, 0.2, device="cpu")
    y = _data(shape=(3, 3, 8, 8, 1))
    y[0, 1, 3, 3] = np.nan
    with pytest.raises(LightFieldError, match=r"view \(0, 1\) holds 1 NaN"):
        lfd.LightField(da.from_array(y, chunks=(1, 1, 8, 8, 1))).compute()
    u8 = da.from_array(np.full((2, 2, 4, 4, 3), 255, np.uint8), chunks=(1, 1, 4, 4, 3))
    np.testing.assert_array_equal(lfd.LightField(u8).compute().data, 1.0)


def test_read_lightfield_applies_the_same_rule():
    """A NaN inside a present view passed read_lightfield too (only whole NaN views are missing views)."""
    x = _data(0.25, (3, 3, 8, 8, 3))
    x[1, 1, 2, 2, 0] = np.nan
    with pytest.raises(LightFieldError, match=r"view \(1, 1\) holds 1 NaN"):
        lfd.read_lightfield(x)


def test_read_lightfield_lazy_file_applies_the_same_rule(tmp_path):
    x = _data(0.25, (3, 3, 8, 8, 3))
    x[2, 0, 2, 2, 0] = np.nan
    np.save(tmp_path / "lf.npy", x)
    with pytest.raises(LightFieldError, match=r"view \(2, 0\) holds 1 NaN"):
        lfd.read_lightfield(tmp_path / "lf.npy")


# -- functions taking a progress callback -------------------------------------------
def _lf():
    return lfd.LightField(np.random.default_rng(0).random((3, 3, 24, 24, 3), dtype=np.float32))


def test_focal_stack_refuses_a_progress_that_is_not_a_function():
    with pytest.raises(LightFieldError, match=r"progress must be None or a function called as progress\(done, total\)"):
        lfd.focal_stack(_lf(), [0, 1], device="cpu", progress="x")


def test_make_pairs_refuses_a_progress_that_is_not_a_function():
    with pytest.raises(LightFieldError, match=r"progress must be None or a function called as progress\(done, total\)"):
        lfd.make_pairs(_lf(), (1.0,), [0.5], crop=0, progress=3)


# -- write_pairs -------------------------------------------------------------------
@pytest.mark.parametrize("pairs", [None, 3, "pairs"])
def test_write_pairs_refuses_what_is_not_pairs(tmp_path, pairs):
    with pytest.raises(LightFieldError, match="write_pairs takes a list .*of Pair objects"):
        lfd.write_pairs(pairs, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_write_pairs_one_pair_or_a_bad_progress(tmp_path):
    pair = lfd.make_pairs(_lf(), (1.0,), [0.5], crop=0)[0]
    with pytest.raises(LightFieldError, match=r"one Pair; pass \[pair\]"):
        lfd.write_pairs(pair, tmp_path / "out")
    with pytest.raises(LightFieldError, match=r"progress must be None or a function called as progress\(done, total\)"):
        lfd.write_pairs([pair], tmp_path / "out", progress="x")


# -- views= of the ESLF reader ----------------------------------------------------------
@pytest.fixture
def eslf_3x3(tmp_path):
    img = (np.random.default_rng(2).random((48, 48, 3)) * 255).astype(np.uint8)
    iio.imwrite(tmp_path / "lf.eslf.png", img)
    return tmp_path / "lf.eslf.png"


@pytest.mark.parametrize("views", [(2.5, 2.5), (3.9, 3.9), 2.5, "3", "33", (True, True), (0, 3), (3, 3, 3)])
def test_eslf_views_must_be_positive_whole_numbers(eslf_3x3, views):
    """views=(2.5, 2.5) was truncated to 2: a 3x3 ESLF read as 2x2 views of garbage."""
    with pytest.raises(LightFieldError, match="views="):
        lfd.read_lightfield(eslf_3x3, views=views)


def test_eslf_views_given_as_whole_floats_are_fine(eslf_3x3):
    assert lfd.read_lightfield(eslf_3x3, views=(3.0, 3.0)).grid == (3, 3)
    assert lfd.read_lightfield(eslf_3x3, views=np.int64(3)).grid == (3, 3)
