"""Light fields held in one array: numpy/dask, .npy/.npz, TIFF, Zarr, HDF5."""

from __future__ import annotations

import numpy as np
import pytest

from napari_lfdeblur import LightFieldError, read_lightfield

RNG = np.random.default_rng(0)
LF_U8 = RNG.integers(0, 256, size=(3, 4, 5, 6, 3), dtype=np.uint8)  # (V, U, Y, X, C)
EXPECTED = LF_U8.astype(np.float32) / np.float32(255)


def test_numpy_array_5d_and_metadata():
    lf = read_lightfield(LF_U8)
    assert lf.metadata["format"] == "array" and not lf.is_lazy
    np.testing.assert_array_equal(lf.data, EXPECTED)
    md = lf.metadata
    assert md["source_dtype"] == "uint8" and md["axes"] == "VUYXC" and md["source"] == "<numpy array>"
    for key in ("source", "format", "angular_spacing", "disparity_range", "source_dtype"):
        assert key in md


def test_npy_is_memory_mapped_and_lazy(tmp_path):
    np.save(tmp_path / "lf.npy", LF_U8)
    lf = read_lightfield(tmp_path / "lf.npy")
    assert lf.is_lazy and lf.data.numblocks[:2] == (3, 4)  # one chunk per view
    np.testing.assert_array_equal(lf.data.compute(), EXPECTED)
    eager = read_lightfield(tmp_path / "lf.npy", lazy=False)
    assert not eager.is_lazy
    np.testing.assert_array_equal(eager.data, EXPECTED)


def test_greyscale_uint16_keeps_a_channel_axis(tmp_path):
    grey = RNG.integers(0, 65536, size=(2, 3, 4, 5), dtype=np.uint16)
    np.save(tmp_path / "g.npy", grey)
    lf = read_lightfield(tmp_path / "g.npy")
    assert lf.data.shape == (2, 3, 4, 5, 1) and lf.channels == 1
    np.testing.assert_array_equal(lf.data.compute()[..., 0], grey.astype(np.float32) / np.float32(65535))
    assert lf.metadata["source_dtype"] == "uint16"


@pytest.mark.parametrize("axes", ["UVYXC", "YXVUC", "VUCYX", "CXYUV"])
def test_axes_reorder(axes):
    stored = np.transpose(LF_U8, ["VUYXC".index(a) for a in axes])
    lf = read_lightfield(stored, axes=axes.lower() if axes == "YXVUC" else axes)
    np.testing.assert_array_equal(lf.data, EXPECTED)


def test_axes_greyscale_4d():
    grey = LF_U8[..., 0]
    lf = read_lightfield(np.transpose(grey, (1, 0, 2, 3)), axes="UVYX")
    np.testing.assert_array_equal(lf.data[..., 0], EXPECTED[..., 0])


def test_scaling_rules():
    f = EXPECTED.astype(np.float64)
    np.testing.assert_array_equal(read_lightfield(f).data, EXPECTED)  # float in [0, 1] kept
    b = LF_U8 > 127
    np.testing.assert_array_equal(read_lightfield(b).data, b.astype(np.float32))
    with pytest.raises(LightFieldError, match="scale="):
        read_lightfield(f * 255)
    np.testing.assert_allclose(read_lightfield(f * 255, scale=255).data, EXPECTED, atol=1e-6)
    np.testing.assert_allclose(read_lightfield(f * 10 - 5, scale=(-5, 5)).data, EXPECTED, atol=1e-6)
    mm = read_lightfield(f * 3 + 7, scale="minmax").data
    assert mm.min() == 0.0 and mm.max() == pytest.approx(1.0)
    with pytest.raises(LightFieldError, match="scale="):
        read_lightfield(LF_U8.astype(np.int16))
    twelve_bit = LF_U8.astype(np.int32) * 16  # up to 4080
    np.testing.assert_allclose(read_lightfield(twelve_bit, scale=4095).data, twelve_bit / 4095, atol=1e-6)


def test_nan_views_are_missing():
    f = EXPECTED.copy()
    f[0, 2] = np.nan
    lf = read_lightfield(f)
    assert not lf.view_mask[0, 2] and lf.view_mask.sum() == 11


def test_nan_views_of_a_lazy_file_are_missing_and_all_nan_is_refused(tmp_path):
    f = EXPECTED.copy()
    f[1, 3] = np.nan
    np.save(tmp_path / "part.npy", f)
    lf = read_lightfield(tmp_path / "part.npy")  # memory-mapped, lazy
    assert lf.is_lazy and not lf.view_mask[1, 3] and lf.n_views == 11
    np.save(tmp_path / "nan.npy", np.full((5, 5, 4, 4, 3), np.nan, np.float32))
    with pytest.raises(LightFieldError, match="Every view of the array is NaN"):
        read_lightfield(tmp_path / "nan.npy")


@pytest.mark.parametrize("lazy", [True, False])
def test_infinite_values_are_refused(tmp_path, lazy):
    f = EXPECTED.copy()
    f[2, 1, 0, 0, 0] = np.inf
    np.save(tmp_path / "inf.npy", f)
    with pytest.raises(LightFieldError, match="infinite values"):
        read_lightfield(tmp_path / "inf.npy", lazy=lazy)
    with pytest.raises(LightFieldError, match="infinite values"):
        read_lightfield(f, scale=(0, 2))


def test_one_image_with_light_field_axes_says_it_is_not_a_light_field():
    # the Light field widget's "Use layer as light field" on an RGB photo passes axes="VUYXC"
    with pytest.raises(LightFieldError, match=r"\(32, 40, 3\) is not a light field.*4D \(V, U, Y, X\)"):
        read_lightfield(np.zeros((32, 40, 3), np.uint8), format="array", axes="VUYXC")


def test_dask_array_stays_lazy_and_floats_checked_per_chunk():
    import dask.array as da

    d = da.from_array(LF_U8, chunks=(1, 2, 5, 6, 3))
    lf = read_lightfield(d)
    assert lf.is_lazy and lf.data.numblocks[:2] == (3, 4)
    np.testing.assert_array_equal(lf.data.compute(), EXPECTED)
    bad = EXPECTED.copy()
    bad[0, 0, 0, 0, 0] = 3.0  # a corner view out of range: found when that chunk is computed
    lf_bad = read_lightfield(da.from_array(bad, chunks=(1, 1, 5, 6, 3)))
    with pytest.raises(LightFieldError, match="outside"):
        lf_bad.data[0, 0].compute()


def test_tiff_and_npz(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "lf.tif", LF_U8)
    np.testing.assert_array_equal(read_lightfield(tmp_path / "lf.tif").data, EXPECTED)
    np.savez(tmp_path / "lf.npz", a=LF_U8, b=LF_U8[..., 0])
    with pytest.raises(LightFieldError, match="key="):
        read_lightfield(tmp_path / "lf.npz")
    np.testing.assert_array_equal(read_lightfield(tmp_path / "lf.npz", key="a").data, EXPECTED)


def test_zarr_array_and_group(tmp_path):
    import zarr

    z = zarr.open_array(tmp_path / "a.zarr", mode="w", shape=LF_U8.shape, dtype="u1", chunks=(1, 1, 5, 6, 3))
    z[:] = LF_U8
    lf = read_lightfield(tmp_path / "a.zarr")
    assert lf.is_lazy and lf.metadata["format"] == "array"
    np.testing.assert_array_equal(lf.data.compute(), EXPECTED)

    g = zarr.open_group(tmp_path / "g.zarr", mode="w")
    g.create_array("lf/views", shape=LF_U8.shape, dtype="u1")[:] = LF_U8
    g.create_array("other", shape=(2, 2), dtype="f4")
    with pytest.raises(LightFieldError, match="key="):
        read_lightfield(tmp_path / "g.zarr")
    lf2 = read_lightfield(tmp_path / "g.zarr", key="lf/views")
    assert lf2.metadata["key"] == "lf/views"
    np.testing.assert_array_equal(lf2.data.compute(), EXPECTED)


def test_hdf5_single_dataset_and_key(tmp_path):
    import h5py

    with h5py.File(tmp_path / "one.h5", "w") as f:
        f.create_dataset("group/lf", data=np.transpose(LF_U8, (2, 3, 0, 1, 4)))
    lf = read_lightfield(tmp_path / "one.h5", axes="YXVUC")
    assert lf.is_lazy and lf.metadata["key"] == "group/lf"
    np.testing.assert_array_equal(lf.data.compute(), EXPECTED)
    with h5py.File(tmp_path / "two.h5", "w") as f:
        f["a"] = LF_U8
        f["b"] = LF_U8[..., 0]
    with pytest.raises(LightFieldError, match="several"):
        read_lightfield(tmp_path / "two.h5")
    lf_b = read_lightfield(tmp_path / "two.h5", key="b")
    np.testing.assert_array_equal(lf_b.data.compute()[..., 0], EXPECTED[..., 0])
    with pytest.raises(LightFieldError, match="No HDF5 dataset named"):
        read_lightfield(tmp_path / "two.h5", key="c")
