"""Overlapping tiles with smooth blending: run a network on images of any size.

Along each axis, tiles of ``tile`` pixels overlap by ``2 * margin + blend``.
Tiles start on multiples of ``align`` (8): the network downsamples by 8, so
its output is only shift-equivariant for shifts by multiples of 8, and a tile
at another offset would see a different sampling phase than the whole image.
The last tile of a row or column ends at the border (up to ``align - 1``
pixels longer than the others).  Each tile's outer ``margin`` pixels (where the network saw too little context)
get weight 0, then a raised-cosine ramp of ``blend`` pixels hands over to the
neighbour, so the result has no seam.  Sides that touch the image border keep
weight 1 up to the border: the network sees the real border there, as it
would on the whole image.  Weights are normalised by their sum, so the last
tile may sit flush with the border and overlap its neighbour by more.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

ALIGN = 8


def tile_spans(n: int, tile: int, overlap: int, align: int = ALIGN) -> list[tuple[int, int]]:
    """(start, size) of tiles covering [0, n): starts on multiples of ``align``, neighbours sharing >= ``overlap``."""
    if n <= tile:
        return [(0, n)]
    step = (tile - overlap) // align * align
    if step <= 0:
        raise ValueError(f"tile ({tile}) must exceed the overlap ({overlap}) by at least {align}")
    starts = list(range(0, n - tile, step))
    last = (n - tile) // align * align
    if last > starts[-1]:
        starts.append(last)
    return [(s, tile) for s in starts[:-1]] + [(starts[-1], n - starts[-1])]


def tile_starts(n: int, tile: int, overlap: int, align: int = ALIGN) -> list[int]:
    return [s for s, _ in tile_spans(n, tile, overlap, align)]


def _ramp(length: int, margin: int, blend: int) -> np.ndarray:
    """0 over ``margin`` pixels, then a raised cosine up to 1 over ``blend`` pixels, then 1."""
    x = np.arange(length, dtype=np.float64)
    if blend <= 0:
        return (x >= margin).astype(np.float64)
    t = np.clip((x - margin + 0.5) / blend, 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * t)


def axis_weight(length: int, first: bool, last: bool, margin: int, blend: int) -> np.ndarray:
    w = np.ones(length, dtype=np.float64)
    if not first:
        w *= _ramp(length, margin, blend)
    if not last:
        w *= _ramp(length, margin, blend)[::-1]
    return w


def tile_shape(tile) -> tuple[int, int]:
    """``tile`` as (height, width): the side of square tiles, or already (height, width)."""
    return (int(tile), int(tile)) if np.isscalar(tile) else (int(tile[0]), int(tile[1]))


def plan_tiles(shape: tuple[int, int], tile, margin: int, blend: int) -> Iterator[tuple[slice, slice, np.ndarray]]:
    """Yield (row slice, column slice, 2D weight) for every tile of an image of ``shape``.

    ``tile``: the side of square tiles, or (height, width).
    """
    overlap = 2 * margin + blend
    H, W = shape
    tile_h, tile_w = tile_shape(tile)
    ys = tile_spans(H, tile_h, overlap)
    xs = tile_spans(W, tile_w, overlap)
    for iy, (y0, th) in enumerate(ys):
        wy = axis_weight(th, iy == 0, iy == len(ys) - 1, margin, blend)
        for ix, (x0, tw) in enumerate(xs):
            wx = axis_weight(tw, ix == 0, ix == len(xs) - 1, margin, blend)
            yield slice(y0, y0 + th), slice(x0, x0 + tw), np.outer(wy, wx)


def _batches(tiles: list, batch: int) -> Iterator[list]:
    """Consecutive tiles of equal shape, ``batch`` at a time (border tiles may be larger)."""
    group: list = []
    for t in tiles:
        shape = (t[0].stop - t[0].start, t[1].stop - t[1].start)
        if group and (len(group) == batch or shape != group[0][3]):
            yield group
            group = []
        group.append((*t, shape))
    if group:
        yield group


def run_tiled(
    image: np.ndarray,
    fn: Callable[[np.ndarray], np.ndarray],
    tile,
    margin: int,
    blend: int,
    batch: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Apply ``fn`` (a batch (N, h, w, C) -> (N, h, w, C') float function) tile by tile to (H, W, C).

    ``tile``: the side of square tiles, or (height, width).

    Returns the blended (H, W, C') float32 result.  ``progress(done, total)``
    is called after each batch.
    """
    H, W = image.shape[:2]
    tiles = list(plan_tiles((H, W), tile, margin, blend))
    if len(tiles) == 1:
        out = fn(image[None])[0]
        if progress:
            progress(1, 1)
        return np.asarray(out, dtype=np.float32)
    acc = None
    wsum = np.zeros((H, W, 1), dtype=np.float64)
    done = 0
    for group in _batches(tiles, max(1, batch)):
        inputs = np.stack([image[sy, sx] for sy, sx, _, _ in group])
        outputs = fn(inputs)
        if acc is None:
            acc = np.zeros((H, W, outputs.shape[-1]), dtype=np.float64)
        for (sy, sx, w, _), o in zip(group, outputs):
            acc[sy, sx] += o * w[..., None]
            wsum[sy, sx] += w[..., None]
        done += len(group)
        if progress:
            progress(done, len(tiles))
    return (acc / np.maximum(wsum, 1e-12)).astype(np.float32)
