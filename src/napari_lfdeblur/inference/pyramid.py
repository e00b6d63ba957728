"""Lazy multiscale deblurring for viewers: a first picture from a cheap overview, full resolution tile by tile.

Level k is ``deblur`` of the input's level k (its own levels, then block means); napari draws the level that
matches the zoom and computes only the chunks on screen.  How the levels are chosen, and what they cost, is in
docs/performance.md ("Images larger than memory", "Huge images: a first picture in seconds").
"""

from __future__ import annotations

import itertools

import numpy as np

from ..io.levels import block_mean, mean_of_blocks
from ..io.pixels import has_channel_axis
from .deblur import deblur
from .lazy import as_dask
from .normalize import Normalization
from .tile_plan import LEVEL_CHUNK, level_chunk

__all__ = ["PYRAMID_ABOVE", "deblur_for_viewer", "deblur_pyramid", "input_levels",
           "hold_small_levels", "MIN_SIZE"]

PYRAMID_ABOVE = 4096  # px: larger images are shown as a multiscale result
MIN_SIZE = 256  # px: the coarsest level's longer side is at most this
HOLD_BYTES = 64 * 2**20  # what hold_small_levels keeps in memory at most
# A multiscale input's levels are read, not made from the full resolution: holding them only buys the
# half steps, so hold what a whole-image view uses (levels up to about 2000 x 2000 RGB) and read no more.
HOLD_STORED_BYTES = 16 * 2**20


def _plane_axes(arr, rgb: bool) -> int:
    return arr.ndim - (3 if rgb else 2)


def input_levels(image, *, rgb: bool, min_size: int = MIN_SIZE) -> list:
    """Lazy inputs, finest first: ``image``'s own levels when it is a list (a multiscale image), then block means
    of the coarsest until the longer side is at most ``min_size``.  Nothing is computed.

    Each added level is the 2**k x 2**k mean of the coarsest given level in one step (a chain of float64 2x2
    means cost 20 times more per pixel), rounded, in the image's dtype; a numpy image is read through views.
    """
    import dask.array as da

    stored = [as_dask(a) for a in (image if isinstance(image, (list, tuple)) else [image])]
    base = stored[-1]
    y_ax = _plane_axes(base, rgb)
    levels, factor = list(stored), 1
    shape = base.shape[y_ax:y_ax + 2]
    while max(s // factor for s in shape) > min_size and min(s // factor for s in shape) >= 4:
        factor *= 2
        levels.append(da.coarsen(mean_of_blocks, base, {y_ax: factor, y_ax + 1: factor}, trim_excess=True))
    return levels


def hold_small_levels(levels: list, *, rgb: bool, max_bytes: int = HOLD_BYTES, half_steps: bool = True,
                      stored: int = 1) -> list:
    """The coarsest levels that fit in ``max_bytes`` together, computed now in one pass and kept in memory.

    A block-mean level of a lazy image reads the full resolution under every chunk it is asked for; held, each
    input chunk is read once.  ``stored``: how many of ``levels`` are the image's own (read as they are); the
    finest held added level is computed from the input, each coarser one from it in memory (2x2 means).
    Level 0 always stays lazy.  ``half_steps``: between two held levels, one more at 1/sqrt(2) of the finer,
    so that the level napari draws has at most twice the canvas's pixels, not four times.
    """
    import dask
    import dask.array as da

    # level 0 never; coarsest first, as many as fit
    n = sum(1 for total in itertools.accumulate(lvl.nbytes for lvl in levels[:0:-1]) if total <= max_bytes)
    if not n:
        return list(levels)
    held = range(len(levels) - n, len(levels))
    y_ax = _plane_axes(levels[0], rgb)
    from_input = [k for k in held if k < stored or k == held.start]
    arrays = dict(zip(from_input, dask.compute(*[levels[k] for k in from_input])))
    for k in held:
        if k not in arrays:  # 2x2 means of the held level above: the same shape as its lazy definition
            arrays[k] = block_mean(arrays[k - 1], 2, y_ax)
    out = list(levels[:held.start])
    for k in held:
        out.append(da.from_array(arrays[k], chunks=levels[k].chunks, name=False))
        if half_steps and k + 1 in arrays:
            out.append(da.from_array(_half_step(arrays[k], rgb), name=False))
    return out


def _half_step(image: np.ndarray, rgb: bool) -> np.ndarray:
    """``image`` resized to 1/sqrt(2) in Y and X, in its dtype (PyTorch's anti-aliased bilinear resize: 19 times
    faster than scikit-image's)."""
    import torch
    import torch.nn.functional as F

    y_ax = _plane_axes(image, rgb)
    planes = np.moveaxis(image, (y_ax, y_ax + 1), (-2, -1)) if rgb else image
    lead = planes.shape[:-2]
    size = tuple(max(1, round(n / 2 ** 0.5)) for n in planes.shape[-2:])
    x = torch.from_numpy(np.ascontiguousarray(planes)).reshape(-1, 1, *planes.shape[-2:])
    with torch.inference_mode():
        y = F.interpolate(x.to(torch.float32), size=size, mode="bilinear", antialias=True, align_corners=False)
        if np.dtype(image.dtype).kind in "ui":
            info = np.iinfo(image.dtype)
            y = y.round_().clamp_(float(info.min), float(info.max))
        out = y.reshape(*lead, *size).numpy().astype(image.dtype)
    return np.moveaxis(out, (-2, -1), (y_ax, y_ax + 1)) if rgb else out


def deblur_pyramid(image, model="default", *, min_size: int = MIN_SIZE, rgb=None, chunk: int | None = None,
                   **options) -> list:
    """Lazy multiscale deblurring: level k is :func:`deblur` of the image's level k (downsampled 2**k times).

    ``image``: a (lazy or numpy) array, or a list of levels finest first (a multiscale image, or
    :func:`hold_small_levels`' output).  Levels are added down to ``min_size`` pixels; each is cut into equal
    chunks near ``chunk`` pixels (default 512), one network call each (plus halo) unless ``tile`` is given.
    Level 0's intensity normalisation serves every level, so levels match in brightness.  ``options`` go to
    :func:`deblur`.  Returns lazy dask arrays, finest first: nothing is deblurred here.
    """
    first = image[0] if isinstance(image, (list, tuple)) else image
    rgb = has_channel_axis(first.shape, rgb)
    levels = input_levels(image, rgb=rgb, min_size=min_size)
    options.setdefault("normalize", "auto")
    if options["normalize"] in ("auto", "percentile") and np.dtype(first.dtype) != np.uint8:
        norm = Normalization.for_image(levels[0], options["normalize"], alpha=rgb and first.shape[-1] == 4)
        options["normalize"] = (norm.lo, norm.hi)
    y_ax = _plane_axes(levels[0], rgb)
    return [deblur(level, model, rgb=rgb, chunk=level_chunk(level.shape[y_ax:y_ax + 2], chunk or LEVEL_CHUNK),
                   **options) for level in levels]


def deblur_for_viewer(image, model="default", *, rgb=None, chunk: int | None = None, **options) -> list:
    """A lazily deblurred image for a viewer, its levels finest first: what the Deblur dock shows.

    ``image``: an array (numpy or lazy), or the levels of a multiscale image, finest first.  One no larger
    than ``PYRAMID_ABOVE`` (4096) pixels gives one level, :func:`~napari_lfdeblur.deblur` of it in chunks of
    ``chunk``.  A larger or multiscale one gives ``deblur_pyramid``'s levels: its small input levels are
    computed now, in one pass over the input (``hold_small_levels``), and so is the coarsest deblurred
    level, the thumbnail napari reads whole before it draws anything; call it off a GUI thread.  The network
    runs in PyTorch (OpenVINO would compile a graph for each of the dozen chunk shapes a lazy layer has:
    docs/performance.md).  ``options`` go to :func:`~napari_lfdeblur.deblur` (``device``, ``dtype``,
    ``normalize``, ...).  Show the levels with ``viewer.add_image(levels, multiscale=len(levels) > 1,
    contrast_limits=...)``: fixed contrast limits, or napari computes the whole result to find them.
    """
    import dask.array as da

    multiscale = isinstance(image, (list, tuple))
    first = image[0] if multiscale else image
    rgb = has_channel_axis(first.shape, rgb)
    options = dict(options, backend="torch")
    y_ax = _plane_axes(first, rgb)
    if not multiscale and max(first.shape[y_ax:y_ax + 2]) <= PYRAMID_ABOVE:
        return [deblur(as_dask(image), model, rgb=rgb, chunk=chunk, **options)]
    levels = hold_small_levels(input_levels(image, rgb=rgb), rgb=rgb, stored=len(image) if multiscale else 1,
                               max_bytes=HOLD_STORED_BYTES if multiscale else HOLD_BYTES)
    out = deblur_pyramid(levels, model, rgb=rgb, chunk=chunk, **options)
    out[-1] = da.from_array(out[-1].compute(), chunks=out[-1].chunks)
    return out
