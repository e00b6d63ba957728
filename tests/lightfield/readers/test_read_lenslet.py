"""Raw lenslet images + microlens-centre tables -> sub-aperture views."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_lfdeblur import LightFieldError, read_lightfield
from napari_lfdeblur.lightfield.readers.lenslet import demosaic_bilinear, fit_hex_grid, load_centers

_DECODED = {}  # the real decode takes ~2 s: do it once per session


@pytest.fixture
def raw_lf(lytro_raw_lenslet):
    if "lf" not in _DECODED:
        _DECODED["lf"] = read_lightfield(
            lytro_raw_lenslet / "IMG_1.jpg",
            format="lenslet",
            centers=lytro_raw_lenslet / "image_cords.mat",
            bayer="bggr",
            views=7,
        )
    return _DECODED["lf"]


def _shift(ref, moving):
    from skimage.registration import phase_cross_correlation

    return -phase_cross_correlation(ref.mean(-1), moving.mean(-1), upsample_factor=20)[0]


# -- real data ------------------------------------------------------------------
def test_real_lenslet_decodes_7x7_views(raw_lf):
    assert raw_lf.metadata["format"] == "lenslet"
    assert tuple(raw_lf.data.shape) == (7, 7, 362, 311, 3)
    assert np.isfinite(raw_lf.data).all()
    assert 0.0 <= raw_lf.data.min() and raw_lf.data.max() <= 1.0
    for v, u in [(3, 3), (0, 0), (6, 2)]:
        assert raw_lf.data[v, u].std() > 0.05  # real image content, not constant
    grid = raw_lf.metadata["lens_grid"]
    assert grid["pitch_x_px"] == pytest.approx(9.93, abs=0.05)
    assert grid["pitch_y_px"] == pytest.approx(9.93 * np.sqrt(3) / 2, abs=0.1)  # hexagonal packing
    assert raw_lf.metadata["centers_refined"]
    # vignetting: the outer views are darker than the centre one
    means = raw_lf.data.mean(axis=(2, 3, 4))
    assert means[0, 0] < means[3, 3] and means[6, 6] < means[3, 3]


def test_real_lenslet_parallax(raw_lf):
    """Opposite views show parallax along their own axis.

    The main lens was focused on the flowers: over the whole frame the
    dominant (in-focus) content has ~0 disparity, so the shifts are measured on
    patches off the focal plane: the far trees (top right) and a near flower
    (bottom left).  Physically, one patch has one depth, so its horizontal and
    vertical shifts share a sign, and near and far patches have opposite signs.
    """
    d = raw_lf.data
    far = (slice(0, 80), slice(180, 280))
    near = (slice(250, 330), slice(50, 150))
    signs = []
    for patch in (far, near):
        hy, hx = _shift(d[3, 0][patch], d[3, 6][patch])
        vy, vx = _shift(d[0, 3][patch], d[6, 3][patch])
        assert abs(hx) > 1.0 and abs(hy) < 0.5, (hy, hx)  # horizontal views: x shift only
        assert abs(vy) > 1.0 and abs(vx) < 0.5, (vy, vx)  # vertical views: y shift only
        assert np.sign(hx) == np.sign(vy)
        signs.append(np.sign(hx))
    assert signs[0] == -signs[1]
    # far content moves right as the viewpoint moves right: negative disparity
    # in the HCI sign convention (positive = nearer than the focal plane)
    assert signs[0] > 0


# -- geometry on synthetic images -------------------------------------------------
def _synthetic_square_lenslet(R=5, C=6, pitch=7, V=3, U=3):
    """Raw 16-bit image whose pixel under lens (r, c) at offset (dv, du) encodes all four."""
    H, W = 10 + pitch * R, 12 + pitch * C
    raw = np.zeros((H, W), np.uint16)
    table = np.zeros((R, C, 2))
    expected = np.zeros((V, U, R, C), np.int64)
    for r in range(R):
        for c in range(C):
            cy, cx = 5 + pitch * r, 6 + pitch * c
            table[r, c] = cy, cx
            for v in range(V):
                for u in range(U):
                    code = 1 + v * U + u + V * U * (r * C + c)
                    raw[cy + v - (V - 1) // 2, cx + u - (U - 1) // 2] = code
                    expected[v, u, r, c] = code
    return raw, table, expected


def test_views_sample_centre_plus_offset(tmp_path):
    raw, table, expected = _synthetic_square_lenslet()
    iio.imwrite(tmp_path / "raw.png", raw)
    lf = read_lightfield(tmp_path / "raw.png", centers=table, bayer=None, views=(3, 3))
    assert lf.grid == (3, 3) and lf.view_shape == (5, 6) and lf.channels == 1
    got = np.rint(np.asarray(lf.data[..., 0], np.float64) * 65535).astype(np.int64)
    np.testing.assert_array_equal(got, expected)


def test_centre_tables_from_files(tmp_path):
    import scipy.io

    raw, table, expected = _synthetic_square_lenslet(R=3, C=4)
    iio.imwrite(tmp_path / "raw.png", raw)
    np.save(tmp_path / "c.npy", table)
    scipy.io.savemat(tmp_path / "c.mat", {"image_cords": (table + 1).astype(np.uint16)})  # MATLAB 1-based
    rr, cc = np.mgrid[:3, :4]
    lines = np.column_stack([rr.ravel(), cc.ravel(), table[..., 0].ravel(), table[..., 1].ravel()])
    np.savetxt(tmp_path / "c.csv", lines, delimiter=",", header="row,col,y,x", comments="")
    for src in ("c.npy", "c.mat", "c.csv"):
        t, _ = load_centers(tmp_path / src)
        np.testing.assert_array_equal(t, table, err_msg=src)
        lf = read_lightfield(tmp_path / "raw.png", centers=str(tmp_path / src), bayer=None, views=3)
        got = np.rint(np.asarray(lf.data[..., 0], np.float64) * 65535).astype(np.int64)
        np.testing.assert_array_equal(got, expected, err_msg=src)
    t1, _ = load_centers(table + 1, one_based=True)
    np.testing.assert_array_equal(t1, table)


def test_hex_rows_are_aligned(tmp_path):
    """A horizontal ramp sampled on a hexagonal lens grid gives equal columns after alignment."""
    R, C = 6, 8
    H, W = 6 * R + 10, 8 * C + 14
    ramp = np.tile(np.arange(W, dtype=np.float64) / (W - 1), (H, 1))
    iio.imwrite(tmp_path / "ramp.tif", ramp.astype(np.float32))
    r, c = np.mgrid[:R, :C]
    table = np.stack([5.0 + 6 * r, 5.0 + 8 * c + 4 * (r % 2)], -1)
    aligned = read_lightfield(tmp_path / "ramp.tif", format="lenslet", centers=table, bayer=None, views=1)
    raw = read_lightfield(tmp_path / "ramp.tif", format="lenslet", centers=table, bayer=None, views=1, hex_align=False)
    a, b = aligned.data[0, 0, :, :, 0], raw.data[0, 0, :, :, 0]
    assert aligned.metadata["lens_grid"]["hex_offset_px"] == pytest.approx(4.0)
    np.testing.assert_allclose(b[1] - b[0], 4 / (W - 1), atol=1e-6)  # odd rows sit half a lens right
    np.testing.assert_allclose(a[1, 1:], a[0, 1:], atol=1e-6)  # aligned (first column: clamped)


def test_fit_hex_grid_removes_rounding():
    r, c = np.mgrid[:40, :30]
    true = np.stack([3.3 + 8.6 * r + 0.05 * c, 4.1 + 9.9 * c - 0.04 * r + 4.95 * (r % 2)], -1)
    fitted, info = fit_hex_grid(np.rint(true))
    assert np.abs(fitted - true).max() < 0.1
    assert info["hex_offset_px"] == pytest.approx(4.95, abs=0.05)


def test_demosaic_bilinear():
    rgb = np.array([0.2, 0.5, 0.8], np.float32)
    H, W = 8, 10
    mosaic = np.empty((H, W), np.float32)
    # bggr: B G / G R
    mosaic[0::2, 0::2], mosaic[0::2, 1::2], mosaic[1::2, 0::2], mosaic[1::2, 1::2] = rgb[2], rgb[1], rgb[1], rgb[0]
    out = demosaic_bilinear(mosaic, "bggr")
    np.testing.assert_allclose(out, np.broadcast_to(rgb, (H, W, 3)), atol=1e-6)
    # measured samples are kept, a linear ramp is reproduced exactly inside
    ramp = np.add.outer(np.arange(H), 2 * np.arange(W)).astype(np.float32) / 40
    out = demosaic_bilinear(ramp, "rggb")
    for ch in range(3):
        np.testing.assert_allclose(out[1:-1, 1:-1, ch], ramp[1:-1, 1:-1], atol=1e-6)
    assert out[0, 0, 0] == ramp[0, 0] and out[0, 1, 1] == ramp[0, 1] and out[1, 1, 2] == ramp[1, 1]
    with pytest.raises(LightFieldError, match="bayer"):
        demosaic_bilinear(ramp, "xyz")


def test_lenslet_errors(tmp_path):
    raw, table, _ = _synthetic_square_lenslet()
    iio.imwrite(tmp_path / "raw.png", raw)
    with pytest.raises(LightFieldError, match="centers="):
        read_lightfield(tmp_path / "raw.png", format="lenslet")
    with pytest.raises(LightFieldError, match="fewer views"):
        read_lightfield(tmp_path / "raw.png", centers=table, bayer=None, views=15)
    with pytest.raises(LightFieldError, match="outside"):
        read_lightfield(tmp_path / "raw.png", centers=table * 10, bayer=None, views=3)
    with pytest.raises(LightFieldError, match="shape"):
        read_lightfield(tmp_path / "raw.png", centers=np.zeros((4, 3)), bayer=None)
    with pytest.raises(LightFieldError, match="does not exist"):
        read_lightfield(tmp_path / "raw.png", centers=tmp_path / "nope.mat")
    # a step that is no positive number is said as such, also before it sizes the default grid (0 divided)
    for step in (0, -1.0, float("nan"), "two"):
        for views in (None, 3):
            with pytest.raises(LightFieldError, match="pitch_step=.* must be a positive number of pixels"):
                read_lightfield(tmp_path / "raw.png", centers=table, bayer=None, views=views, pitch_step=step)
