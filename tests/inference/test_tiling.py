"""The one tiling: parts on the 8-px grid, each computed with a halo that is cropped away; a local operator whose
reach is known exactly stands for the network."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from napari_lfdeblur.inference.tiling import plan_tiles, run_tiles, spans, windows


def _box(batch: np.ndarray, radius: int = 5) -> np.ndarray:
    """A (2r+1)^2 box filter with zero padding: its output depends on pixels within ``radius``,
    and it sees the tile border as an image border, like a CNN with zero-padded convolutions."""
    size = 2 * radius + 1
    return np.stack([uniform_filter(b, size=(size, size, 1), mode="constant") for b in batch])


@pytest.mark.parametrize("n,size,min_last", [(100, 40, 8), (513, 128, 64), (40, 64, 8), (129, 64, 1), (1001, 296, 64)])
def test_spans_cover_everything_once_on_aligned_starts(n, size, min_last):
    parts = spans(n, size, min_last)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a % 8 == 0 for a, _ in parts)  # the network is shift-equivariant only by multiples of 8
    assert all(b == c for (_, b), (c, _) in zip(parts, parts[1:]))  # no gap, no overlap
    assert all(b - a == size for a, b in parts[:-1])
    assert len(parts) == 1 or parts[-1][1] - parts[-1][0] >= min_last  # a thin last part joins its neighbour


@pytest.mark.parametrize("n,tile,halo", [(100, 40, 8), (513, 256, 64), (40, 64, 8), (1001, 300, 48), (1030, 512, 64)])
def test_tiles_of_one_size_keep_what_has_a_halo_of_context(n, tile, halo):
    tiles = windows(n, tile, halo)
    kept = [(a, b) for _, _, a, b in tiles]
    assert kept[0][0] == 0 and kept[-1][1] == n and all(b == c for (_, b), (c, _) in zip(kept, kept[1:]))  # once
    for i, (start, stop, a, b) in enumerate(tiles):
        assert start % 8 == 0  # the network's sampling grid
        assert stop - start == min(n, tile) or (i == len(tiles) - 1 and tile <= stop - start < tile + 8)
        assert start <= a < b <= stop
        assert a - start >= halo or start == 0  # context on each side, but at the image border
        assert stop - b >= halo or stop == n


def test_tiled_equals_whole_when_the_halo_covers_the_reach():
    rng = np.random.default_rng(0)
    img = rng.random((203, 257, 3)).astype(np.float32)
    whole = _box(img[None])[0]
    calls = []

    def fn(batch):
        calls.append(batch.shape)
        return _box(batch)

    tiled = run_tiles(img, fn, tile=64, halo=8, batch=3)
    assert len(calls) > 3  # it really tiled, in batches
    assert all(c[0] <= 3 for c in calls)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_without_a_halo_the_seams_show():
    """With no halo a tile sees its edge as a border: the error sits at tile borders."""
    rng = np.random.default_rng(1)
    img = rng.random((128, 256, 3)).astype(np.float32)
    whole = _box(img[None])[0]
    assert np.abs(run_tiles(img, _box, tile=96, halo=0) - whole).max() > 0.05
    assert np.abs(run_tiles(img, _box, tile=96, halo=8) - whole).max() < 1e-5


def test_progress_reports_every_batch():
    seen = []
    img = np.zeros((100, 100, 3), np.float32)
    run_tiles(img, _box, tile=48, halo=8, batch=2, progress=lambda d, t: seen.append((d, t)))
    total = seen[-1][1]
    assert seen[-1][0] == total == len(plan_tiles((100, 100), 48, 8)) > 1
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_an_image_that_fits_one_tile_goes_through_whole():
    img = np.random.default_rng(2).random((60, 70, 3)).astype(np.float32)
    calls = []
    out = run_tiles(img, lambda b: (calls.append(b.shape), b * 2)[1], tile=(64, 72), halo=16)
    assert calls == [(1, 60, 70, 3)]
    np.testing.assert_allclose(out, img * 2)


def test_tiles_align_to_the_networks_input_multiple():
    """tiling.ALIGN is written out (the module stays free of torch); it must be DRBNet's multiple."""
    from napari_lfdeblur.inference.tiling import ALIGN
    from napari_lfdeblur.network.drbnet import MULTIPLE

    assert ALIGN == MULTIPLE
