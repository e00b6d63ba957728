"""Disparity from the light field itself: range and map, on procedural scenes and on HCI antinous."""

from __future__ import annotations

import functools

import numpy as np
import pytest

import napari_lfdeblur as lfd
from napari_lfdeblur import LightFieldError
from napari_lfdeblur.lightfield.core import LightField
from napari_lfdeblur.lightfield.disparity import lightfield_disparity_range


@functools.lru_cache(maxsize=1)
def load_hci_crop(folder: str, y0=96, x0=128, size=256) -> LightField:
    """HCI antinous cropped to the statue and the wall behind it (keeps the test fast)."""
    lf = lfd.read_lightfield(folder)
    data = np.asarray(lf.data[:, :, y0 : y0 + size, x0 : x0 + size].compute(), dtype=np.float32)
    gt = lf.disparity
    assert gt is not None, "the HCI reader should load gt_disp_lowres.pfm"
    return LightField(np.ascontiguousarray(data), disparity=gt[y0 : y0 + size, x0 : x0 + size])


def scores(d: np.ndarray, gt: np.ndarray, border: int = 15) -> tuple[float, float]:
    """(MSE x 100, BadPix(0.07) in %) over the image minus a border, as in the HCI benchmark."""
    e = (d - gt)[border:-border, border:-border]
    return float(100 * np.mean(e**2)), float(100 * np.mean(np.abs(e) > 0.07))


@functools.lru_cache(maxsize=2)
def scene(seed):
    return lfd.synthetic_lightfield(seed, views=7, size=128, disparity_range=(-1.5, 1.5))


# --------------------------------------------------------------------------
# procedural scenes (always run)
# --------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_synthetic_range_and_map(seed):
    lf = scene(seed)
    gt = lf.disparity
    lo, hi = lfd.estimate_disparity_range(lf)
    assert lo <= gt.min() + 0.1 and hi >= gt.max() - 0.1
    assert hi - lo < 1.8 * (gt.max() - gt.min()) + 0.5
    d = lfd.estimate_disparity(lf, disparity_range=(lo, hi))
    assert d.shape == gt.shape and d.dtype == np.float32
    mse, bad = scores(d, gt, border=10)
    const = scores(np.full_like(gt, np.median(gt)), gt, border=10)
    # measured: seed 0 MSE*100 1.3, BadPix 1.5 %; seed 1 2.3, 3.3 % (constant median: 94-158, 41-44 %)
    assert mse < 5.0 and bad < 10.0
    assert mse < const[0] / 10 and bad < const[1] / 3


def test_explicit_candidates_progress_cancel_and_errors():
    lf = lfd.synthetic_lightfield(3, views=5, size=64, disparity_range=(-1, 1))
    calls = []
    d = lfd.estimate_disparity(lf, np.linspace(-1.2, 1.2, 25), progress=lambda i, n: calls.append((i, n)))
    assert calls[-1] == (25, 25) and len(calls) == 25
    assert -1.2 <= d.min() and d.max() <= 1.2
    # an int: that many candidates over the metadata range
    assert lfd.estimate_disparity(lf, 12, smoothness=0).shape == (64, 64)
    assert lfd.estimate_disparity(lf, [-1, 0, 1], cancel=lambda: True) is None
    for bad in ([0.5], [np.nan, 1.0], "many", 1):
        with pytest.raises(LightFieldError):
            lfd.estimate_disparity(lf, bad)
    with pytest.raises(LightFieldError):
        lfd.estimate_disparity(lf, smoothness=-1)
    with pytest.raises(LightFieldError):
        lfd.estimate_disparity_range(lf, percentiles=(90, 10))
    with pytest.raises(LightFieldError):
        lfd.estimate_disparity(np.zeros((3, 3, 8, 8, 1)))


def test_missing_views_and_single_row():
    lf = lfd.synthetic_lightfield(4, views=5, size=64, disparity_range=(-1, 1))
    full = lfd.estimate_disparity(lf, np.linspace(-1.2, 1.2, 25))
    data = lf.data.copy()
    mask = np.ones((5, 5), bool)
    for v, u in [(2, 4), (0, 0), (4, 2)]:
        mask[v, u] = False
        data[v, u] = np.nan
    holes = lfd.estimate_disparity(LightField(data, view_mask=mask), np.linspace(-1.2, 1.2, 25))
    assert np.isfinite(holes).all()
    assert np.mean(np.abs(holes - full) > 0.1) < 0.1
    # a horizontal-parallax-only light field (one row of views)
    row = LightField(lf.data[2:3], disparity=lf.disparity)
    d = lfd.estimate_disparity(row, np.linspace(-1.2, 1.2, 25))
    assert np.median(np.abs(d - lf.disparity)) < 0.1


def test_lightfield_disparity_range_sources():
    lf = scene(0)
    assert lightfield_disparity_range(lf) == (-1.5, 1.5)  # metadata first
    gt_only = LightField(lf.data, disparity=lf.disparity)
    lo, hi = lightfield_disparity_range(gt_only)
    assert lo == pytest.approx(float(np.percentile(lf.disparity, 0.5)), abs=1e-4)
    assert hi == pytest.approx(float(np.percentile(lf.disparity, 99.5)), abs=1e-4)
    lo2, hi2 = lightfield_disparity_range(LightField(lf.data))  # estimated
    assert lo2 < lo + 0.2 and hi2 > hi - 0.2


# --------------------------------------------------------------------------
# real data: HCI antinous with its ground truth
# --------------------------------------------------------------------------
def test_hci_range_contains_gt(hci_antinous):
    lf = load_hci_crop(str(hci_antinous))
    gt = lf.disparity
    lo, hi = lfd.estimate_disparity_range(LightField(lf.data))  # no gt, no metadata
    g_lo, g_hi = np.percentile(gt, [1, 99])
    # measured on this crop: (-3.20, 2.89) for gt 1-99 % (-2.89, 2.53), full (-2.95, 2.69)
    assert lo <= g_lo + 0.05 and hi >= g_hi - 0.05
    assert hi - lo < 1.4 * (gt.max() - gt.min())


def test_hci_disparity_map(hci_antinous):
    lf = load_hci_crop(str(hci_antinous))
    gt = lf.disparity
    d = lfd.estimate_disparity(LightField(lf.data), disparity_range=(-3.2, 2.9))
    mse, bad = scores(d, gt)
    c_mse, c_bad = scores(np.full_like(gt, np.median(gt)), gt)
    # measured on this crop: MSE*100 6.0, BadPix(0.07) 14.6 %; constant median: 303, 90 %
    # (full image, benchmarks/bench_disparity.py: 8.3 and 11.6 %)
    assert mse < 9.0 and bad < 20.0
    assert mse < c_mse / 20 and bad < c_bad / 3
