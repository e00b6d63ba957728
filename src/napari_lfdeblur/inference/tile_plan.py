"""How big the tiles are: the largest that fit a memory budget, shaped so that as few pixels as possible are computed twice.

Tiles overlap by ``2 * margin + blend`` pixels, so every extra tile computes
that strip again: 512-pixel tiles of a 1-megapixel image compute 1.5 times
its pixels.  :func:`plan_tile` takes the whole image when it fits the budget,
else the (height, width) tile, as few and as square as the budget allows,
that computes the fewest pixels.  The budget is working memory for one
network call: ``$LFDEBLUR_TILE_MEMORY_MB`` (default 512 MiB; anything but a
positive number is a :class:`~napari_lfdeblur.errors.DeblurInputError`), at
most a quarter of the memory available.
"""

from __future__ import annotations

import math
import os

from ..errors import DeblurInputError
from .tiling import ALIGN, tile_spans

__all__ = ["DEFAULT_BUDGET_MB", "bytes_per_pixel", "memory_budget", "plan_tile", "computed_pixels"]

DEFAULT_BUDGET_MB = 512
BUDGET_ENV = "LFDEBLUR_TILE_MEMORY_MB"
# Working memory of one call per tile pixel for the width-32 network, measured on a CPU
# (benchmarks/bench_inference.py; torch frees as it goes, OpenVINO plans one arena per shape).
# Activations scale with the width; the 49 kernel planes and the images do not, hence the floor.
_FULL_BYTES = {("torch", "bfloat16"): 450, ("torch", "float32"): 800,
               ("openvino", "bfloat16"): 900, ("openvino", "float32"): 1250}
_FLOOR = 0.25
_MIN_TILE = 128


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

    A value that is not a positive number of MiB is a DeblurInputError: silently using the default (or a
    1 MiB budget for 0) would run with a memory use the user did not ask for.
    """
    raw = os.environ.get(BUDGET_ENV, "").strip()
    mb = DEFAULT_BUDGET_MB
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


def computed_pixels(shape: tuple[int, int], tile: tuple[int, int], overlap: int) -> int:
    """Pixels the network computes for an image of ``shape`` in tiles of ``tile`` (overlaps counted twice)."""
    ys = tile_spans(shape[0], tile[0], overlap)
    xs = tile_spans(shape[1], tile[1], overlap)
    return sum(h for _, h in ys) * sum(w for _, w in xs)


def _side_for(n: int, count: int, overlap: int) -> int:
    """The tile side (a multiple of 8) that covers ``n`` pixels in about ``count`` overlapping tiles."""
    if count <= 1:
        return n
    side = math.ceil((n - overlap) / count) + overlap
    return max(_MIN_TILE, -(-side // ALIGN) * ALIGN, overlap + 2 * ALIGN)


def plan_tile(shape: tuple[int, int], bytes_per_px: float, budget: float, overlap: int) -> tuple[int, int]:
    """(height, width) of the tiles for an image of ``shape``: whole when it fits ``budget``, else the plan
    computing the fewest pixels among those whose tiles fit (ties: the squarer tile)."""
    H, W = int(shape[0]), int(shape[1])
    max_px = max(budget / max(bytes_per_px, 1e-9), float(_MIN_TILE * _MIN_TILE))
    if H * W <= max_px:
        return H, W
    best = None
    for ny in range(1, max(1, math.ceil(H / _MIN_TILE)) + 1):
        ty = min(H, _side_for(H, ny, overlap))
        if ty * _MIN_TILE > max_px and ny > 1 and ty > _MIN_TILE:
            continue
        # the widest tile that fits beside this height
        for nx in range(1, max(1, math.ceil(W / _MIN_TILE)) + 1):
            tx = min(W, _side_for(W, nx, overlap))
            if ty * tx <= max_px or (ty <= _MIN_TILE and tx <= _MIN_TILE):
                cost = (computed_pixels((H, W), (ty, tx), overlap), abs(math.log(ty / tx)))
                if best is None or cost < best[0]:
                    best = (cost, (ty, tx))
                break
    return best[1] if best else (min(H, _MIN_TILE), min(W, _MIN_TILE))
