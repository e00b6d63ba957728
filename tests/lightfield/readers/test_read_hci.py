"""HCI benchmark folders, parameters.cfg and PFM disparity maps."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_lfdeblur import LightFieldError, read_lightfield
from napari_lfdeblur.lightfield.readers.hci import read_parameters_cfg
from napari_lfdeblur.lightfield.readers.pfm import read_pfm, write_pfm

CFG = """\
[intrinsics]
focal_length_mm = 100
image_resolution_x_px = 10
image_resolution_y_px = 8
sensor_size_mm = 35
fstop = 100

[extrinsics]
num_cams_x = 3
num_cams_y = 3
baseline_mm = 90.0
focus_distance_m = 1.5

[meta]
disp_min = -1.25
disp_max = 2.5
scene = tiny
"""


def _write_hci(folder, V=3, U=3, shape=(8, 10), cfg=None, disparity=None):
    folder.mkdir(parents=True, exist_ok=True)
    views = {}
    for row in range(V):
        for col in range(U):
            # each view filled with a value that encodes its (row, col)
            img = np.full(shape + (3,), 10 * row + col, np.uint8)
            img[0, 0] = (row, col, 200)
            iio.imwrite(folder / f"input_Cam{U * row + col:03d}.png", img)
            views[row, col] = img
    if cfg is not None:
        (folder / "parameters.cfg").write_text(cfg)
    if disparity is not None:
        write_pfm(folder / "gt_disp_lowres.pfm", disparity)
    return views


# -- real data ---------------------------------------------------------------
def test_real_hci_shape_centre_view_and_disparity(hci_antinous):
    lf = read_lightfield(hci_antinous)
    assert lf.metadata["format"] == "hci"
    assert lf.is_lazy and lf.data.numblocks == (9, 9, 1, 1, 1)  # one chunk per view, nothing decoded
    assert tuple(lf.data.shape) == (9, 9, 512, 512, 3)
    assert lf.data.dtype == np.float32
    centre = iio.imread(hci_antinous / "input_Cam040.png")
    np.testing.assert_array_equal(lf.view(4, 4), centre.astype(np.float32) / 255)
    # row-major numbering: camera 9*row + col
    cam25 = iio.imread(hci_antinous / "input_Cam025.png")
    np.testing.assert_array_equal(lf.view(2, 7)[:4, :4], cam25[:4, :4] / np.float32(255))
    assert lf.disparity.shape == (512, 512)
    lo, hi = lf.metadata["disparity_range"]
    assert lo == pytest.approx(-3.13, abs=0.02) and hi == pytest.approx(2.69, abs=0.02)
    for key in ("source", "format", "angular_spacing", "disparity_range", "source_dtype"):
        assert key in lf.metadata
    assert lf.metadata["source_dtype"] == "uint8"


def test_real_hci_documented_disparity_convention(hci_antinous):
    """centre(y, x) ~ view(row, col)(y - d*(row-4), x - d*(col-4)): warping by d beats no warp."""
    from scipy.ndimage import map_coordinates

    lf = read_lightfield(hci_antinous)
    d = lf.disparity
    centre = lf.view(4, 4).mean(-1)
    yy, xx = np.mgrid[:512, :512].astype(np.float32)
    inner = (slice(20, -20), slice(20, -20))
    for v, u in [(4, 8), (0, 4)]:
        view = lf.view(v, u).mean(-1)
        warped = map_coordinates(view, [yy - d * (v - 4), xx - d * (u - 4)], order=1, mode="nearest")
        err_warp = np.abs(warped - centre)[inner].mean()
        err_none = np.abs(view - centre)[inner].mean()
        assert err_warp < 0.5 * err_none, (v, u, err_warp, err_none)
        # and the opposite sign is clearly worse: the convention is not just "some shift"
        wrong = map_coordinates(view, [yy + d * (v - 4), xx + d * (u - 4)], order=1, mode="nearest")
        assert err_warp < 0.5 * np.abs(wrong - centre)[inner].mean()


# -- small synthetic folders -----------------------------------------------------
def test_cfg_pfm_and_row_major_mapping(tmp_path):
    disp = np.linspace(-1, 2, 80, dtype=np.float32).reshape(8, 10)
    views = _write_hci(tmp_path / "scene", cfg=CFG, disparity=disp)
    lf = read_lightfield(tmp_path / "scene")
    assert lf.metadata["format"] == "hci"
    assert lf.grid == (3, 3) and lf.view_shape == (8, 10)
    for (row, col), img in views.items():
        np.testing.assert_array_equal(lf.view(row, col), img / np.float32(255))
    np.testing.assert_array_equal(lf.disparity, disp)
    md = lf.metadata
    assert md["disparity_range"] == (-1.25, 2.5)
    assert md["angular_spacing"] == 90.0 and md["angular_spacing_unit"] == "mm"
    assert md["focus_distance_m"] == 1.5 and md["focal_length_mm"] == 100
    assert md["parameters"]["meta"]["scene"] == "tiny"


def test_cfg_camera_counts_allow_non_square_grid(tmp_path):
    cfg = CFG.replace("num_cams_x = 3", "num_cams_x = 4").replace("num_cams_y = 3", "num_cams_y = 2")
    views = _write_hci(tmp_path / "s", V=2, U=4, cfg=cfg)
    lf = read_lightfield(tmp_path / "s", lazy=False)
    assert not lf.is_lazy and lf.grid == (2, 4)
    np.testing.assert_array_equal(lf.data[1, 2], views[1, 2] / np.float32(255))


def test_non_square_count_without_cfg_is_an_error(tmp_path):
    _write_hci(tmp_path / "s", V=2, U=4)
    with pytest.raises(LightFieldError, match="not a square"):
        read_lightfield(tmp_path / "s")


def test_parameters_cfg_parsing(tmp_path):
    p = tmp_path / "parameters.cfg"
    p.write_text("top = 1\n" + CFG + "comment = hello  # trailing\n")
    params = read_parameters_cfg(p)
    assert params[""]["top"] == 1
    assert params["extrinsics"]["baseline_mm"] == 90.0
    assert params["meta"]["comment"] == "hello"


@pytest.mark.parametrize("little", [True, False])
@pytest.mark.parametrize("colour", [False, True])
def test_pfm_round_trip_and_orientation(tmp_path, little, colour):
    rng = np.random.default_rng(1)
    img = rng.normal(size=(5, 7, 3) if colour else (5, 7)).astype(np.float32)
    write_pfm(tmp_path / "a.pfm", img, little_endian=little)
    raw = (tmp_path / "a.pfm").read_bytes()
    assert raw.startswith(b"PF\n" if colour else b"Pf\n")
    assert (b"\n-1\n" in raw) == little
    np.testing.assert_array_equal(read_pfm(tmp_path / "a.pfm"), img)


def test_pfm_rows_are_stored_bottom_up(tmp_path):
    # hand-made file: first stored row is the bottom row of the image
    body = np.array([[1, 2], [3, 4]], "<f4")  # stored order
    (tmp_path / "b.pfm").write_bytes(b"Pf\n2 2\n-1.0\n" + body.tobytes())
    np.testing.assert_array_equal(read_pfm(tmp_path / "b.pfm"), [[3, 4], [1, 2]])


def test_bad_pfm_raises(tmp_path):
    (tmp_path / "c.pfm").write_bytes(b"P6\n2 2\n255\n" + bytes(12))
    with pytest.raises(LightFieldError, match="not a PFM"):
        read_pfm(tmp_path / "c.pfm")
    (tmp_path / "d.pfm").write_bytes(b"Pf\n4 4\n-1\n" + bytes(8))
    with pytest.raises(LightFieldError, match="truncated"):
        read_pfm(tmp_path / "d.pfm")
