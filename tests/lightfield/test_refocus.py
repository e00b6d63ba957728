"""Refocusing: shift convention, interpolation, apertures, missing views, stacks, real HCI data."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import ndimage as ndi

import napari_lfdeblur as lfd
from napari_lfdeblur import LightFieldError
from napari_lfdeblur.lightfield.core import LightField
from napari_lfdeblur.lightfield.refocus import (
    Refocuser,
    _get_refocuser,
    aperture_weights,
    clear_cache,
)


@functools.lru_cache(maxsize=2)
def load_hci(folder: str) -> LightField:
    """The real HCI scene, decoded once for the module."""
    lf = lfd.read_lightfield(folder).compute()
    assert lf.disparity is not None, "the HCI reader should load gt_disp_lowres.pfm"
    return lf


def _random_lf(V=3, U=5, Y=20, X=24, C=2, seed=0) -> LightField:
    rng = np.random.default_rng(seed)
    return LightField(rng.random((V, U, Y, X, C), dtype=np.float32))


def _naive(lf: LightField, d: float, weights: np.ndarray) -> np.ndarray:
    """The reference: scipy.ndimage.shift (order 1, edge clamped) per view, weighted mean."""
    vc, uc = lf.center
    acc = np.zeros(lf.data.shape[2:], np.float64)
    for v, u in zip(*np.nonzero(weights > 0)):
        shifted = ndi.shift(lf.data[v, u].astype(np.float64), (d * (v - vc), d * (u - uc), 0), order=1, mode="nearest")
        acc += weights[v, u] * shifted
    return acc / weights.sum()


# --------------------------------------------------------------------------
# convention and interpolation
# --------------------------------------------------------------------------
@pytest.mark.parametrize("d", [0.0, 1.0, -2.0, 0.37, -1.64, 7.5])
def test_matches_naive_shift_and_average(d):
    lf = _random_lf()
    out = lfd.refocus(lf, d)
    assert out.shape == (20, 24, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out, _naive(lf, d, np.ones((3, 5))), atol=2e-6)


def test_shift_direction_convention():
    # one bright dot at (10, 12) in the centre view; view (v, u) shows it at
    # (10 - d*(v - vc), 12 - d*(u - uc)) -> refocusing at d puts every copy back at (10, 12)
    V = U = 5
    d = 2.0
    data = np.zeros((V, U, 30, 30, 1), np.float32)
    for v in range(V):
        for u in range(U):
            data[v, u, int(10 - d * (v - 2)), int(12 - d * (u - 2)), 0] = 1.0
    lf = LightField(data)
    out = lfd.refocus(lf, d)[..., 0]
    assert out[10, 12] == pytest.approx(1.0)
    assert out.sum() == pytest.approx(1.0)
    # at the opposite disparity the copies are spread out
    assert lfd.refocus(lf, -d)[..., 0].max() < 0.2


def test_borders_are_clamped_not_zero_filled():
    lf = LightField(np.ones((3, 3, 16, 16, 1), np.float32))
    out = lfd.refocus(lf, 5.3)  # shifts far beyond the image
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_disparity_map_matches_scalar():
    lf = _random_lf(seed=1)
    d = 0.83
    out_map = lfd.refocus(lf, np.full((20, 24), d, np.float32))
    np.testing.assert_allclose(out_map, lfd.refocus(lf, d), atol=2e-5)


# --------------------------------------------------------------------------
# apertures
# --------------------------------------------------------------------------
def test_aperture_weights_9x9():
    lf = LightField(np.zeros((9, 9, 4, 4, 1), np.float32))

    def n(*a):
        return int((aperture_weights(lf, *a) > 0).sum())

    assert n(1.0) == 81  # the disk through the corner views: every view
    assert n(1.0, "square") == 81
    assert n(0.5, "square") == 25  # |dv|, |du| <= 2
    assert n(4.0 / np.hypot(4, 4)) == 49  # radius 4: the inscribed disk
    assert n(1e-3) == 1 and aperture_weights(lf, 1e-3)[4, 4] == 1.0  # tiny: the centre view
    w = aperture_weights(lf, 0.5)
    assert w.dtype == np.float32 and w.sum() == pytest.approx(1.0)
    assert np.allclose(w, w[::-1, ::-1]) and np.allclose(w, w.T)  # symmetric about the centre


def test_tiny_aperture_is_the_centre_view():
    lf = _random_lf(V=5, U=5)
    np.testing.assert_array_equal(lfd.refocus(lf, 1.7, aperture=0.01), lf.data[2, 2])


def test_user_weights_and_missing_views():
    lf = _random_lf(V=3, U=3, seed=2)
    w = np.zeros((3, 3))
    w[1, 0] = 1.0
    w[1, 2] = 3.0
    np.testing.assert_allclose(lfd.refocus(lf, 0.4, aperture_shape=w), _naive(lf, 0.4, w), atol=2e-6)
    # missing views are NaN and flagged: skipped, the others renormalised
    data = lf.data.copy()
    data[0, 0] = np.nan
    data[2, 1] = np.nan
    mask = np.ones((3, 3), bool)
    mask[0, 0] = mask[2, 1] = False
    lf_missing = LightField(data, view_mask=mask)
    out = lfd.refocus(lf_missing, 0.4)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, _naive(lf, 0.4, mask.astype(float)), atol=2e-6)
    assert aperture_weights(lf_missing)[0, 0] == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"aperture": 0.0},
        {"aperture": 1.5},
        {"aperture": -0.2},
        {"aperture": float("nan")},
        {"aperture": "wide"},
        {"aperture_shape": "hexagon"},
        {"aperture_shape": np.ones((2, 2))},
        {"aperture_shape": -np.ones((3, 5))},
        {"aperture_shape": np.zeros((3, 5))},
    ],
)
def test_bad_aperture_raises(kwargs):
    with pytest.raises(LightFieldError):
        lfd.refocus(_random_lf(), 0.5, **kwargs)


def test_bad_disparity_and_device_raise():
    lf = _random_lf()
    with pytest.raises(LightFieldError):
        lfd.refocus(lf, float("inf"))
    with pytest.raises(LightFieldError):
        lfd.refocus(lf, np.zeros((3, 3)))  # wrong map shape
    with pytest.raises(LightFieldError):
        lfd.refocus(lf, 0.5, device="quantum")
    with pytest.raises(LightFieldError):
        lfd.refocus(lf.data, 0.5)  # not a LightField
    assert lfd.refocus(lf, 0.5, device="auto").shape == (20, 24, 2)


def test_disparity_beyond_the_image_is_refused():
    lf = _random_lf()  # 3x5 views of 20x24: the outer columns are 2 view steps from the centre
    assert lfd.refocus(lf, 12.0).shape == (20, 24, 2)  # 24 px: still within the view
    for d in (1e9, -12.5, np.full((20, 24), 1e9, np.float32)):
        with pytest.raises(LightFieldError, match="beyond its 20x24-pixel views.*at most 12"):
            lfd.refocus(lf, d)
    with pytest.raises(LightFieldError, match="beyond"):
        lfd.focal_stack(lf, [0.0, 1e9])


# --------------------------------------------------------------------------
# focal stacks, lazy light fields
# --------------------------------------------------------------------------
def test_focal_stack():
    lf = _random_lf(seed=3)
    ds = [-1.0, 0.25, 2.0]
    calls = []
    st = lfd.focal_stack(lf, ds, aperture=0.8, progress=lambda i, n: calls.append((i, n)))
    assert st.shape == (3, 20, 24, 2) and st.dtype == np.float32
    for i, d in enumerate(ds):
        np.testing.assert_array_equal(st[i], lfd.refocus(lf, d, aperture=0.8))
    assert calls == [(1, 3), (2, 3), (3, 3)]
    # cancelled after the first slice: the slices made so far
    n = iter([False, True])
    assert lfd.focal_stack(lf, ds, cancel=lambda: next(n)).shape[0] == 1
    # an int: that many planes over the light field's disparity range
    lf.metadata["disparity_range"] = (-1.0, 1.0)
    st = lfd.focal_stack(lf, 3)
    np.testing.assert_allclose(st[2], lfd.refocus(lf, 1.0), atol=1e-6)
    with pytest.raises(LightFieldError):
        lfd.focal_stack(lf, [])


def test_lazy_lightfield_is_decoded_once():
    da = pytest.importorskip("dask.array")
    lf_np = _random_lf(seed=4)
    decoded = []

    def count(block):
        if block.size:  # (dask may call it once on an empty array to infer the type)
            decoded.append(1)
        return block

    lazy = da.from_array(lf_np.data, chunks=(1, 1, 20, 24, 2)).map_blocks(count, dtype=np.float32)
    lf = LightField(lazy)
    clear_cache()
    a = lfd.refocus(lf, 0.6)
    b = lfd.focal_stack(lf, [0.6, -0.3])
    assert len(decoded) == 15  # one decode of each view, shared by the three slices
    np.testing.assert_array_equal(a, b[0])
    np.testing.assert_allclose(a, lfd.refocus(lf_np, 0.6), atol=1e-6)
    assert _get_refocuser(lf, None) is _get_refocuser(lf, None)
    clear_cache()


def test_refocuser_reuse_and_zero_copy():
    lf = _random_lf(seed=5)
    rf = Refocuser(lf)
    assert np.shares_memory(rf.views.numpy(), lf.data)  # no copy of a float32 light field
    np.testing.assert_array_equal(rf(0.3), lfd.refocus(lf, 0.3))


# --------------------------------------------------------------------------
# real data: HCI antinous with its ground truth
# --------------------------------------------------------------------------
def test_hci_refocus_at_gt_disparity_matches_centre(hci_antinous):
    lf = load_hci(str(hci_antinous))
    gt = lf.disparity
    centre = lf.center_view()

    def region(lo, hi):
        r = ndi.binary_erosion((gt > lo) & (gt < hi), iterations=8)  # away from occlusion edges
        r[:20] = r[-20:] = False
        r[:, :20] = r[:, -20:] = False
        assert r.sum() > 2000
        return r

    def err(d, r):
        return float(np.abs(lfd.refocus(lf, d) - centre).mean(-1)[r].mean())

    # the statue's chest (gt about 1.1, textured): measured 0.0026 in focus,
    # 0.0087 at +1.5, 0.0119 at -1.5, 0.0208 at the opposite sign
    r = region(1.0, 1.2)
    d0 = float(np.median(gt[r]))
    e0 = err(d0, r)
    assert e0 < 0.005
    assert err(d0 + 1.5, r) > 2.5 * e0 and err(d0 - 1.5, r) > 2.5 * e0
    assert err(-d0, r) > 4 * e0  # the other sign convention would be far off
    # the dim wall behind (gt about -2.5, weak texture): the error is lowest at the gt disparity,
    # measured 0.0025 vs 0.0032 at -2.0 and 0.0043 at -3.0, 0.0063 at -4.0
    r = region(-2.6, -2.4)
    d0 = float(np.median(gt[r]))
    e0 = err(d0, r)
    assert e0 < 0.004
    for dd in (-1.5, -0.5, 0.5, 1.5):
        assert err(d0 + dd, r) > 1.15 * e0


def test_thread_setting_is_restored(monkeypatch):
    import torch

    from napari_lfdeblur.lightfield import shifts as rmod

    before = torch.get_num_threads()
    lf = _random_lf(seed=6)
    a = lfd.refocus(lf, 0.45)
    assert torch.get_num_threads() == before
    monkeypatch.setattr(rmod, "LOOP_THREADS", 0)  # torch's own setting
    np.testing.assert_array_equal(lfd.refocus(lf, 0.45), a)
