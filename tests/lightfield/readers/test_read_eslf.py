"""Lenslet-sliced ESLF images: layout, round trips, default 14x14 views."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_lfdeblur import LightField, LightFieldError, read_lightfield, write_eslf


def _quantised_lf(shape, seed=0):
    rng = np.random.default_rng(seed)
    return LightField(data=rng.integers(0, 256, size=shape).astype(np.float32) / np.float32(255))


def test_macro_pixel_layout(tmp_path):
    """Pixel (y*V + v, x*U + u) of the image is sample (v, u) of lens (y, x)."""
    V, U, Y, X = 2, 3, 4, 5
    img = np.zeros((Y * V, X * U, 3), np.uint8)
    for v in range(V):
        for u in range(U):
            for y in range(Y):
                for x in range(X):
                    img[y * V + v, x * U + u] = (v, u, 10 * y + x)
    iio.imwrite(tmp_path / "grid.eslf.png", img)
    lf = read_lightfield(tmp_path / "grid.eslf.png", views=(V, U))
    assert lf.metadata["format"] == "eslf" and lf.grid == (V, U) and lf.view_shape == (Y, X)
    raw = np.rint(np.asarray(lf.data) * 255).astype(int)
    vv, uu, yy, xx = np.meshgrid(range(V), range(U), range(Y), range(X), indexing="ij")
    np.testing.assert_array_equal(raw[..., 0], vv)
    np.testing.assert_array_equal(raw[..., 1], uu)
    np.testing.assert_array_equal(raw[..., 2], 10 * yy + xx)


def test_round_trip_is_exact_for_8bit_data(tmp_path):
    lf = _quantised_lf((3, 4, 6, 5, 3))
    path = write_eslf(lf, tmp_path / "lf.png")
    assert iio.imread(path).shape == (6 * 3, 5 * 4, 3)
    back = read_lightfield(path, format="eslf", views=(3, 4))
    np.testing.assert_array_equal(back.data, lf.data)
    assert back.metadata["source_dtype"] == "uint8"


def test_round_trip_greyscale_and_16bit_tiff(tmp_path):
    lf = _quantised_lf((2, 2, 3, 4, 1), seed=3)
    back = read_lightfield(write_eslf(lf, tmp_path / "g.png"), format="eslf", views=2)
    assert back.channels == 1
    np.testing.assert_array_equal(back.data, lf.data)
    rng = np.random.default_rng(4)
    lf16 = LightField(data=rng.integers(0, 65536, size=(2, 3, 4, 4, 3)).astype(np.float32) / np.float32(65535))
    back16 = read_lightfield(write_eslf(lf16, tmp_path / "c.tif"), format="eslf", views=(2, 3))
    np.testing.assert_allclose(back16.data, lf16.data, atol=1e-7)


def test_default_14x14_views(tmp_path):
    lf = _quantised_lf((14, 14, 3, 2, 3), seed=2)
    write_eslf(lf, tmp_path / "illum_eslf.png")
    back = read_lightfield(tmp_path / "illum_eslf.png")  # detected by the name, 14x14 by default
    assert back.grid == (14, 14) and back.view_shape == (3, 2)
    np.testing.assert_array_equal(back.data, lf.data)


def test_lazy_input_and_missing_views(tmp_path):
    import dask.array as da

    lf = _quantised_lf((2, 2, 3, 3, 3))
    lazy = LightField(data=da.from_array(lf.data, chunks=(1, 1, 3, 3, 3)))
    np.testing.assert_array_equal(
        read_lightfield(write_eslf(lazy, tmp_path / "z.png"), format="eslf", views=2).data, lf.data
    )
    mask = np.ones((2, 2), bool)
    mask[0, 1] = False
    holey = LightField(data=lf.data.copy(), view_mask=mask)
    with pytest.raises(LightFieldError, match="missing"):
        write_eslf(holey, tmp_path / "h.png")


def test_size_not_divisible_asks_for_views(tmp_path):
    iio.imwrite(tmp_path / "x_eslf.png", np.zeros((30, 31, 3), np.uint8))
    with pytest.raises(LightFieldError, match="views="):
        read_lightfield(tmp_path / "x_eslf.png")
    with pytest.raises(LightFieldError, match="not divisible"):
        read_lightfield(tmp_path / "x_eslf.png", views=(4, 4))


def test_shipped_sample_matches_the_view_folder(lytro_plants):
    from napari_lfdeblur.sample_data import PLANTS_ESLF

    if not PLANTS_ESLF.exists():
        pytest.skip("sample ESLF not in this checkout")
    eslf = read_lightfield(PLANTS_ESLF, format="eslf", views=(10, 10))
    folder = read_lightfield(lytro_plants)
    np.testing.assert_array_equal(eslf.data, np.asarray(folder.data))


def test_views_from_a_tag_in_the_name(tmp_path):
    """scene_4x6.eslf.png opens without views=: the grid comes from the name (14x14 would not fit)."""
    lf = _quantised_lf((4, 6, 5, 3, 3), seed=5)
    path = write_eslf(lf, tmp_path / "scene_4x6.eslf.png")
    back = read_lightfield(path)
    assert back.grid == (4, 6) and back.view_shape == (5, 3)
    np.testing.assert_array_equal(back.data, lf.data)
    assert read_lightfield(path, views=(2, 3)).grid == (2, 3)  # an explicit views= wins


def test_shipped_sample_opens_by_path_without_options():
    from napari_lfdeblur.sample_data import PLANTS_ESLF

    lf = read_lightfield(PLANTS_ESLF)
    assert lf.grid == (10, 10) and lf.view_shape == (256, 256)
