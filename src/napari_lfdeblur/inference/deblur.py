"""``deblur``: any image, any size, numpy in memory or lazy dask, through the network tile by tile.

The flow for one image plane (Y, X[, C]):

    normalise intensities to [0, 1]  (normalize.py, reversible)
    greyscale -> RGB, RGBA -> RGB + alpha kept aside
    overlapping tiles -> network in batches -> smooth blending  (tiling.py)
    back to the input's channels, range and dtype

numpy in -> numpy out, computed now (with ``progress`` and ``cancel``);
dask, zarr or other array-likes in -> a lazy dask array out: each chunk is
deblurred from itself plus a halo of its neighbours when (and only when) it
is computed (lazy.py), which is what napari does for the tiles it draws.
Stacks (..., Y, X[, C]) go plane by plane.  Multiscale results for viewers:
pyramid.py.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import warnings
from collections.abc import Callable

import numpy as np

from ..cancel import Cancelled, cancel_check, check_function
from ..errors import DeblurInputError, OutOfMemoryError
from .backends import network_function
from .lazy import DEFAULT_CHUNK, lazy_map_planes
from .models import cached_model, clear_model_cache, precision_of, torch_module
from .normalize import Normalization, channels_last, merge_channels, split_channels
from .tile_plan import bytes_per_pixel, memory_budget, plan_tile
from .tiling import ALIGN, plan_tiles, run_tiled, tile_shape

__all__ = ["deblur", "DeblurCancelled", "cached_model", "clear_model_cache", "default_overlap"]

log = logging.getLogger(__name__)

DEFAULT_TILE = 512
MIN_TILE = 128
# Context each tile gets beyond the part of it that is kept, and the width of
# the cross-fade between neighbours.  The network works at 1/8 scale with a
# bottleneck of 3x3 convolutions, so features near a tile edge depend on
# pixels far away; 48 px of context keeps tiled output within 1/255 of the
# whole-image output (tests/inference/test_deblur_whole.py, benchmarks/bench_deblur.py).
DEFAULT_MARGIN = 48
BLEND = 16
# The smallest side the network is given: narrower tiles are mirrored out to it and cropped back.  At 8 px
# or less the 1/8-scale bottleneck is a single pixel, where PyTorch's bfloat16 CPU kernels (oneDNN on AMX)
# returned NaN or garbage, differently each run, and OpenVINO was wrong every time; 32 px leaves 4x4 there.
MIN_SIDE = 32


class DeblurCancelled(Cancelled):
    """Raised by ``deblur`` when its ``cancel`` token is set; nothing is returned."""


def default_overlap() -> int:
    return DEFAULT_MARGIN


def _is_lazy(image) -> bool:
    return not isinstance(image, np.ndarray) and not np.isscalar(image) and hasattr(image, "shape")


def _guess_rgb(shape, rgb):
    return channels_last(shape, rgb)


def _as_image(image):
    """(array, rgb read from the file or None): an image path is read; anything else must be an array."""
    if isinstance(image, (str, os.PathLike)):
        from ..io.read import open_image_info

        arr, info = open_image_info(image)
        return arr, info.rgb
    if isinstance(image, (list, tuple)):
        image = np.asarray(image)
    if not (hasattr(image, "shape") and hasattr(image, "dtype")):
        from ..io.formats import describe_formats

        raise DeblurInputError(
            f"deblur takes an image: a numpy, dask or zarr array, or the path of an image file ({describe_formats()}"
            f"); got {'None' if image is None else type(image).__name__}."
        )
    return image, None


def _whole_number(name: str, value, minimum: int, hint: str, unit: str = "pixels") -> int | None:
    """``value`` as an int >= ``minimum`` (None stays None), or a DeblurInputError that says what works."""
    if value is None:
        return None
    whole = isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
    if isinstance(value, bool) or not whole:
        raise DeblurInputError(f"{name} must be a whole number of {unit}; got {value!r} ({hint}).")
    if int(value) < minimum:
        raise DeblurInputError(f"{name}={value} is too small: {hint}.")
    return int(value)


def _check_shape(shape, dtype, rgb: bool):
    n_plane = 3 if rgb else 2
    if len(shape) < n_plane:
        raise DeblurInputError(
            f"Image of shape {tuple(shape)}: need at least (Y, X) for greyscale or (Y, X, C) for colour."
        )
    y, x = shape[len(shape) - n_plane], shape[len(shape) - n_plane + 1]
    if y < 2 or x < 2:
        raise DeblurInputError(f"Image plane of {y}x{x} pixels is too small to deblur (need at least 2x2).")
    kind = np.dtype(dtype).kind
    if kind not in "uif" or np.dtype(dtype) == np.bool_:
        raise DeblurInputError(f"Unsupported dtype {dtype}: give uint8, uint16 or float images.")


def _at_least(fn, tiles: np.ndarray, side: int) -> np.ndarray:
    """``fn`` on (N, h, w, C) tiles, each side mirrored out to ``side`` pixels first and the result cropped back."""
    h, w = tiles.shape[1:3]
    if h >= side and w >= side:
        return fn(tiles)
    padded = np.pad(tiles, ((0, 0), (0, max(0, side - h)), (0, max(0, side - w)), (0, 0)), mode="symmetric")
    return fn(padded)[:, :h, :w]


def _plane_runner(fn, norm: Normalization, rgb: bool, tile, margin: int, batch: int,
                  progress=None, cancel=None) -> Callable[[np.ndarray], np.ndarray]:
    """A function deblurring one (Y, X[, C]) plane in the input's dtype and range; ``fn`` runs the network.

    ``tile``: a side, (height, width), or a function of the plane's (Y, X) giving one (the memory plan).
    """

    def network(tiles: np.ndarray) -> np.ndarray:
        if cancel is not None and cancel():
            raise DeblurCancelled("Deblurring was cancelled.")
        return _at_least(fn, tiles, MIN_SIDE)

    def run(plane: np.ndarray) -> np.ndarray:
        plane = np.asarray(plane)
        if plane.dtype.kind == "f" and not np.isfinite(plane).all():
            raise DeblurInputError("The image contains NaN or infinite values; replace them (np.nan_to_num) first.")
        unit = norm.to_unit(plane)
        rgb3, _, kind = split_channels(unit, rgb)
        size = tile_shape(tile(rgb3.shape[:2]) if callable(tile) else tile)
        while True:
            try:
                out = run_tiled(rgb3, network, tile=size, margin=margin, blend=BLEND, batch=batch, progress=progress)
                break
            except OutOfMemoryError:
                if max(size) <= MIN_TILE:
                    raise
                size = tuple(max(MIN_TILE, min(s, max(size) // 2)) for s in size)
                warnings.warn(f"out of memory: retrying with {size[0]}x{size[1]}-pixel tiles", RuntimeWarning,
                              stacklevel=2)
                log.warning("out of memory: retrying with %dx%d-pixel tiles", *size)
        result = norm.from_unit(merge_channels(out, None, kind if kind != "rgba" else "rgb"))
        if kind == "rgba":  # alpha untouched, in the input's own values
            result = np.concatenate([result, plane[..., 3:]], axis=-1)
        return result

    return run


def _memory_plan(net, fn, margin: int):
    """The CPU's tile plan: a function of the plane's (Y, X) giving the tile (whole image when it fits)."""
    base = getattr(torch_module(net), "base", 32)
    # OpenVINO runs in the precision PyTorch would (network_function), so one lookup serves both
    per_px = bytes_per_pixel(base, getattr(fn, "backend", "torch"), precision_of(net))
    budget = memory_budget()
    return lambda shape: plan_tile(shape, per_px, budget, 2 * margin + BLEND)


def deblur(image, model="default", tile=None, overlap=None, batch=None, device="auto", *, dtype=None,
           normalize="auto", rgb=None, chunk=None, backend="auto", progress=None, cancel=None):
    """Remove defocus blur from an image or a stack of images.

    Parameters
    ----------
    image
        (Y, X) greyscale, (Y, X, 3) RGB, (Y, X, 4) RGBA (alpha is passed
        through), (Y, X, C) with other channel counts (e.g. two-channel
        microscopy: each channel deblurred as greyscale, with its own
        intensity range) or a stack (..., Y, X[, C]) deblurred plane by
        plane; uint8, uint16 or float.  A numpy array is deblurred now; a
        dask, zarr or tifffile-backed array gives back a lazy dask array; an
        image path (PNG, JPEG, TIFF, BMP, WebP, PPM/PGM, GIF, zarr) is read
        first (as :func:`napari_lfdeblur.io.open_image` does: big TIFFs and
        zarr stores lazily).
    model
        ``"default"`` (the shipped model), ``"authors"`` (the authors' published
        weights, downloaded once into a per-user cache), a checkpoint path (ours
        or the authors' ``single_image_defocus_deblurring.pth``) or an ``nn.Module``.
    tile, overlap, batch
        Tile size in pixels (default 512), context in pixels each tile gets
        beyond what is kept (default 48, rounded up to a multiple of 8; tiles
        cross-fade over 16 more pixels),
        tiles per network call (default 1 on the CPU, 4 on a GPU).  Images no
        larger than a tile go through whole.  Lazy inputs default to one tile
        per chunk (chunk plus its halo).
    device, dtype
        ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda:1"``...;
        dtype ``None``/``"auto"``: float32, except on a CPU that computes
        bfloat16 natively (AVX512-BF16, AMX), where the network runs under
        bfloat16 autocast: about twice as fast, outputs within a level or two
        of 255 of float32 (``"float32"`` for float32 everywhere);
        ``"float16"``/``"bfloat16"`` on GPUs.  A CUDA out-of-memory error
        retries with smaller tiles (down to 128) and warns.
    normalize
        How intensities map to the network's [0, 1] (see ``normalize.py``):
        ``"auto"`` (uint8 / 255; uint16 and float by their 0.05-99.95th
        percentiles, floats in [0, 1] as they are), ``"percentile"``,
        ``"dtype"``, ``"none"`` or ``(lo, hi)``.  The output is mapped back the
        same way into the input dtype.
    rgb
        Whether the last axis holds channels; default: when it has at most 8
        entries (3: RGB, 4: RGBA, 1: greyscale, others: channels deblurred one
        by one).
    chunk
        Lazy inputs: chunk size in Y and X of the output (default: the
        input's when between 256 and 4096, else 1024).
    backend
        What runs the network: ``"auto"`` (OpenVINO on a CPU with AMX when
        the ``openvino`` package is installed, ``pip install
        'napari-lfdeblur[openvino]'``, where it was measured faster; PyTorch
        elsewhere; ``$LFDEBLUR_BACKEND`` = ``torch`` or ``openvino``
        overrides), ``"torch"`` or ``"openvino"``.  Same precision.
    progress, cancel
        numpy inputs: ``progress(done, total)`` after each batch of tiles;
        ``cancel`` (a :class:`~napari_lfdeblur.CancelToken`, a ``threading.Event`` or a function
        returning True) stops it with :class:`DeblurCancelled`.

    Returns
    -------
    Same shape and dtype as ``image``: numpy for numpy, lazy dask otherwise.
    """
    check_function(progress, "progress", "progress(done, total)", where="deblur", error=DeblurInputError)
    stop = cancel_check(cancel, where="deblur")
    image, file_rgb = _as_image(image)
    if any(isinstance(n, float) and math.isnan(n) for n in image.shape):
        raise DeblurInputError(
            f"The image's shape {tuple(image.shape)} is not known yet (a dask array filtered by its values); "
            "call .compute_chunk_sizes() on it first."
        )
    shape, in_dtype = tuple(image.shape), np.dtype(image.dtype)
    rgb = _guess_rgb(shape, file_rgb if rgb is None else rgb)
    if rgb and len(shape) >= 3 and shape[-1] not in (1, 3, 4):
        return _deblur_channels(image, model=model, tile=tile, overlap=overlap, batch=batch, device=device,
                                dtype=dtype, normalize=normalize, chunk=chunk, backend=backend,
                                progress=progress, cancel=cancel)
    _check_shape(shape, in_dtype, rgb)
    tile = _whole_number("tile", tile, 16, f"use at least {MIN_TILE} (default {DEFAULT_TILE})")
    margin = _whole_number("overlap", overlap, 0, f"give 0 or more pixels (default {DEFAULT_MARGIN})")
    chunk = _whole_number("chunk", chunk, 16, f"give 16 or more pixels (default {DEFAULT_CHUNK})")
    batch = _whole_number("batch", batch, 1, "the number of tiles per network call, 1 or more", unit="tiles")
    margin = DEFAULT_MARGIN if margin is None else margin
    margin = -(-margin // ALIGN) * ALIGN  # whole steps of the network's 1/8 grid
    if tile is not None:
        if tile <= 2 * margin + BLEND:
            raise DeblurInputError(f"tile ({tile}) must exceed twice the overlap plus {BLEND} ({2 * margin + BLEND}).")
    alpha = rgb and shape[-1] == 4
    norm = Normalization.for_image(image, normalize, alpha=alpha)
    net = cached_model(model, device=device, dtype=dtype)
    fn = network_function(net, backend)
    from ..network.record import record_of

    kind_of_device = record_of(net).device.type
    on_cpu = kind_of_device == "cpu"
    if batch is None:
        batch = 4 if kind_of_device == "cuda" else 1
    if tile is None:
        # the CPU: tiles as large as the memory budget allows (whole image when it fits);
        # a GPU: 512-pixel tiles in batches (lazy: one chunk and its halo per call)
        tile = _memory_plan(net, fn, margin) if on_cpu else None

    if _is_lazy(image):
        import dask.array as da

        arr = image if isinstance(image, da.Array) else da.from_array(image, chunks="auto")
        if tile is None:  # one network call per chunk: chunk + halo on both sides
            tile = (chunk or DEFAULT_CHUNK) + 2 * (margin + BLEND)
        plane = _plane_runner(fn, norm, rgb, tile, margin, batch)
        return lazy_map_planes(arr, plane, rgb=rgb, depth=margin + BLEND, out_dtype=in_dtype, chunk=chunk)

    image = np.asarray(image)
    n_plane = 3 if rgb else 2
    stack_shape = shape[: len(shape) - n_plane]
    planes = image.reshape((-1,) + shape[len(shape) - n_plane:])
    H, W = planes.shape[1:3]
    tile = DEFAULT_TILE if tile is None else tile((H, W)) if callable(tile) else tile
    per_plane = len(list(plan_tiles((H, W), tile, margin, BLEND)))
    total = per_plane * len(planes)

    out = np.empty_like(planes)
    for i, p in enumerate(planes):
        report = None if progress is None else (lambda d, t, i=i: progress(i * per_plane + d, total))
        out[i] = _plane_runner(fn, norm, rgb, tile, margin, batch, report, stop)(p)
    return out.reshape(stack_shape + out.shape[1:])


def _deblur_channels(image, progress=None, **options):
    """(..., Y, X, C) with C not 1, 3 or 4: each channel deblurred as a greyscale image, stacked back."""
    lazy = _is_lazy(image)
    if lazy:
        import dask.array as da

        if not isinstance(image, da.Array):  # zarr, h5py, ...: slicing one would read it all now
            image = da.from_array(image, chunks="auto")
    n = image.shape[-1]
    outs = []
    for c in range(n):
        report = None if progress is None else (lambda d, t, c=c: progress(c * t + d, n * t))
        outs.append(deblur(image[..., c], rgb=False, progress=report, **options))
    return da.stack(outs, axis=-1) if lazy else np.stack(outs, axis=-1)
