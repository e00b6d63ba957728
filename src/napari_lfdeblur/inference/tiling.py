"""The one tiling of deblurring: each part of an image is computed from itself plus a halo of context.

Tiles overlap by at least twice the halo and each keeps its output between the middles of its overlaps with its
neighbours, so every kept pixel had ``halo`` pixels of context (none past the image border).  Tiles start on
multiples of 8: the network downsamples by 8, so its output is only shift-equivariant for shifts by multiples
of 8.  :func:`run_tiles` tiles an image in memory (tiles of one shape, so that they batch and OpenVINO compiles
few shapes); a lazy image is cut into chunks (:func:`spans`) that dask hands over with their halo, and
:func:`run_tiles` runs on each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

# DRBNet's input multiple (network.drbnet.MULTIPLE, not imported: this module and the OpenVINO backend's padding
# stay free of torch): tiles start on it, and inputs are padded to it
ALIGN = 8


def spans(n: int, size: int, min_last: int = 1) -> list[tuple[int, int]]:
    """(start, stop) of the chunks of a lazy image's axis of ``n`` pixels: ``size`` pixels each, ``size`` a
    multiple of 8 (whole when ``n <= size``); a last chunk thinner than ``min_last`` joins its neighbour."""
    if n <= size:
        return [(0, n)]
    starts = list(range(0, n, size))
    if len(starts) > 1 and n - starts[-1] < min_last:
        starts.pop()
    return [(a, b) for a, b in zip(starts, starts[1:] + [n])]


def windows(n: int, tile: int, halo: int) -> list[tuple[int, int, int, int]]:
    """(tile start, tile stop, kept start, kept stop) of the tiles of an axis of ``n`` pixels: one whole when
    ``n <= tile``, else tiles of ``tile`` pixels ``tile - 2 * halo`` apart (rounded down to 8), the last flush
    with the border, each kept between the middles of its overlaps with its neighbours."""
    if n <= tile:
        return [(0, n, 0, n)]
    step = max(ALIGN, (tile - 2 * halo) // ALIGN * ALIGN)
    starts = list(range(0, n - tile, step))
    last = (n - tile) // ALIGN * ALIGN
    if last > starts[-1]:
        starts.append(last)
    stops = [a + tile for a in starts[:-1]] + [n]
    cuts = [0] + [(b + stop) // 2 for b, stop in zip(starts[1:], stops)] + [n]
    return [(a, stop, c0, c1) for a, stop, c0, c1 in zip(starts, stops, cuts, cuts[1:])]


def tile_shape(tile) -> tuple[int, int]:
    """``tile`` as (height, width): the side of square tiles, or already (height, width)."""
    return (int(tile[0]), int(tile[1])) if isinstance(tile, (tuple, list)) else (int(tile), int(tile))


def plan_tiles(shape: tuple[int, int], tile, halo: int) -> list[tuple[tuple, tuple]]:
    """(row window, column window) of every tile of an image of ``shape``, row by row (see :func:`windows`)."""
    tile_h, tile_w = tile_shape(tile)
    return [(wy, wx) for wy in windows(shape[0], tile_h, halo) for wx in windows(shape[1], tile_w, halo)]


def _batches(tiles: list, batch: int) -> Iterator[list]:
    """Consecutive tiles of equal shape, ``batch`` at a time (the last of a row or column may be longer)."""
    group: list = []
    for t in tiles:
        shape = (t[0][1] - t[0][0], t[1][1] - t[1][0])
        if group and (len(group) == batch or shape != group[0][2]):
            yield group
            group = []
        group.append((*t, shape))
    if group:
        yield group


def run_tiles(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray], tile, halo: int, batch: int = 1,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Apply ``fn`` (a batch (N, h, w, C) -> (N, h, w, C') float function) tile by tile to (H, W, C).

    ``tile``: the side of square tiles, or (height, width); tiles of equal shape go ``batch`` at a time.
    Returns the (H, W, C') float32 result; ``progress(done, total)`` is called after each batch.
    """
    tiles = plan_tiles(image.shape[:2], tile, halo)
    if len(tiles) == 1:  # the whole image: no copy of it
        out = np.asarray(fn(image[None])[0], dtype=np.float32)
        if progress:
            progress(1, 1)
        return out
    result = np.empty(0, dtype=np.float32)  # (H, W, C') once the first outputs tell C'
    done = 0
    for group in _batches(tiles, max(1, batch)):
        outputs = fn(np.stack([image[y0:y1, x0:x1] for (y0, y1, _, _), (x0, x1, _, _), _ in group]))
        if done == 0:
            result = np.empty((*image.shape[:2], outputs.shape[-1]), dtype=np.float32)
        for ((y0, _, a, b), (x0, _, c, d), _), o in zip(group, outputs):
            result[a:b, c:d] = o[a - y0:b - y0, c - x0:d - x0]
        done += len(group)
        if progress:
            progress(done, len(tiles))
    return result
