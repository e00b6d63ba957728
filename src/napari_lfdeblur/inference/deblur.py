"""``deblur``: any image, any size, numpy in memory or lazy dask, through the network tile by tile.

One call: resolve the runtime (runtime.py), normalise (normalize.py), plan the tiles (tile_plan.py, tiling.py),
run each plane (greyscale -> RGB, alpha kept aside), denormalise.  numpy in -> numpy out, computed now; dask,
zarr or other array-likes in -> a lazy dask array, each chunk deblurred with a halo when computed (lazy.py).
Results for viewers: pyramid.py.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable

import numpy as np

from ..cancel import Cancelled, cancel_check, check_function
from ..errors import DeblurInputError, OutOfMemoryError
from ..io.chunks import CHUNK
from ..io.pixels import has_channel_axis
from .lazy import as_dask, lazy_map_planes
from .normalize import Normalization, merge_channels, split_channels
from .runtime import Runtime, resolve_runtime, whole_number
from .tile_plan import MIN_KEPT, MIN_TILE, tile_for
from .tiling import plan_tiles, run_tiles, tile_shape

__all__ = ["deblur", "DeblurCancelled"]

log = logging.getLogger(__name__)

# The smallest side the network is given: narrower tiles are mirrored out to it and cropped back.  At 8 px
# or less the 1/8-scale bottleneck is a single pixel, where PyTorch's bfloat16 CPU kernels (oneDNN on AMX)
# returned NaN or garbage, differently each run, and OpenVINO was wrong every time; 32 px leaves 4x4 there.
MIN_SIDE = 32


class DeblurCancelled(Cancelled):
    """Raised by ``deblur`` when its ``cancel`` token is set; nothing is returned."""


def _is_lazy(image) -> bool:
    return not isinstance(image, np.ndarray) and not np.isscalar(image) and hasattr(image, "shape")


def _as_image(image, rgb):
    """(array, whether its last axis holds channels): an image path is read; anything else must be an array."""
    if isinstance(image, (str, os.PathLike)):
        from ..io.read import open_image_info

        image, info = open_image_info(image)
        rgb = info.rgb if rgb is None else rgb
    elif isinstance(image, (list, tuple)):
        image = np.asarray(image)
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        from ..io.formats import describe_formats

        raise DeblurInputError(
            f"deblur takes an image: a numpy, dask or zarr array, or the path of an image file ({describe_formats()}"
            f"); got {'None' if image is None else type(image).__name__}."
        )
    if any(isinstance(n, float) and math.isnan(n) for n in image.shape):
        raise DeblurInputError(
            f"The image's shape {tuple(image.shape)} is not known yet (a dask array filtered by its values); "
            "call .compute_chunk_sizes() on it first."
        )
    return image, has_channel_axis(image.shape, rgb)


def _check_shape(shape, dtype, rgb: bool):
    n_plane = 3 if rgb else 2
    if len(shape) < n_plane:
        raise DeblurInputError(
            f"Image of shape {tuple(shape)}: need at least (Y, X) for greyscale or (Y, X, C) for colour."
        )
    y, x = shape[len(shape) - n_plane], shape[len(shape) - n_plane + 1]
    if y < 2 or x < 2:
        raise DeblurInputError(f"Image plane of {y}x{x} pixels is too small to deblur (need at least 2x2).")
    if np.dtype(dtype).kind not in "uif":  # bool is "b"
        raise DeblurInputError(f"Unsupported dtype {dtype}: give uint8, uint16 or float images.")


def _at_least(fn, tiles: np.ndarray, side: int) -> np.ndarray:
    """``fn`` on (N, h, w, C) tiles, each side mirrored out to ``side`` pixels first and the result cropped back."""
    h, w = tiles.shape[1:3]
    if h >= side and w >= side:
        return fn(tiles)
    padded = np.pad(tiles, ((0, 0), (0, max(0, side - h)), (0, max(0, side - w)), (0, 0)), mode="symmetric")
    return fn(padded)[:, :h, :w]


def _shrinking(run: Callable, tile: tuple[int, int], halo: int) -> np.ndarray:
    """``run(tile)``; after an out-of-memory error again with tiles half the size (warned), down to
    ``MIN_TILE`` pixels, and ``MIN_KEPT`` inside the halos."""
    floor = max(MIN_TILE, 2 * halo + MIN_KEPT)
    while True:
        try:
            return run(tile)
        except OutOfMemoryError:
            if max(tile) <= floor:
                raise
            tile = (max(floor, min(tile[0], max(tile) // 2)), max(floor, min(tile[1], max(tile) // 2)))
            warnings.warn(f"out of memory: retrying with {tile[0]}x{tile[1]}-pixel tiles", RuntimeWarning,
                          stacklevel=2)
            log.warning("out of memory: retrying with %dx%d-pixel tiles", *tile)


def _plane_function(runtime: Runtime, norm: Normalization, rgb: bool, whole: bool = False, progress=None,
                    cancel=None) -> Callable[[np.ndarray], np.ndarray]:
    """A function deblurring one (Y, X[, C]) plane in the input's dtype and range (``whole``: a lazy chunk and
    its halo, one network call unless the tiles are smaller)."""

    def network(tiles: np.ndarray) -> np.ndarray:
        if cancel is not None and cancel():
            raise DeblurCancelled("Deblurring was cancelled.")
        return _at_least(runtime, tiles, MIN_SIDE)

    def run(plane: np.ndarray) -> np.ndarray:
        plane = np.asarray(plane)
        if plane.dtype.kind == "f" and not np.isfinite(plane).all():
            raise DeblurInputError("The image contains NaN or infinite values; replace them (np.nan_to_num) first.")
        rgb3, kind = split_channels(norm.to_unit(plane), rgb)
        out = _shrinking(lambda tile: run_tiles(rgb3, network, tile, runtime.halo, runtime.batch, progress),
                         tile_shape(tile_for(runtime, rgb3.shape[:2], whole)), runtime.halo)
        result = norm.from_unit(merge_channels(out, kind))
        if kind == "rgba":  # alpha untouched, in the input's own values
            result = np.concatenate([result, plane[..., 3:]], axis=-1)
        return result

    return run


def _deblur_planes(image: np.ndarray, runtime: Runtime, norm: Normalization, rgb: bool, progress, cancel):
    """A numpy image deblurred now, plane by plane; ``progress(done, total)`` counts the tiles of all planes."""
    n_plane = 3 if rgb else 2
    planes = image.reshape((-1,) + image.shape[image.ndim - n_plane:])
    plane_shape = (int(planes.shape[1]), int(planes.shape[2]))
    per_plane = len(plan_tiles(plane_shape, tile_for(runtime, plane_shape), runtime.halo))
    total = per_plane * len(planes)
    out = np.empty_like(planes)
    for i, p in enumerate(planes):
        report = None if progress is None else (lambda d, t, i=i: progress(i * per_plane + d, total))
        out[i] = _plane_function(runtime, norm, rgb, progress=report, cancel=cancel)(p)
    return out.reshape(image.shape)


def deblur(image, model="default", tile=None, overlap=None, batch=None, device="auto", *, dtype=None,
           normalize="auto", rgb=None, chunk=None, backend="auto", progress=None, cancel=None):
    """Remove defocus blur from an image or a stack of images (``docs/deblurring.md`` has every detail).

    ``image``: (Y, X) greyscale, (Y, X, 3) RGB, (Y, X, 4) RGBA (alpha passed through), (Y, X, C) with other
    channel counts (each channel deblurred as greyscale) or a stack (..., Y, X[, C]), plane by plane; uint8,
    uint16 or float.  A numpy array is deblurred now; a dask, zarr or tifffile-backed array gives back a lazy
    dask array; an image path is read first (:func:`napari_lfdeblur.io.open_image`).
    ``model``: ``"default"`` (the shipped model), ``"authors"`` (the authors' weights, downloaded once), a
    checkpoint path or an ``nn.Module``.  ``tile``: the largest tile in pixels (default: on the CPU the
    largest that fit ``$LFDEBLUR_TILE_MEMORY_MB``, the whole image when it fits; 512 on a GPU; lazy inputs:
    a chunk and its halo per call).  ``overlap``: context each tile gets beyond what is kept (default 64,
    rounded up to a multiple of 8).  ``batch``: tiles per network call (default 1 on the CPU, 4 on a GPU).
    ``device``: ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda:1"``...  ``dtype``:
    ``None``/``"auto"`` (float32; bfloat16 autocast on a CPU that computes it natively), ``"float32"``,
    ``"float16"``/``"bfloat16"`` on GPUs; out of memory retries with smaller tiles and warns.
    ``normalize``: how intensities map to [0, 1] and back: ``"auto"`` (uint8 / 255; uint16 and float by
    their 0.05-99.95th percentiles, floats in [0, 1] as they are), ``"percentile"``, ``"dtype"``,
    ``"none"`` or ``(lo, hi)``.  ``rgb``: whether the last axis holds channels (default: when it has at
    most 8 entries).  ``chunk``: lazy inputs' chunk in Y and X (default: the input's when between 256 and
    4096, else 1024).  ``backend``: ``"auto"`` (OpenVINO on a CPU with AMX when installed; PyTorch
    elsewhere; ``$LFDEBLUR_BACKEND`` overrides), ``"torch"`` or ``"openvino"``.  ``progress(done, total)``
    after each batch of tiles and ``cancel`` (a :class:`~napari_lfdeblur.CancelToken`, a
    ``threading.Event`` or a function returning True: :class:`DeblurCancelled`) for numpy inputs.

    Returns the same shape and dtype as ``image``: numpy for numpy, lazy dask otherwise.
    """
    check_function(progress, "progress", "progress(done, total)", where="deblur", error=DeblurInputError)
    stop = cancel_check(cancel, where="deblur")
    image, rgb = _as_image(image, rgb)
    if rgb and len(image.shape) >= 3 and image.shape[-1] not in (1, 3, 4):
        return _deblur_channels(image, model=model, tile=tile, overlap=overlap, batch=batch, device=device,
                                dtype=dtype, normalize=normalize, chunk=chunk, backend=backend,
                                progress=progress, cancel=cancel)
    _check_shape(image.shape, image.dtype, rgb)
    chunk = whole_number("chunk", chunk, 16, f"give 16 or more pixels (default {CHUNK})")
    runtime = resolve_runtime(model, device, dtype, backend, tile, overlap, batch)
    norm = Normalization.for_image(image, normalize, alpha=rgb and image.shape[-1] == 4)
    if _is_lazy(image):
        return lazy_map_planes(as_dask(image), _plane_function(runtime, norm, rgb, whole=True), rgb=rgb,
                               depth=runtime.halo, out_dtype=image.dtype, chunk=chunk)
    return _deblur_planes(np.asarray(image), runtime, norm, rgb, progress, stop)


def _deblur_channels(image, progress=None, **options):
    """(..., Y, X, C) with C not 1, 3 or 4: each channel deblurred as a greyscale image, stacked back."""
    lazy = _is_lazy(image)
    if lazy:
        import dask.array as da

        image = as_dask(image)  # zarr, h5py, ...: slicing one would read it all now
    n = image.shape[-1]
    outs = []
    for c in range(n):
        report = None if progress is None else (lambda d, t, c=c: progress(c * t + d, n * t))
        outs.append(deblur(image[..., c], rgb=False, progress=report, **options))
    return da.stack(outs, axis=-1) if lazy else np.stack(outs, axis=-1)
