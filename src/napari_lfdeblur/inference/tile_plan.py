"""Every size deblurring cuts an image into: tiles in memory (on the CPU the largest that fit a memory budget),
chunks of lazy images and of a viewer's levels.
"""

from __future__ import annotations

import math
import os

from ..errors import DeblurInputError
from ..io.chunks import chunk_size
from .tiling import ALIGN, spans, windows

__all__ = ["DEFAULT_BUDGET_MB", "DEFAULT_OVERLAP", "DEFAULT_TILE", "LEVEL_CHUNK", "MIN_KEPT", "MIN_TILE",
           "bytes_per_pixel", "computed_pixels", "lazy_chunks", "level_chunk", "memory_budget", "plan_tile",
           "tile_for"]

DEFAULT_TILE = 512  # px: tiles on a GPU, batched
# Context each tile gets beyond the part of it that is kept.  The network works at 1/8 scale with a
# bottleneck of 3x3 convolutions, so features near a tile edge depend on pixels far away; 64 px of context
# keeps tiled output within 1/255 of the whole-image output (tests/inference/test_deblur_lazy.py,
# benchmarks/bench_deblur.py).
DEFAULT_OVERLAP = 64
LEVEL_CHUNK = 512  # px: chunk of every level of a viewer's pyramid; one network call of 640 x 640 with the halo
DEFAULT_BUDGET_MB = 512
BUDGET_ENV = "LFDEBLUR_TILE_MEMORY_MB"
# Working memory of one call per tile pixel for the width-32 network, measured on a CPU
# (benchmarks/bench_inference.py; torch frees as it goes, OpenVINO plans one arena per shape).
# Activations scale with the width; the 49 kernel planes and the images do not, hence the floor.
_FULL_BYTES = {("torch", "bfloat16"): 450, ("torch", "float32"): 800,
               ("openvino", "bfloat16"): 900, ("openvino", "float32"): 1250}
_FLOOR = 0.25
#: the smallest tiles: out of memory, tiles are halved down to this side, and never keep fewer than MIN_KEPT
#: pixels inside their halos (smaller parts would compute mostly halo)
MIN_TILE = 128
MIN_KEPT = 64


def bytes_per_pixel(base: int = 32, backend: str = "torch", precision: str = "float32") -> float:
    """Estimated working memory per tile pixel of a DRBNet of width ``base`` in this runtime and precision."""
    full = _FULL_BYTES.get((backend, precision), _FULL_BYTES[("openvino", "float32")])
    return full * max(_FLOOR, base / 32)


def _available_bytes() -> float:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024.0
    except OSError:
        pass
    return math.inf


def memory_budget() -> float:
    """Bytes one network call may use: ``$LFDEBLUR_TILE_MEMORY_MB`` or 512 MiB, at most a quarter of what is free.
    A value that is not a positive number of MiB is a DeblurInputError, not silently the default."""
    raw = os.environ.get(BUDGET_ENV, "").strip()
    mb = float(DEFAULT_BUDGET_MB)
    if raw:
        try:
            mb = float(raw)
        except ValueError:
            mb = math.nan
        if not (math.isfinite(mb) and mb > 0):
            raise DeblurInputError(
                f"${BUDGET_ENV} is {raw!r}: set it to a positive number of MiB of working memory per network call "
                f"(e.g. {DEFAULT_BUDGET_MB}, the default), or unset it"
            )
    return min(mb * 2**20, _available_bytes() / 4)


def computed_pixels(shape: tuple[int, int], tile: tuple[int, int], halo: int) -> int:
    """Pixels the network computes for an image of ``shape`` in tiles of ``tile`` (halos counted)."""
    rows = sum(b - a for a, b, _, _ in windows(shape[0], tile[0], halo))
    cols = sum(b - a for a, b, _, _ in windows(shape[1], tile[1], halo))
    return rows * cols


def _axis_plans(n: int, halo: int) -> list[tuple[int, int, int]]:
    """(tile, largest tile the network is given, pixels computed) of an axis of ``n`` pixels cut into 1, 2,
    3, ... parts, down to parts of ``MIN_KEPT`` pixels."""
    plans: list[tuple[int, int, int]] = []
    for count in range(1, max(1, n // MIN_KEPT) + 1):
        tile = n if count == 1 else -(-math.ceil((n - 2 * halo) / count) // ALIGN) * ALIGN + 2 * halo
        if plans and tile >= plans[-1][0]:
            continue
        tiles = windows(n, tile, halo)
        plans.append((tile, max(b - a for a, b, _, _ in tiles), sum(b - a for a, b, _, _ in tiles)))
    return plans


def plan_tile(shape: tuple[int, int], bytes_per_px: float, budget: float, halo: int) -> tuple[int, int]:
    """(height, width) of the tiles for an image of ``shape``: whole when it fits ``budget``, else the plan
    computing the fewest pixels among those whose tiles fit (ties: the squarer tile)."""
    H, W = int(shape[0]), int(shape[1])
    max_px = max(budget / max(bytes_per_px, 1e-9), float(MIN_TILE * MIN_TILE))
    if H * W <= max_px:
        return H, W
    rows, cols = _axis_plans(H, halo), _axis_plans(W, halo)
    best = None
    for tile_h, largest_h, computed_h in rows:
        # the widest tile that fits beside this height
        fit = next(((t, w, c) for t, w, c in cols if largest_h * w <= max_px), None)
        if fit is not None:
            cost = (computed_h * fit[2], abs(math.log(largest_h / fit[1])))
            if best is None or cost < best[0]:
                best = (cost, (tile_h, fit[0]))
    return best[1] if best else (rows[-1][0], cols[-1][0])


def tile_for(runtime, shape: tuple[int, int], whole: bool = False) -> tuple[int, int]:
    """(height, width) of the tiles a plane of ``shape`` goes through ``runtime``'s network in: its ``tile``
    when one was asked for; on the CPU the memory plan; elsewhere 512 pixels, or the plane whole when
    ``whole`` (a lazy chunk and its halo: one call each)."""
    if runtime.tile is not None:
        return runtime.tile, runtime.tile
    if runtime.device.type == "cpu":
        per_px = bytes_per_pixel(getattr(runtime.net, "base", 32), runtime.backend, runtime.precision)
        return plan_tile(shape, per_px, memory_budget(), runtime.halo)
    return (int(shape[0]), int(shape[1])) if whole else (DEFAULT_TILE, DEFAULT_TILE)


def lazy_chunks(n: int, current: int, chunk: int | None, halo: int) -> tuple[int, ...]:
    """Chunks over an axis of ``n`` pixels of a lazy image chunked by ``current``: ``chunk`` pixels (default
    :func:`~napari_lfdeblur.io.chunks.chunk_size` of ``current``), on the network's 8-pixel grid, no thinner
    than the halo (a thinner last chunk joins its neighbour: dask would re-chunk it off the grid)."""
    target = chunk or chunk_size(current)
    target = max(ALIGN, int(target) // ALIGN * ALIGN, halo // ALIGN * ALIGN)
    return tuple(b - a for a, b in spans(n, target, max(halo, 1)))


def level_chunk(shape, target: int = LEVEL_CHUNK) -> int:
    """A chunk near ``target`` (within 0.75-1.5 x) that cuts the longer side into equal parts on the network's
    8-px grid: 1250 px as 632 + 618, not 512 + 512 + 226 (three halos and a thin last chunk)."""
    n = max(shape)
    parts = max(1, round(n / target))
    return -(-n // parts // ALIGN) * ALIGN if parts > 1 else max(n, ALIGN)
