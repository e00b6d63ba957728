"""Writing images of any size: PNG, JPEG, TIFF (streamed tile by tile) and OME-Zarr with a pyramid.

Everything is written under a temporary name and renamed into place when complete (:mod:`.atomic`).  Dask
arrays are computed a few chunks at a time (:func:`~napari_lfdeblur.io.chunks.iter_computed_blocks`), locally
or on a ``dask.distributed`` cluster, so memory stays flat.  An image a format cannot hold (a stack as PNG,
16-bit colour PNG, RGBA JPEG, ...) raises :class:`~napari_lfdeblur.errors.ImageFileError` before any work.
"""

from __future__ import annotations

import errno
import functools
import math
import numbers
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..cancel import Cancelled, cancel_check, check_function
from ..errors import ImageFileError, OutputError
from .atomic import atomic_dir, atomic_path
from .chunks import iter_computed_blocks, native_multiple_chunks, stored_chunk_size
from .formats import _is_zarr_folder, output_format, stem
from .levels import mean_of_blocks
from .pixels import has_channel_axis, to_stored
from .read import is_ome_zarr_image

__all__ = ["TIFF_TILE", "check_writable", "save_image", "save_image_streaming"]

#: TIFF tile size of streamed TIFFs
TIFF_TILE = 256
# above this many bytes a TIFF is written as BigTIFF (classic TIFF offsets are 32-bit)
_BIGTIFF_BYTES = 2**32 - 2**25


def _is_dask(a) -> bool:
    import dask.array as da

    return isinstance(a, da.Array)


def _plane_layout(shape, rgb):
    """(number of leading stack axes, whether the last axis is channels)."""
    rgb = has_channel_axis(shape, rgb)
    n_plane = 3 if rgb else 2
    if len(shape) < n_plane:
        raise ImageFileError(f"cannot write an image of shape {tuple(shape)}")
    return len(shape) - n_plane, rgb


def _regular(arr, rgb):
    """Rechunk a dask array: stack axes 1, channels whole (Y/X chunks kept)."""
    n_stack, rgb = _plane_layout(arr.shape, rgb)
    chunks = tuple([1] * n_stack + list(arr.chunks[n_stack:n_stack + 2]) + ([-1] if rgb else []))
    return arr.rechunk(chunks), n_stack, rgb


def _offsets(chunks) -> list[int]:
    return [0, *np.cumsum(chunks).tolist()]


def _blocks_in_order(arr, n_stack: int, rgb: bool):
    """((stack index, iy, ix), slices, block) for every block, planes then rows then columns."""
    ys, xs = arr.chunks[n_stack], arr.chunks[n_stack + 1]
    oy, ox = _offsets(ys), _offsets(xs)
    tail = (0,) if rgb else ()
    for s in np.ndindex(*arr.shape[:n_stack]):
        for iy in range(len(ys)):
            for ix in range(len(xs)):
                yield (s, iy, ix), (slice(oy[iy], oy[iy + 1]), slice(ox[ix], ox[ix + 1])), \
                    arr.blocks[s + (iy, ix) + tail]


def _computed(arr, n_stack, rgb, progress, client, workers):
    """Yield (key, slices, numpy block) in order, reporting progress(done, total)."""
    total = math.prod(arr.shape[:n_stack]) * len(arr.chunks[n_stack]) * len(arr.chunks[n_stack + 1])
    slices_of = {}

    def source():
        for key, slc, blk in _blocks_in_order(arr, n_stack, rgb):
            slices_of[key] = slc
            yield key, blk

    done = 0
    if progress:
        progress(0, total)
    for key, block in iter_computed_blocks(source(), client=client, workers=workers):
        done += 1
        if progress:
            progress(done, total)
        yield key, slices_of.pop(key), block


def _to_numpy(array, rgb, progress, client, workers) -> np.ndarray:
    if not _is_dask(array):
        a = np.asarray(array)
        if progress:
            progress(1, 1)
        return a
    arr, n_stack, rgb = _regular(array, rgb)
    out = np.empty(arr.shape, dtype=arr.dtype)
    for (s, _, _), (sy, sx), block in _computed(arr, n_stack, rgb, progress, client, workers):
        out[s + (sy, sx)] = block[(0,) * n_stack] if n_stack else block
    return out


# ------------------------------------------------------------------ PNG / JPEG
def _check_raster(shape, dtype, fmt: str, rgb):
    n_stack, rgb = _plane_layout(shape, rgb)
    name = "PNG" if fmt == "png" else "JPEG"
    if n_stack:
        raise ImageFileError(f"{name} holds one image, not a stack of shape {shape}: use tif or ome.zarr")
    if rgb and shape[-1] not in (1, 3, 4):
        raise ImageFileError(f"{name} holds greyscale, RGB or RGBA, not {shape[-1]} channels: use tif or ome.zarr")
    allowed = (np.uint8, np.uint16) if fmt == "png" else (np.uint8,)
    if np.dtype(dtype) not in [np.dtype(t) for t in allowed]:
        raise ImageFileError(f"{name} cannot hold {np.dtype(dtype)} pixels: use tif or ome.zarr "
                               f"({name} takes {' or '.join(np.dtype(t).name for t in allowed)})")
    if fmt == "jpg" and rgb and shape[-1] == 4:
        raise ImageFileError("JPEG has no alpha channel: use png, tif or ome.zarr for RGBA images")
    if fmt == "png" and np.dtype(dtype) == np.uint16 and rgb and shape[-1] in (3, 4):
        # Pillow, which writes (and reads) PNG here, has no 16-bit colour mode: refuse before the work
        raise ImageFileError("16-bit colour PNG is not written here (16-bit greyscale is): use tif or ome.zarr to "
                               "keep the 16 bits, or convert the image to 8-bit first")
    return rgb


def _write_raster(array, path: Path, fmt: str, rgb, progress, client, workers, quality: int = 95):
    from PIL import Image

    rgb = _check_raster(tuple(array.shape), array.dtype, fmt, rgb)
    a = _to_numpy(array, rgb, progress, client, workers)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    im = Image.fromarray(np.ascontiguousarray(a))  # uint16 grey: mode "I;16", 16-bit PNG
    # Pillow writes into a file opened and closed here: imageio's writer, failing on a full disk, retried its
    # close when garbage-collected and printed a second traceback after the one-line error
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        if fmt == "jpg":
            im.save(fh, format="JPEG", quality=quality)
        else:
            im.save(fh, format="PNG")


# ------------------------------------------------------------------ TIFF
def _tiff_options(shape, dtype, rgb) -> dict:
    opts: dict[str, object] = {"photometric": "rgb" if rgb and shape[-1] in (3, 4) else "minisblack"}
    if rgb and shape[-1] == 4:
        opts["extrasamples"] = ("unassalpha",)
    if math.prod(shape) * np.dtype(dtype).itemsize > _BIGTIFF_BYTES:
        opts["bigtiff"] = True
    return opts


def _cut(parts: list, xoff: list, r0: int, r1: int, x0: int, x1: int) -> np.ndarray:
    """Rows r0:r1, columns x0:x1 of a band held as side-by-side blocks (no copy of the whole band)."""
    import bisect

    i = bisect.bisect_right(xoff, x0) - 1
    if x1 <= xoff[i + 1]:
        return parts[i][r0:r1, x0 - xoff[i]:x1 - xoff[i]]
    pieces = []
    while x0 < x1:
        a, b = xoff[i], xoff[i + 1]
        pieces.append(parts[i][r0:r1, x0 - a:min(x1, b) - a])
        x0, i = min(x1, b), i + 1
    return np.concatenate(pieces, axis=1)


def _tiff_tiles(arr, n_stack, rgb, progress, client, workers, tile: int):
    """Tiles of ``tile`` x ``tile`` (row-major per plane, planes in order), computing one chunk row at a time.

    A TIFF's tiles go in row order, so a row of tiles needs the whole chunk row
    (band) above it: memory holds about one band (width x chunk height) and the
    chunks in flight, whatever the image height or number of planes.
    """
    W = arr.shape[n_stack + 1]
    n_cols, n_rows = len(arr.chunks[n_stack + 1]), len(arr.chunks[n_stack])
    band_parts: list = []
    carry = None  # rows of the previous band below its last whole row of tiles (band heights not multiples of tile)
    for (_, iy, ix), _, block in _computed(arr, n_stack, rgb, progress, client, workers):
        band_parts.append(block[(0,) * n_stack] if n_stack else block)
        del block
        if ix < n_cols - 1:
            continue
        parts, band_parts = band_parts, []
        if carry is not None:
            parts, carry = [np.concatenate([carry, np.concatenate(parts, axis=1)], axis=0)], None
        xoff = _offsets([p.shape[1] for p in parts])
        h = parts[0].shape[0]
        last_row = iy == n_rows - 1
        whole = h if last_row else h // tile * tile  # the last band's partial tiles are padded by tifffile
        for r0 in range(0, whole, tile):
            for x0 in range(0, W, tile):
                yield _cut(parts, xoff, r0, min(r0 + tile, h), x0, min(x0 + tile, W))
        if whole < h:
            carry = np.concatenate([p[whole:] for p in parts], axis=1)
        del parts


def _write_tiff(array, path: Path, rgb, progress, client, workers, tile: int = TIFF_TILE):
    import tifffile

    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    n_stack, rgb = _plane_layout(shape, rgb)
    opts = _tiff_options(shape, dtype, rgb)
    if not _is_dask(array):
        a = np.asarray(array)
        if a.shape[-2 if rgb else -1] * a.shape[-3 if rgb else -2] > 4096 * 4096:
            opts["tile"] = (tile, tile)
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, a, **opts)
        if progress:
            progress(1, 1)
        return
    arr, n_stack, rgb = _regular(array, rgb)
    tiles = _tiff_tiles(arr, n_stack, rgb, progress, client, workers, tile)
    with atomic_path(path) as tmp:
        try:
            tifffile.imwrite(tmp, tiles, shape=shape, dtype=dtype, tile=(tile, tile), **opts)
        finally:
            tiles.close()  # stops the chunk computations if writing failed


# ------------------------------------------------------------------ OME-Zarr
def _ngff_axes(ndim: int, n_stack: int, rgb: bool, axes: str | None) -> list[str]:
    """Axis names in our layout (stack..., y, x[, c])."""
    if (axes is not None and len(axes) == ndim and len(set(axes)) == ndim and set(axes) <= set("tczyx")
            and axes.endswith("yxc" if rgb else "yx")):
        return list(axes)
    if n_stack > 2:
        raise ImageFileError(
            f"OME-Zarr holds at most 2 stack axes (t, z) before y and x; this image has {n_stack}: write tif"
        )
    stack = ["t", "z"][2 - n_stack:] if n_stack else []
    return stack + ["y", "x"] + (["c"] if rgb else [])


_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_CHANNEL_COLOURS = ("FF0000", "00FF00", "0000FF", "FFFFFF")
_CHANNEL_LABELS = ("red", "green", "blue", "alpha")


def _ngff_attrs(names_disk: list[str], dtype, name: str, n_channels: int) -> dict:
    """OME-NGFF 0.4 ``multiscales`` metadata; colour images get ``omero`` channel colours (red, green, blue) so
    that viewers compose them as RGB."""
    attrs: dict[str, object] = {
        "multiscales": [{
            "version": "0.4",
            "name": name,
            "axes": [{"name": n, "type": _AXIS_TYPES[n]} for n in names_disk],
            "datasets": [{"path": "0", "coordinateTransformations": [
                {"type": "scale", "scale": [1.0] * len(names_disk)}]}],
            "metadata": {"description": "deblurred with napari-lfdeblur"},
        }]
    }
    if n_channels in (3, 4):
        dt = np.dtype(dtype)
        lo, hi = (0.0, 1.0) if dt.kind == "f" else (float(np.iinfo(dt).min), float(np.iinfo(dt).max))
        attrs["omero"] = {
            "version": "0.4",
            "name": name,
            "rdefs": {"model": "color"},
            "channels": [{"label": _CHANNEL_LABELS[i], "color": _CHANNEL_COLOURS[i], "active": i < 3,
                          "coefficient": 1.0, "family": "linear", "inverted": False,
                          "window": {"start": lo, "end": hi, "min": lo, "max": hi}}
                         for i in range(n_channels)],
        }
    return attrs


def _create_level(root, level: int, shape: tuple, chunks: tuple, dtype):
    """Array ``level`` of an OME-Zarr group: zstd-compressed, "/"-separated chunk keys (zarr v2 layout)."""
    import numcodecs

    return root.create_array(
        str(level), shape=shape, chunks=chunks, dtype=dtype, fill_value=0,
        compressors=numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.SHUFFLE),
        chunk_key_encoding={"name": "v2", "separator": "/"},
    )


# ------------------------------------------------------------------ what an OME-Zarr save may replace
_ZARR_FILES = frozenset({".zgroup", ".zattrs", ".zarray", ".zmetadata", "zarr.json"})  # metadata at a store's top


def _check_replaceable(path: Path) -> None:
    """Refuse (:class:`OutputError`) to replace ``path`` with an OME-Zarr image unless it is an empty folder or
    an OME-Zarr image with nothing at its top but zarr metadata and zarr arrays or groups: a file, a folder of
    photos named ``X.ome.zarr``, a plain zarr array or an image with other files beside its levels is never
    deleted.  Links are judged by what they point to (a link is replaced, its target kept)."""
    what = "a folder of other files"
    try:
        if path.is_dir():
            entries = [q for q in path.iterdir() if q.name != ".DS_Store"]  # what macOS Finder leaves in a folder
            if not entries:
                return
            if is_ome_zarr_image(path) and all(q.name in _ZARR_FILES or _is_zarr_folder(q) for q in entries):
                return
        else:
            what = "a file" if path.exists() else "a link to nothing"
    except (OSError, ValueError):  # unreadable, or metadata that is not JSON: not an image written here
        pass
    raise OutputError(f"{path} exists and is not an OME-Zarr image ({what}); saving would delete it: "
                      "choose another name or remove it")


# ------------------------------------------------------------------ OME-Zarr: stopping writes in flight
class _WriteGate:
    """Counts writes in flight; :meth:`close` refuses new ones and returns once the running ones are done."""

    def __init__(self):
        self._cond = threading.Condition()
        self._running = 0
        self._closed = False

    def __enter__(self):
        with self._cond:
            if self._closed:
                raise OSError(errno.ECANCELED, "the save failed: no more writes")
            self._running += 1
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._running -= 1
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.wait_for(lambda: self._running == 0)


@functools.cache
def _gated_store_class():
    from zarr.storage import WrapperStore

    class GatedStore(WrapperStore):
        """A store whose writes pass :class:`_WriteGate`.

        zarr writes the chunks of one assignment concurrently and, when one fails, returns that error while
        the others still run on its event loop (dask's threads do the same for the pyramid): removing the
        temporary folder then lets them re-create it, junk left on a full disk.  A failed save closes the gate
        first, so the folder is removed after the last write has returned."""

        def __init__(self, store, gate: _WriteGate | None = None):
            super().__init__(store)
            self.gate = gate or _WriteGate()

        def _with_store(self, store):
            return type(self)(store, self.gate)

        async def set(self, key, value):
            with self.gate:
                await self._store.set(key, value)

        async def set_if_not_exists(self, key, value):
            with self.gate:
                await self._store.set_if_not_exists(key, value)

    return GatedStore


def _write_zarr(array, path: Path, rgb, progress, client, workers, axes: str | None, chunk: int | None):
    import zarr
    from zarr.storage import LocalStore

    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    n_stack, rgb = _plane_layout(shape, rgb)
    names = _ngff_axes(len(shape), n_stack, rgb, axes)
    # disk order: NGFF wants t, c, z, y, x (channels before the spatial axes)
    perm = sorted(range(len(shape)), key=lambda i: "tczyx".index(names[i]))
    disk_shape = tuple(shape[p] for p in perm)
    names_disk = [names[p] for p in perm]
    lazy = _is_dask(array)
    if chunk is None:
        chunk = stored_chunk_size(max(array.chunks[n_stack]) if lazy else None)
    y_ax, x_ax = n_stack, n_stack + 1  # in our layout
    chunks = tuple(min(chunk, shape[p]) if p in (y_ax, x_ax) else (shape[p] if rgb and p == len(shape) - 1 else 1)
                   for p in perm)
    with atomic_dir(path, check_old=_check_replaceable) as tmp:
        store = _gated_store_class()(LocalStore(tmp))
        try:
            root = zarr.open_group(store, mode="w", zarr_format=2)
            z = _create_level(root, 0, disk_shape, chunks, dtype)
            root.attrs.update(_ngff_attrs(names_disk, dtype, stem(path), shape[-1] if rgb else 1))
            if not lazy:
                z[...] = np.transpose(np.asarray(array), perm)
                if progress:
                    progress(1, 1)
            else:
                arr, n_stack, rgb = _regular(array, rgb)
                for (s, _, _), (sy, sx), block in _computed(arr, n_stack, rgb, progress, client, workers):
                    where = tuple(slice(i, i + 1) for i in s) + (sy, sx) + ((slice(None),) if rgb else ())
                    z[tuple(where[p] for p in perm)] = np.transpose(block, perm)
            _write_pyramid(root, names_disk, chunks, chunk)
        except BaseException:
            store.gate.close()  # before atomic_dir removes the folder
            raise
    return path


def _write_pyramid(root, names_disk: list[str], chunks: tuple, chunk: int):
    """Levels 1, 2, ... of an OME-Zarr group, each the previous one halved in y and x (``levels.mean_of_blocks``
    of 2x2, an odd last row/column dropped), until a level fits in one chunk.  Each is read back from the one
    just written, on local threads: the files are in this machine's temporary folder, which cluster workers may
    not see."""
    import dask
    import dask.array as da

    yx = (names_disk.index("y"), names_disk.index("x"))
    prev = root["0"]
    attrs = dict(root.attrs)
    datasets = attrs["multiscales"][0]["datasets"]
    level = 0
    while max(prev.shape[a] for a in yx) > chunk and min(prev.shape[a] for a in yx) >= 2:
        level += 1
        src = da.from_zarr(prev)
        trim = tuple(slice(0, n - n % 2) if a in yx else slice(None) for a, n in enumerate(src.shape))
        even = tuple(max(2, c - c % 2) if a in yx else c for a, c in enumerate(chunks))  # coarsen needs even chunks
        src = src[trim].rechunk(even)
        small = da.coarsen(mean_of_blocks, src, {a: 2 for a in yx})
        z = _create_level(root, level, small.shape, chunks, src.dtype)
        with dask.config.set(scheduler="threads"):
            da.store(small.rechunk(tuple(min(c, n) for c, n in zip(chunks, small.shape))), z, lock=False)
        scale = [float(2 ** level) if a in yx else 1.0 for a in range(len(names_disk))]
        datasets.append({"path": str(level), "coordinateTransformations": [{"type": "scale", "scale": scale}]})
        prev = z
    if level:
        root.attrs.update(attrs)


# ------------------------------------------------------------------ public writer
def _cancellable(progress, stop):
    """A progress callback that also stops the write: raising here abandons it atomically."""

    def report(done, total):
        if stop():
            raise Cancelled("Saving was cancelled: nothing was written.")
        if progress is not None:
            progress(done, total)

    return report


def check_writable(shape, dtype, path, rgb: bool | None = None) -> str:
    """Raise :class:`ImageFileError` now if an image of ``shape``/``dtype`` cannot be written to ``path`` (an
    :class:`OutputError` if ``path`` is a folder an OME-Zarr save must not replace); returns the format.

    Lets callers refuse before spending time on deblurring.
    """
    fmt = output_format(path)
    shape = tuple(shape)
    n_stack, rgb = _plane_layout(shape, rgb)
    if np.dtype(dtype).kind not in "uif":  # bool is "b"
        raise ImageFileError(f"cannot write {np.dtype(dtype)} pixels")
    if fmt in ("png", "jpg"):
        _check_raster(shape, dtype, fmt, rgb)
    elif fmt == "ome.zarr":
        _ngff_axes(len(shape), n_stack, rgb, None)
        if os.path.lexists(path):
            _check_replaceable(Path(path))
    return fmt


def _output_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise OutputError(f"an image is saved to a file path (str or pathlib.Path); got {path!r}")
    return Path(path)


def _check_pixels(shape, path: Path) -> None:
    """An image with no pixels would be an empty or broken file (PNG, TIFF and zarr writers fail on it late)."""
    if len(shape) < 2 or any(int(n) == 0 for n in shape):
        raise ImageFileError(f"{path.name}: an image of shape {tuple(shape)} has no pixels to write")


def save_image_streaming(array, path, *, rgb: bool | None = None, progress: Callable[[int, int], None] | None = None,
                         client=None, workers: int | None = None, axes: str | None = None,
                         chunk: int | None = None, cancel=None) -> Path:
    """Write a numpy or (lazy) dask image to ``path`` atomically; dask arrays are computed chunk by chunk.

    The format follows the suffix: ``.png``, ``.jpg``/``.jpeg``, ``.tif``/``.tiff`` (tiled, BigTIFF when
    needed) or ``.zarr``/``.ome.zarr`` (OME-Zarr, zarr v2, NGFF 0.4, with a pyramid of 2x2 means down to
    one chunk).  ``rgb``: whether the last axis holds colour channels (default: when it has at most 8 entries).
    ``progress(done, total)`` is called after each chunk; ``client``: a ``dask.distributed`` client computing
    the chunks on its workers (else ``workers`` local threads, default one per CPU).  ``axes`` (OME-Zarr): axis
    names in the array's order, e.g. ``"zyxc"``; ``chunk`` (OME-Zarr): chunk size in Y and X (default the dask
    chunks', or 1024).  ``cancel`` (a :class:`~napari_lfdeblur.CancelToken` or a function returning True) stops
    after the chunk in progress with :class:`~napari_lfdeblur.Cancelled`.  Nothing appears under ``path``
    unless the write completes.
    """
    path = _output_path(path)
    check_function(progress, "progress", "progress(done, total)", where="save_image_streaming", error=ImageFileError)
    if cancel is not None:
        progress = _cancellable(progress, cancel_check(cancel, where="save_image_streaming"))
    fmt = output_format(path)
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        array = np.asarray(array)
    _check_pixels(array.shape, path)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, numbers.Integral) or chunk < 16):
        raise ImageFileError(f"chunk must be a whole number of pixels, 16 or more (default 1024); got {chunk!r}")
    if not _is_dask(array) and not isinstance(array, np.ndarray):  # zarr, h5py, ...: read chunk by chunk
        import dask.array as da

        native = getattr(array, "chunks", None)
        native = tuple(native) if isinstance(native, tuple) and len(native) == len(array.shape) else None
        array = da.from_array(array, chunks=native_multiple_chunks(array.shape, native, _plane_layout(
            array.shape, rgb)[1]))
    if fmt in ("png", "jpg"):
        _write_raster(array, path, fmt, rgb, progress, client, workers)
    elif fmt == "tif":
        _write_tiff(array, path, rgb, progress, client, workers)
    else:
        _write_zarr(array, path, rgb, progress, client, workers, axes, chunk)
    return path


def save_image(path, img: np.ndarray) -> Path:
    """Save an image atomically: float images in [0, 1] as 8-bit PNG/JPEG or 16-bit TIFF, integer images as
    they are; (H, W, 1) is written as grey.  The format follows the suffix (see :func:`save_image_streaming`).

    Floats go by :func:`~napari_lfdeblur.io.pixels.to_stored`: NaN and values on another scale (0-255, ...)
    raise :class:`ImageFileError`, a small overshoot of [0, 1] is clipped with a warning; OME-Zarr keeps floats
    as they are."""
    path = _output_path(path)
    fmt = output_format(path)
    a = np.asarray(img)
    _check_pixels(a.shape, path)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype.kind == "f" and fmt != "ome.zarr":
        a = to_stored(a, np.uint16 if fmt == "tif" else np.uint8, what=str(path))
    return save_image_streaming(a, path, rgb=a.ndim == 3)
