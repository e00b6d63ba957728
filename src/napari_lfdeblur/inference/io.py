"""Reading and writing images of any size for ``deblur``: in memory when small, chunk by chunk when big.

Reading (:func:`open_image`):

- PNG and JPEG: numpy (``imageio``);
- TIFF: numpy when the image (first series, full resolution) holds at most
  :data:`LAZY_BYTES`, else a lazy dask array reading through tifffile's zarr
  store (``tifffile.imread(path, aszarr=True)``) one chunk at a time.  The
  dask graph holds the file *path*, not an open file, so it can be sent to
  ``dask.distributed`` workers (tifffile's store itself cannot be pickled);
- ``.zarr`` folders (zarr v2 or v3): a single array, or an OME-Zarr
  multiscale group, of which the full-resolution level (the first dataset,
  ``0``) is read; an OME channel axis of 1, 3 or 4 channels is moved last
  (``(c, y, x)`` on disk -> ``(y, x, c)``, the layout ``deblur`` expects).

Writing (:func:`save_image_streaming`), always to a temporary name beside the
final one, renamed into place only when complete (an interrupted run leaves no
half-written file or folder under the final name):

- PNG / JPEG: the whole image in memory (these formats are not tiled);
- TIFF: numpy arrays directly; dask arrays tile by tile (256 x 256 tiles,
  BigTIFF when needed), computing one row of dask chunks at a time, so memory
  stays flat however large the image is;
- OME-Zarr (``.ome.zarr`` / ``.zarr``): zarr v2 with OME-NGFF 0.4
  ``multiscales`` metadata: the image, then a pyramid of levels halved in y
  and x (2x2 means) down to one chunk, built from the written levels a few
  chunks at a time, which napari (built-in zarr reader or
  napari-ome-zarr), ome-zarr-py, Fiji and vizarr open.  Axes follow NGFF
  order: stack axes, then ``c`` for colour images, then ``y``, ``x``; colour
  images get ``omero`` channel colours (red, green, blue) so viewers compose
  them as RGB.  Dask arrays are written chunk by chunk.

Dask arrays are computed one chunk at a time, a few chunks in flight: on local
threads, or on a ``dask.distributed`` cluster when a ``client`` is given (the
chunks are computed on the workers and written here, by the client).
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import atomic_path, is_place_error, output_error, writing_failed
from ..cancel import Cancelled, cancel_check
from ..errors import DeblurInputError

__all__ = [
    "IMAGE_SUFFIXES",
    "LAZY_BYTES",
    "ImageInfo",
    "image_format",
    "is_image_path",
    "open_image",
    "open_image_info",
    "save_image_streaming",
    "check_writable",
    "output_format",
    "iter_computed_blocks",
    "atomic_dir",
    "picklable_model",
]

#: TIFFs larger than this (uncompressed bytes) open lazily when ``lazy=None``.
LAZY_BYTES = 256 * 2**20
#: chunk size (Y and X) of lazily read images and of written OME-Zarr arrays
CHUNK = 1024
#: TIFF tile size of streamed TIFFs
TIFF_TILE = 256
# above this many bytes a TIFF is written as BigTIFF (classic TIFF offsets are 32-bit)
_BIGTIFF_BYTES = 2**32 - 2**25

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_FORMATS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".tif": "tif", ".tiff": "tif", ".zarr": "ome.zarr"}


# ------------------------------------------------------------------ formats
def image_format(path: str | os.PathLike) -> str | None:
    """``"png"``, ``"jpg"``, ``"tif"`` or ``"ome.zarr"`` from a path's suffix (or a zarr folder); else None."""
    p = Path(path)
    fmt = _FORMATS.get(p.suffix.lower())
    if fmt is None and p.is_dir() and any((p / m).exists() for m in ("zarr.json", ".zgroup", ".zarray")):
        fmt = "ome.zarr"
    return fmt


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names something :func:`open_image` reads (by suffix, or a zarr folder)."""
    return image_format(path) is not None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`open_image_info` learnt about an image besides its pixels."""

    path: Path
    format: str  # png, jpg, tif, ome.zarr
    rgb: bool | None  # whether the last axis holds colour channels (None: unknown, let deblur guess)
    lazy: bool
    axes: str | None = None  # e.g. "yxc", "zyx" (our layout: channels last), when the file says

    @property
    def stem(self) -> str:
        return _stem(self.path)


# ------------------------------------------------------------------ reading
def _guess_rgb(shape) -> bool:
    from .normalize import channels_last

    return channels_last(shape)


class _TiffArray:
    """An array-like over a TIFF file's first series (full resolution), read through tifffile's zarr store.

    It pickles as its path (the open store stays behind), so dask graphs built
    on it can run on ``dask.distributed`` workers that see the same file.
    """

    def __init__(self, path, shape, dtype):
        import threading

        self.path = str(path)
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)
        self._z = None
        self._lock = threading.Lock()

    def _array(self):
        with self._lock:
            if self._z is None:
                import tifffile
                import zarr

                store = tifffile.imread(self.path, aszarr=True, series=0, level=0)
                self._z = zarr.open(store, mode="r")
            return self._z

    def __getitem__(self, key):
        return np.asarray(self._array()[key])

    def __getstate__(self):
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype.str}

    def __setstate__(self, state):
        self.__init__(state["path"], state["shape"], state["dtype"])


def _read_failed(path: Path, e: Exception) -> DeblurInputError:
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
    if len(first) > 160:
        first = first[:157] + "..."
    return DeblurInputError(f"cannot read {path} as an image ({first}); give a PNG, JPEG, TIFF or zarr image")


def _from_array_lazily(a, name: str, chunks):
    import dask.array as da

    return da.from_array(a, chunks=chunks, name=name, lock=False, asarray=False,
                         meta=np.empty((0,) * len(a.shape), dtype=a.dtype))


def _open_tiff(path: Path, lazy):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes
            nbytes = math.prod(shape) * dtype.itemsize
            if lazy is None:
                lazy = nbytes > LAZY_BYTES
            arr = None if lazy else series.asarray()
    except DeblurInputError:
        raise
    except Exception as e:
        raise _read_failed(path, e) from e
    axes = axes.upper()
    # samples per pixel, or a last axis too thin to be an image's width (tifffile calls a (Y, X, 2) array QYX)
    rgb = axes.endswith("S") or _guess_rgb(shape)
    separate = axes.endswith("SYX") and shape[-3] in (3, 4)  # planar RGB
    our_axes = "".join("c" if a == "S" else a.lower() for a in axes)
    if not lazy:
        if separate:
            arr, rgb = np.moveaxis(arr, -3, -1), True
            our_axes = our_axes[:-3] + our_axes[-2:] + "c"
        return arr, rgb, our_axes, False
    import dask.array as da
    from dask.base import tokenize

    src = _TiffArray(path, shape, dtype)
    try:
        native = src._array().chunks
    except Exception as e:
        raise _read_failed(path, e) from e
    chunks = _native_multiple_chunks(shape, native, rgb or separate, separate)
    st = path.stat()
    arr = _from_array_lazily(src, "tiff-" + tokenize(str(path.resolve()), st.st_mtime_ns, st.st_size), chunks)
    if separate:
        arr, rgb = da.moveaxis(arr, -3, -1), True
        our_axes = our_axes[:-3] + our_axes[-2:] + "c"
    return arr, rgb, our_axes, True


def _native_multiple_chunks(shape, native, has_channels: bool, separate: bool = False, target: int = CHUNK):
    """Y/X chunks of about ``target`` made of whole native chunks; stack axes 1; channels whole."""
    nd = len(shape)
    if separate:
        y_ax, c_ax = nd - 2, nd - 3
    elif has_channels:
        y_ax, c_ax = nd - 3, nd - 1
    else:
        y_ax, c_ax = nd - 2, None
    out = []
    for ax, size in enumerate(shape):
        nat = native[ax] if native is not None else size
        if ax == c_ax:
            out.append(size)
        elif ax in (y_ax, y_ax + 1):
            nat = max(1, nat)
            if nat >= size:  # one chunk (or strips) spanning the axis
                out.append(min(size, target))
            elif nat > target:  # big native tiles: one each
                out.append(nat)
            else:  # whole native tiles adding up to about target
                out.append(min(size, max(1, round(target / nat)) * nat))
        else:
            out.append(1)
    return tuple(out)


def _ome_multiscales(attrs) -> list | None:
    attrs = dict(attrs)
    if "ome" in attrs and isinstance(attrs["ome"], dict):  # NGFF 0.5 (zarr v3)
        attrs = attrs["ome"]
    ms = attrs.get("multiscales")
    return ms if isinstance(ms, list) and ms else None


def _open_zarr(path: Path):
    import dask.array as da
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as e:
        raise _read_failed(path, e) from e
    axes = None
    if isinstance(node, zarr.Group):
        ms = _ome_multiscales(node.attrs)
        if ms is not None:
            datasets = ms[0].get("datasets") or [{"path": "0"}]
            key = str(datasets[0].get("path", "0"))
            ax = ms[0].get("axes")
            if ax:
                axes = "".join((a["name"] if isinstance(a, dict) else str(a))[:1].lower() for a in ax)
        else:
            keys = sorted(node.array_keys())
            if "0" in keys:
                key = "0"
            elif len(keys) == 1:
                key = keys[0]
            else:
                raise DeblurInputError(
                    f"{path} is a zarr group with arrays {keys or 'none'} and no OME-Zarr 'multiscales' "
                    "metadata: give the array's own folder (e.g. path/to/group.zarr/name)."
                )
        try:
            node = node[key]
        except KeyError as e:
            raise DeblurInputError(f"{path}: the OME-Zarr level {key!r} is missing") from e
    if not isinstance(node, zarr.Array):
        raise DeblurInputError(f"{path} does not hold a zarr array")
    arr = da.from_zarr(node)
    if axes is not None and len(axes) != arr.ndim:
        axes = None
    rgb = None
    if axes is not None and "c" in axes:
        c = axes.index("c")
        if arr.shape[c] in (1, 3, 4):
            arr = da.moveaxis(arr, c, -1)
            axes = axes[:c] + axes[c + 1:] + "c"
            rgb = True
        else:  # many channels: greyscale planes of a stack
            rgb = False
    elif axes is not None:
        rgb = False
    return arr, rgb, axes, True


def _open_raster(path: Path):
    import imageio.v3 as iio

    try:
        arr = np.asarray(iio.imread(path))
    except Exception as e:
        raise _read_failed(path, e) from e
    if arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha: make it RGBA so alpha passes through
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=-1), arr[..., 1:]], axis=-1)
    rgb = arr.ndim == 3
    return arr, rgb, "yxc" if rgb else "yx", False


def open_image_info(path, lazy: bool | None = None) -> tuple:
    """Like :func:`open_image`, returning ``(array, ImageInfo)``."""
    import dask.array as da

    path = Path(path)
    if not path.exists():
        raise DeblurInputError(f"{path} does not exist")
    fmt = image_format(path)
    if fmt is None:
        raise DeblurInputError(f"{path.name}: not an image this reads (PNG, JPEG, TIFF or a .zarr folder)")
    if fmt == "ome.zarr":
        arr, rgb, axes, is_lazy = _open_zarr(path)
        if lazy is False:
            arr, is_lazy = np.asarray(arr.compute()), False
    elif fmt == "tif":
        arr, rgb, axes, is_lazy = _open_tiff(path, lazy)
    else:
        arr, rgb, axes, is_lazy = _open_raster(path)
        if lazy:
            chunks = _native_multiple_chunks(arr.shape, None, rgb)
            arr, is_lazy = da.from_array(arr, chunks=chunks), True
    if arr.ndim < 2 or arr.size == 0:
        raise DeblurInputError(f"{path.name}: image of shape {tuple(arr.shape)} has no pixels to deblur")
    return arr, ImageInfo(path, fmt, rgb, is_lazy, axes)


def open_image(path, lazy: bool | None = None):
    """An image file as numpy (PNG, JPEG, small TIFF) or a lazy dask array (big TIFF, zarr, OME-Zarr).

    ``lazy``: None (default) decides by format and size (TIFFs above
    :data:`LAZY_BYTES` and every zarr store are lazy), True always gives a
    dask array, False always numpy.  Colour comes last: (..., Y, X[, C]).
    Unreadable files raise :class:`~napari_lfdeblur.errors.DeblurInputError`.
    """
    return open_image_info(path, lazy)[0]


# ------------------------------------------------------------------ computing chunks
def _default_workers() -> int:
    """Blocks computed at once locally: one per CPU, divided by the threads torch uses per operation."""
    import sys

    n = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    if torch is not None:
        n //= max(1, torch.get_num_threads())
    return max(1, n)


class _LocalRunner:
    """Computes dask blocks on local threads, each block with the synchronous scheduler."""

    def __init__(self, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.workers = max(1, int(workers or _default_workers()))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="lfdeblur-chunk")

    def submit(self, block):
        return self.pool.submit(block.compute, scheduler="synchronous")

    def cancel(self, futures):
        for f in futures:
            f.cancel()

    def close(self, wait: bool):
        self.pool.shutdown(wait=wait, cancel_futures=True)


class _ClientRunner:
    """Computes dask blocks on a ``dask.distributed`` cluster."""

    def __init__(self, client):
        self.client = client
        try:
            self.workers = max(1, sum(client.nthreads().values()))
        except Exception:
            self.workers = 2

    def submit(self, block):
        return self.client.compute(block)

    def cancel(self, futures):
        with contextlib.suppress(Exception):
            self.client.cancel(list(futures))

    def close(self, wait: bool):
        pass


def iter_computed_blocks(blocks: Iterable, *, client=None, workers: int | None = None,
                         window: int | None = None) -> Iterator:
    """Compute ``(key, dask_array)`` pairs a few at a time; yield ``(key, numpy)`` in the given order.

    At most ``window`` blocks (default: twice the workers) are submitted and
    not yet yielded, so memory holds only those.  Locally the blocks run on
    threads; with a ``dask.distributed`` ``client`` on its workers.  An
    exception (including KeyboardInterrupt) cancels what is still pending.
    """
    runner = _ClientRunner(client) if client is not None else _LocalRunner(workers)
    window = max(1, int(window or 2 * runner.workers))
    pending: deque = deque()
    ok = False
    try:
        it = iter(blocks)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    key, block = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((key, runner.submit(block)))
            if not pending:
                break
            key, fut = pending.popleft()
            result = fut.result()
            yield key, np.asarray(result)
            del result
        ok = True
    finally:
        if not ok:
            runner.cancel(f for _, f in pending)
        runner.close(wait=ok)


# ------------------------------------------------------------------ writing helpers
def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _usual_mode(path: Path) -> None:
    """Temporary files and folders are private (0600/0700); give the result the usual permissions."""
    with contextlib.suppress(OSError):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


@contextlib.contextmanager
def _atomic_file(final: Path):
    with atomic_path(final) as tmp:
        yield tmp
        _usual_mode(Path(tmp))


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike):
    """Yield a temporary folder beside ``final``; rename it to ``final`` only on success (replacing it)."""
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    except OSError as e:  # a read-only or full disk, a file where the folder should be, ...
        raise output_error(final, e) from e
    try:
        yield tmp
        _usual_mode(tmp)
        old = None
        try:
            if final.is_dir() and not final.is_symlink():
                old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
                os.replace(final, old / final.name)
            elif final.exists() or final.is_symlink():
                final.unlink()
            os.replace(tmp, final)
        except OSError as e:
            raise output_error(final, e) from e
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if writing_failed(e, tmp) or (isinstance(e, OSError) and is_place_error(e) and e.filename is not None
                                      and str(e.filename).startswith(str(tmp))):
            raise output_error(final, e) from e
        raise


def _is_dask(a) -> bool:
    try:
        import dask.array as da
    except ImportError:  # pragma: no cover
        return False
    return isinstance(a, da.Array)


def _plane_layout(shape, rgb):
    """(number of leading stack axes, whether the last axis is channels)."""
    rgb = _guess_rgb(shape) if rgb is None else bool(rgb)
    n_plane = 3 if rgb else 2
    if len(shape) < n_plane:
        raise DeblurInputError(f"cannot write an image of shape {tuple(shape)}")
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


def _n_blocks(arr, n_stack: int) -> int:
    return math.prod(arr.shape[:n_stack]) * len(arr.chunks[n_stack]) * len(arr.chunks[n_stack + 1])


def _computed(arr, n_stack, rgb, progress, client, workers):
    """Yield (key, slices, numpy block) in order, reporting progress(done, total)."""
    total = _n_blocks(arr, n_stack)
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
        raise DeblurInputError(f"{name} holds one image, not a stack of shape {shape}: use tif or ome.zarr")
    if rgb and shape[-1] not in (1, 3, 4):
        raise DeblurInputError(f"{name} holds greyscale, RGB or RGBA, not {shape[-1]} channels: use tif or ome.zarr")
    allowed = (np.uint8, np.uint16) if fmt == "png" else (np.uint8,)
    if np.dtype(dtype) not in [np.dtype(t) for t in allowed]:
        raise DeblurInputError(f"{name} cannot hold {np.dtype(dtype)} pixels: use tif or ome.zarr "
                               f"({name} takes {' or '.join(np.dtype(t).name for t in allowed)})")
    if fmt == "jpg" and rgb and shape[-1] == 4:
        raise DeblurInputError("JPEG has no alpha channel: use png, tif or ome.zarr for RGBA images")
    if fmt == "png" and np.dtype(dtype) == np.uint16 and rgb and shape[-1] in (3, 4):
        # Pillow, which writes (and reads) PNG here, has no 16-bit colour mode: refuse before the work
        raise DeblurInputError("16-bit colour PNG is not written here (16-bit greyscale is): use tif or ome.zarr to "
                               "keep the 16 bits, or convert the image to 8-bit first")
    return rgb


def _write_raster(array, path: Path, fmt: str, rgb, progress, client, workers, quality: int = 95):
    import imageio.v3 as iio

    rgb = _check_raster(tuple(array.shape), array.dtype, fmt, rgb)
    a = _to_numpy(array, rgb, progress, client, workers)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    with _atomic_file(path) as tmp:
        if fmt == "jpg":
            iio.imwrite(tmp, a, extension=".jpg", quality=quality)
        else:
            iio.imwrite(tmp, a, extension=".png")


# ------------------------------------------------------------------ TIFF
def _tiff_options(shape, dtype, rgb) -> dict:
    opts = {"photometric": "rgb" if rgb and shape[-1] in (3, 4) else "minisblack"}
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
        with _atomic_file(path) as tmp:
            tifffile.imwrite(tmp, a, **opts)
        if progress:
            progress(1, 1)
        return
    arr, n_stack, rgb = _regular(array, rgb)
    tiles = _tiff_tiles(arr, n_stack, rgb, progress, client, workers, tile)
    with _atomic_file(path) as tmp:
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
        raise DeblurInputError(
            f"OME-Zarr holds at most 2 stack axes (t, z) before y and x; this image has {n_stack}: write tif"
        )
    stack = ["t", "z"][2 - n_stack:] if n_stack else []
    return stack + ["y", "x"] + (["c"] if rgb else [])


_AXIS_TYPES = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
_CHANNEL_COLOURS = ("FF0000", "00FF00", "0000FF", "FFFFFF")
_CHANNEL_LABELS = ("red", "green", "blue", "alpha")


def _ngff_attrs(names_disk: list[str], dtype, name: str, n_channels: int) -> dict:
    axes = []
    for n in names_disk:
        axes.append({"name": n, "type": _AXIS_TYPES[n]})
    attrs = {
        "multiscales": [{
            "version": "0.4",
            "name": name,
            "axes": axes,
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


def _write_zarr(array, path: Path, rgb, progress, client, workers, axes: str | None, chunk: int | None):
    import zarr

    shape, dtype = tuple(array.shape), np.dtype(array.dtype)
    n_stack, rgb = _plane_layout(shape, rgb)
    names = _ngff_axes(len(shape), n_stack, rgb, axes)
    # disk order: NGFF wants t, c, z, y, x (channels before the spatial axes)
    perm = sorted(range(len(shape)), key=lambda i: "tczyx".index(names[i]))
    disk_shape = tuple(shape[p] for p in perm)
    names_disk = [names[p] for p in perm]
    lazy = _is_dask(array)
    if chunk is None:
        chunk = max(array.chunks[n_stack]) if lazy else CHUNK
        chunk = int(min(max(chunk, 256), 4096))
    y_ax, x_ax = n_stack, n_stack + 1  # in our layout
    chunks = tuple(min(chunk, shape[p]) if p in (y_ax, x_ax) else (shape[p] if rgb and p == len(shape) - 1 else 1)
                   for p in perm)
    with atomic_dir(path) as tmp:
        root = zarr.open_group(str(tmp), mode="w", zarr_format=2)
        z = _create_level(root, 0, disk_shape, chunks, dtype)
        root.attrs.update(_ngff_attrs(names_disk, dtype, _stem(path), shape[-1] if rgb else 1))
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
    return path


def _write_pyramid(root, names_disk: list[str], chunks: tuple, chunk: int):
    """Levels 1, 2, ... of an OME-Zarr group: each the previous one halved in y and x (2x2 means, an odd last
    row/column dropped), until a level fits in one chunk, so viewers show a huge image's overview at once.

    Each level is read back from the one just written, a few chunks at a time (memory stays flat), on local
    threads: the files are in this machine's temporary folder, which cluster workers may not see."""
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
        dtype = src.dtype
        small = da.coarsen(np.mean, src.astype(np.float32), {a: 2 for a in yx})
        if dtype.kind in "iu":
            small = da.round(small)
        small = small.astype(dtype)
        z = _create_level(root, level, small.shape, chunks, dtype)
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


def output_format(path: str | os.PathLike) -> str:
    fmt = _FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise DeblurInputError(f"{path}: unknown output type; end the name with .png, .jpg, .tif or .ome.zarr")
    return fmt


def check_writable(shape, dtype, path, rgb: bool | None = None) -> str:
    """Raise DeblurInputError now if an image of ``shape``/``dtype`` cannot be written to ``path``; returns the format.

    Lets callers refuse before spending time on deblurring.
    """
    fmt = output_format(path)
    shape = tuple(shape)
    n_stack, rgb = _plane_layout(shape, rgb)
    if np.dtype(dtype).kind not in "uif" or np.dtype(dtype) == np.bool_:
        raise DeblurInputError(f"cannot write {np.dtype(dtype)} pixels")
    if fmt in ("png", "jpg"):
        _check_raster(shape, dtype, fmt, rgb)
    elif fmt == "ome.zarr":
        _ngff_axes(len(shape), n_stack, rgb, None)
    return fmt


def save_image_streaming(array, path, *, rgb: bool | None = None, progress: Callable[[int, int], None] | None = None,
                         client=None, workers: int | None = None, axes: str | None = None,
                         chunk: int | None = None, cancel=None) -> Path:
    """Write a numpy or (lazy) dask image to ``path`` atomically; dask arrays are computed chunk by chunk.

    The format follows the suffix: ``.png``, ``.jpg``/``.jpeg``, ``.tif``/
    ``.tiff`` or ``.zarr``/``.ome.zarr`` (OME-Zarr, zarr v2, NGFF 0.4).
    ``rgb``: whether the last axis holds colour channels (default: when it has
    3 or 4).  ``progress(done, total)`` is called after each chunk;
    ``client``: a ``dask.distributed`` client computing the chunks on its
    workers (else ``workers`` local threads, default one per CPU).  ``axes``
    (OME-Zarr): axis names in the array's order, e.g. ``"zyxc"``; ``chunk``
    (OME-Zarr): chunk size in Y and X (default the dask chunks', or 1024).
    ``cancel`` (a :class:`~napari_lfdeblur.CancelToken` or a function returning
    True) stops after the chunk in progress with ``DeblurCancelled``.
    Nothing appears under ``path`` unless the write completes.
    """
    path = Path(path)
    if cancel is not None:
        progress = _cancellable(progress, cancel_check(cancel, where="save_image_streaming"))
    fmt = output_format(path)
    if not hasattr(array, "shape") or not hasattr(array, "dtype"):
        array = np.asarray(array)
    if not _is_dask(array) and not isinstance(array, np.ndarray):  # zarr, h5py, ...: read chunk by chunk
        import dask.array as da

        native = getattr(array, "chunks", None)
        native = tuple(native) if isinstance(native, tuple) and len(native) == len(array.shape) else None
        array = da.from_array(array, chunks=_native_multiple_chunks(array.shape, native, _plane_layout(
            array.shape, rgb)[1]))
    if fmt in ("png", "jpg"):
        _write_raster(array, path, fmt, rgb, progress, client, workers)
    elif fmt == "tif":
        _write_tiff(array, path, rgb, progress, client, workers)
    else:
        _write_zarr(array, path, rgb, progress, client, workers, axes, chunk)
    return path


# ------------------------------------------------------------------ models for dask workers
def _rebuild_model(spec, device, dtype):
    return picklable_model(spec, device=device, dtype=dtype)


_PICKLABLE_CLASS = None


def _picklable_class():
    """The class behind :func:`picklable_model`, built on first use (keeps this module free of torch)."""
    global _PICKLABLE_CLASS
    if _PICKLABLE_CLASS is not None:
        return _PICKLABLE_CLASS
    import torch

    class PicklableModel(torch.nn.Module):
        """A network that pickles as ``(spec, device, dtype)`` and is loaded again (once per process)."""

        def __init__(self, spec, device, dtype):
            from .models import get_model

            super().__init__()
            self.spec, self.device_spec, self.dtype_spec = spec, device, dtype
            self.net = get_model(spec, device=device, dtype=dtype)
            self.input_convention = getattr(self.net, "input_convention", "rgb_minus1_1")
            self.device = getattr(self.net, "device", None)
            self.compute_dtype = getattr(self.net, "compute_dtype", None)  # run_network autocasts by it

        def forward(self, x):
            return self.net(x)

        def __reduce__(self):
            return (_rebuild_model, (self.spec, self.device_spec, self.dtype_spec))

    _PICKLABLE_CLASS = PicklableModel
    return PicklableModel


def picklable_model(spec="default", device="auto", dtype=None):
    """A network loaded from a checkpoint path (or ``"default"``) that pickles as that path.

    ``deblur`` puts the network into every dask task; sent to
    ``dask.distributed`` workers, a full DRBNet (47 MB of weights) would
    travel with each one.  This wrapper travels as ``(path, device, dtype)``
    instead and is loaded once per worker process (``get_model`` caches it
    there).  Workers must be able to read the checkpoint at the same path.
    """
    if isinstance(spec, (str, os.PathLike)) and str(spec).strip().lower() != "default":
        spec = str(Path(spec).expanduser().resolve())
    elif not isinstance(spec, str):
        raise TypeError("picklable_model takes a checkpoint path or 'default'")
    return _picklable_class()(spec, device, dtype)
