"""Tiling and blending mechanics, with a local operator whose reach is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from napari_lfdeblur.inference.tiling import plan_tiles, run_tiled, tile_spans


def _box(batch: np.ndarray, radius: int = 5) -> np.ndarray:
    """A (2r+1)^2 box filter with zero padding: its output depends on pixels within ``radius``,
    and it sees the tile border as an image border, like a CNN with zero-padded convolutions."""
    size = 2 * radius + 1
    return np.stack([uniform_filter(b, size=(size, size, 1), mode="constant") for b in batch])


@pytest.mark.parametrize("n,tile,overlap", [(100, 40, 10), (513, 128, 48), (40, 64, 8), (129, 64, 0), (1001, 300, 112)])
def test_tile_spans_cover_everything_on_aligned_starts(n, tile, overlap):
    spans = tile_spans(n, tile, overlap)
    assert spans[0][0] == 0 and spans[-1][0] + spans[-1][1] == n
    covered = np.zeros(n, bool)
    for s, size in spans:
        assert s % 8 == 0  # the network is shift-equivariant only by multiples of 8
        assert size == min(tile, n) or (s, size) == spans[-1]
        covered[s : s + size] = True
    assert covered.all()
    for (a, sa), (b, _) in zip(spans, spans[1:]):
        assert a + sa - b >= overlap


def test_weights_sum_positive_everywhere():
    wsum = np.zeros((300, 210))
    for sy, sx, w in plan_tiles((300, 210), tile=96, margin=12, blend=16):
        assert w.min() >= 0 and w.max() <= 1
        wsum[sy, sx] += w
    assert wsum.min() > 0.5


def test_tiled_equals_whole_when_margin_covers_reach():
    rng = np.random.default_rng(0)
    img = rng.random((203, 257, 3)).astype(np.float32)
    whole = _box(img[None])[0]
    calls = []

    def fn(batch):
        calls.append(batch.shape)
        return _box(batch)

    tiled = run_tiled(img, fn, tile=64, margin=6, blend=8, batch=3)
    assert len(calls) > 3  # it really tiled, in batches
    assert all(c[0] <= 3 for c in calls)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_too_small_margin_shows_and_blending_hides_a_seam():
    """With no margin a tile sees its edge as a border: the error sits at tile borders."""
    rng = np.random.default_rng(1)
    img = rng.random((128, 256, 3)).astype(np.float32)
    whole = _box(img[None])[0]
    hard = run_tiled(img, _box, tile=96, margin=0, blend=0)
    blended = run_tiled(img, _box, tile=96, margin=6, blend=12)
    assert np.abs(hard - whole).max() > 0.05
    assert np.abs(blended - whole).max() < 1e-5


def test_progress_reports_every_batch():
    seen = []
    img = np.zeros((100, 100, 3), np.float32)
    run_tiled(img, _box, tile=48, margin=4, blend=4, batch=2, progress=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    assert seen[-1][0] == total and total > 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
