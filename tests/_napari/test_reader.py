"""The npe2 reader contribution: light fields open, anything else returns None."""

from __future__ import annotations

import numpy as np

from napari_lfdeblur._napari._reader import get_reader


def test_reader_opens_hci_folder_with_view_axes(hci_antinous):
    reader = get_reader(str(hci_antinous))
    assert callable(reader)
    layers = reader(str(hci_antinous))
    data, kwargs, kind = layers[0]
    assert kind == "image"
    assert tuple(data.shape) == (9, 9, 512, 512, 3)
    assert kwargs["rgb"] is True
    assert kwargs["axis_labels"] == ("v", "u", "y", "x")
    assert kwargs["contrast_limits"] == (0.0, 1.0)
    # the ground-truth disparity comes along as a second (hidden) layer
    disp, dkw, _ = layers[1]
    assert disp.shape == (512, 512)
    assert -3.5 < float(disp.min()) < float(disp.max()) < 3.0


def test_reader_returns_none_for_non_lightfields(tmp_path):
    import imageio.v3 as iio

    (tmp_path / "notes.txt").write_text("not a light field")
    assert get_reader(str(tmp_path)) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert get_reader(str(empty)) is None
    flat = tmp_path / "flat.tif"
    import tifffile

    tifffile.imwrite(flat, np.zeros((32, 32), np.uint8))
    assert get_reader(str(flat)) is None
    iio.imwrite(tmp_path / "photo_eslf.png", np.zeros((30, 31, 3), np.uint8))
    assert get_reader(str(tmp_path / "photo_eslf.png")) is None
    assert get_reader(str(tmp_path / "does-not-exist")) is None


def test_reader_opens_5d_npy(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, size=(3, 4, 20, 24, 3), dtype=np.uint8)
    np.save(tmp_path / "lf.npy", arr)
    reader = get_reader(str(tmp_path / "lf.npy"))
    data, kwargs, _ = reader(str(tmp_path / "lf.npy"))[0]
    np.testing.assert_allclose(np.asarray(data), arr / 255.0, atol=1e-6)
