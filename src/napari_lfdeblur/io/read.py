"""Reading image files: one decoder for whole images, a header probe, and the openers ``deblur`` uses, numpy or
lazy for big TIFFs and zarr (docs/performance.md, "Files of any size from the command line")."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageFileError
from .chunks import native_multiple_chunks
from .formats import describe_formats, image_format, stem
from .pixels import has_channel_axis

__all__ = [
    "LAZY_BYTES",
    "ImageHeader",
    "ImageInfo",
    "image_header",
    "open_image",
    "open_image_info",
    "read_image",
]

#: TIFFs larger than this (uncompressed bytes) open lazily in :func:`open_image` when ``lazy=None``; read at each
#: call, so that ``napari_lfdeblur.io.read.LAZY_BYTES = ...`` changes it
LAZY_BYTES = 256 * 2**20

_TIFF = ("tif",)
# Pillow mode -> the mode it is decoded in (None: as it is); every mode Pillow has
_PIL_DECODE = {
    "1": "L", "L": None, "LA": None, "La": "LA", "P": "RGB", "PA": "RGBA", "RGB": None, "RGBA": None,
    "RGBa": "RGBA", "RGBX": "RGB", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB",
    "I;16": None, "I;16L": None, "I;16B": None, "I;16N": None, "I": None, "F": None,
}
# decoded mode -> (channels, sample type)
_PIL_SAMPLES = {"L": (1, np.uint8), "LA": (2, np.uint8), "RGB": (3, np.uint8), "RGBA": (4, np.uint8),
                "I;16": (1, np.uint16), "I;16L": (1, np.uint16), "I;16B": (1, np.uint16), "I;16N": (1, np.uint16),
                "I": (1, np.uint16), "F": (1, np.float32)}  # "I": 16-bit PNGs in some Pillow versions


def _read_failed(path, e: Exception, when: str = "decode") -> ImageFileError:
    first = next((ln.strip() for ln in str(e).splitlines() if ln.strip()), "")
    if len(first) > 160:
        first = first[:157] + "..."
    return ImageFileError(
        f"Could not {when} the image {path}: {type(e).__name__}{': ' + first if first else ''}. The file looks "
        f"corrupt or truncated, or is not an image ({describe_formats()}); re-export it, or remove it."
    )


def _missing(path) -> ImageFileError:
    return ImageFileError(f"{path} does not exist")


@contextlib.contextmanager
def _reading(path: Path, when: str = "decode"):
    """Failures to read ``path`` as an ImageFileError naming it (Pillow, tifffile and zarr raise many types)."""
    try:
        yield
    except ImageFileError:
        raise
    except FileNotFoundError as e:
        raise _missing(path) from e
    except Exception as e:
        raise _read_failed(path, e, when) from e


def _pil_mode(im) -> str:
    """The mode ``im`` is decoded in."""
    if im.mode not in _PIL_DECODE:
        raise ImageFileError(f"{im.filename or 'the image'} has the pixel format {im.mode!r}, which is not "
                             "decoded here")
    if im.mode == "P" and "transparency" in im.info:
        return "RGBA"
    return _PIL_DECODE[im.mode] or im.mode


def _planar(shape, axes: str) -> bool:
    """Whether a TIFF's samples are stored in planes ahead of Y and X: ``(C, H, W)``."""
    return len(shape) == 3 and (axes.upper().endswith("SYX") or (shape[0] in (1, 3, 4)
                                                                 and shape[-1] not in (1, 3, 4)))


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to its stored samples: (H, W) or (H, W, C), alpha kept.

    uint8 or uint16 (in native byte order) or float32 from Pillow (PNG, JPEG, BMP, WebP, PPM/PGM, the first
    frame of a GIF); palette, CMYK, YCbCr and bilevel images become RGB(A) or grey uint8.  A TIFF's first series
    at full resolution in its own sample type (planar (C, H, W) samples moved last).  Raises
    :class:`~napari_lfdeblur.errors.ImageFileError` for a missing, damaged or unreadable file.
    """
    p = Path(path)
    with _reading(p):
        if image_format(p) in _TIFF:
            import tifffile

            with tifffile.TiffFile(p) as tf:
                s = tf.series[0]
                a, axes = s.asarray(), s.axes
            return np.moveaxis(a, 0, -1) if _planar(a.shape, axes) else a
        from PIL import Image

        with Image.open(p) as im:
            mode = _pil_mode(im)
            decoded = im.convert(mode) if mode != im.mode else im
            decoded.load()
            a = np.asarray(decoded)
        if mode == "I":  # 16-bit samples widened to int32 by Pillow
            if a.size and (a.min() < 0 or a.max() > 65535):
                raise ValueError("32-bit integer samples outside the 16-bit range")
            a = a.astype(np.uint16)
        elif a.dtype.kind == "u" and a.dtype.itemsize == 2:
            a = a.astype(np.uint16, copy=False)  # I;16B: big-endian samples to native
        return a


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says: the shape :func:`read_image` returns, its layout, sample type."""

    path: Path
    shape: tuple[int, ...]  # (H, W) or (H, W, C), channels last as read_image gives them; other for stacks
    axes: str  # "yx", "yxc", or a stack's axes (e.g. "zyx")
    dtype: np.dtype
    frames: int = 1  # frames of an animation (GIF, WebP); read_image decodes the first

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        i = self.axes.index("y")
        return int(self.shape[i]), int(self.shape[i + 1])

    @property
    def channels(self) -> int:
        """Samples per pixel, alpha included (1 for grey)."""
        return int(self.shape[-1]) if self.axes.endswith("c") else 1


def image_header(path: str | os.PathLike) -> ImageHeader:
    """Read only the header of an image file (no pixel decoding: a grid of 225 views reads 225 headers).

    Raises :class:`~napari_lfdeblur.errors.ImageFileError` for a missing or damaged file."""
    p = Path(path)
    with _reading(p, "read the header of"):
        if image_format(p) in _TIFF:
            import tifffile

            with tifffile.TiffFile(p) as tf:
                s = tf.series[0]
                shape, axes, dtype = tuple(int(n) for n in s.shape), s.axes.upper(), np.dtype(s.dtype)
            ours = "".join("c" if a == "S" else a.lower() for a in axes)
            if _planar(shape, axes):
                shape, ours = shape[1:] + shape[:1], "yxc"
            return ImageHeader(p, shape, ours, dtype)
        from PIL import Image

        with Image.open(p) as im:
            mode, (w, h) = _pil_mode(im), im.size
            frames = int(getattr(im, "n_frames", 1))
        c, dt = _PIL_SAMPLES[mode]
        return ImageHeader(p, (h, w, c) if c > 1 else (h, w), "yxc" if c > 1 else "yx", np.dtype(dt), frames)


# ------------------------------------------------------------------ images for deblur, lazily when big
@dataclass(frozen=True)
class ImageInfo:
    """What :func:`open_image_info` learnt about an image besides its pixels."""

    path: Path
    format: str  # png, jpg, tif, ..., ome.zarr (see napari_lfdeblur.io.formats)
    rgb: bool | None  # whether the last axis holds colour channels (None: unknown, let deblur guess)
    lazy: bool
    axes: str | None = None  # e.g. "yxc", "zyx" (our layout: channels last), when the file says

    @property
    def stem(self) -> str:
        return stem(self.path)


class _TiffArray:
    """An array-like over a TIFF's first series (full resolution) through tifffile's zarr store; it pickles as its
    path, so that dask graphs on it run on ``dask.distributed`` workers that see the same file."""

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
        # read when a chunk is computed, long after opening: a damaged tile says which file, as reading it all would
        with _reading(Path(self.path)):
            return np.asarray(self._array()[key])

    def __getstate__(self):
        return {"path": self.path, "shape": self.shape, "dtype": self.dtype.str}

    def __setstate__(self, state):
        self.__init__(state["path"], state["shape"], state["dtype"])


def _open_tiff(path: Path, lazy):
    import tifffile

    with _reading(path), tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes.upper()
        lazy = math.prod(shape) * dtype.itemsize > LAZY_BYTES if lazy is None else bool(lazy)
        arr = None if lazy else series.asarray()
    # samples per pixel, or a last axis too thin to be an image's width (tifffile calls a (Y, X, 2) array QYX)
    rgb = axes.endswith("S") or has_channel_axis(shape)
    separate = axes.endswith("SYX") and shape[-3] in (3, 4)  # planar RGB
    our_axes = "".join("c" if a == "S" else a.lower() for a in axes)
    if arr is None:
        import dask.array as da
        from dask.base import tokenize

        src = _TiffArray(path, shape, dtype)
        with _reading(path):
            native = src._array().chunks
        st = path.stat()
        arr = da.from_array(src, chunks=native_multiple_chunks(shape, native, rgb or separate, separate),
                            name="tiff-" + tokenize(str(path.resolve()), st.st_mtime_ns, st.st_size), lock=False,
                            asarray=False, meta=np.empty((0,) * len(shape), dtype=dtype))
    if separate:
        arr, rgb = np.moveaxis(arr, -3, -1), True
        our_axes = our_axes[:-3] + our_axes[-2:] + "c"
    return arr, rgb, our_axes, lazy


def _ome_multiscales(attrs) -> list | None:
    attrs = dict(attrs)
    if "ome" in attrs and isinstance(attrs["ome"], dict):  # NGFF 0.5 (zarr v3)
        attrs = attrs["ome"]
    ms = attrs.get("multiscales")
    return ms if isinstance(ms, list) and ms else None


def _zarr_keys(node, path: Path, levels: bool) -> tuple[list, str | None]:
    """(the keys of the arrays to read, None for the node itself; the OME axes or None) of a zarr node."""
    import zarr

    if not isinstance(node, zarr.Group):
        return [None], None
    ms = _ome_multiscales(node.attrs)
    if ms is not None:
        datasets = ms[0].get("datasets") or [{"path": "0"}]
        keys = [str(d.get("path", "0")) for d in datasets][: None if levels else 1]
        ax = ms[0].get("axes")
        axes = "".join((a["name"] if isinstance(a, dict) else str(a))[:1].lower() for a in ax) if ax else None
        return keys, axes
    names = sorted(node.array_keys())
    if "0" in names:
        return ["0"], None
    if len(names) == 1:
        return names, None
    raise ImageFileError(
        f"{path} is a zarr group with arrays {names or 'none'} and no OME-Zarr 'multiscales' "
        "metadata: give the array's own folder (e.g. path/to/group.zarr/name)."
    )


def _channels_moved_last(arrays: list, axes: str | None) -> tuple[list, bool | None, str | None]:
    """(arrays, rgb, axes) with an OME channel axis of 1, 3 or 4 channels moved last (more: grey planes)."""
    import dask.array as da

    if axes is None or len(axes) != arrays[0].ndim:
        return arrays, None, None
    if "c" not in axes:
        return arrays, False, axes
    c = axes.index("c")
    if arrays[0].shape[c] not in (1, 3, 4):  # many channels: greyscale planes of a stack
        return arrays, False, axes
    return [da.moveaxis(a, c, -1) for a in arrays], True, axes[:c] + axes[c + 1:] + "c"


def _open_zarr(path: Path, levels: bool = False):
    """(array, rgb, axes, lazy) of a zarr store's full resolution; with ``levels``, (list of every OME-Zarr
    level, finest first, ...): the pyramid a viewer shows."""
    import dask.array as da
    import zarr

    with _reading(path):
        node = zarr.open(str(path), mode="r")
    keys, axes = _zarr_keys(node, path, levels)
    arrays = []
    for key in keys:
        try:
            level = node if key is None else node[key]
        except KeyError as e:
            raise ImageFileError(f"{path}: the OME-Zarr level {key!r} is missing") from e
        if not isinstance(level, zarr.Array):
            raise ImageFileError(f"{path} does not hold a zarr array")
        arrays.append(da.from_zarr(level))
    arrays, rgb, axes = _channels_moved_last(arrays, axes)
    return (arrays if levels else arrays[0]), rgb, axes, True


def is_ome_zarr_image(path) -> bool:
    """Whether ``path`` is a zarr group with OME-Zarr ``multiscales`` metadata (an image, perhaps a pyramid)."""
    path = Path(path)
    if not path.is_dir() or image_format(path) != "ome.zarr":
        return False
    try:
        import zarr

        node = zarr.open(str(path), mode="r")
    except Exception:  # noqa: BLE001 - unreadable: not an image this opens
        return False
    return isinstance(node, zarr.Group) and _ome_multiscales(node.attrs) is not None


def open_image_levels(path) -> tuple[list, ImageInfo]:
    """Every resolution level of an image, finest first (one for anything but an OME-Zarr pyramid), lazily
    for zarr: what a viewer shows of a saved result."""
    path = Path(path)
    if image_format(path) == "ome.zarr" and path.exists():
        arrays, rgb, axes, _ = _open_zarr(path, levels=True)
        if arrays[0].ndim < 2 or arrays[0].size == 0:
            raise ImageFileError(f"{path.name}: image of shape {tuple(arrays[0].shape)} has no pixels")
        return arrays, ImageInfo(path, "ome.zarr", rgb, True, axes)
    arr, info = open_image_info(path)
    return [arr], info


def _open_raster(path: Path):
    arr = read_image(path)
    if arr.ndim == 3 and arr.shape[-1] == 2:  # grey + alpha: make it RGBA so alpha passes through
        arr = np.concatenate([np.repeat(arr[..., :1], 3, axis=-1), arr[..., 1:]], axis=-1)
    rgb = arr.ndim == 3
    return arr, rgb, "yxc" if rgb else "yx", False


def open_image_info(path, lazy: bool | None = None) -> tuple:
    """Like :func:`open_image`, returning ``(array, ImageInfo)``."""
    import dask.array as da

    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise ImageFileError(f"an image is opened from a file path (str or pathlib.Path); got {path!r}")
    path = Path(path)
    if not path.exists():
        raise _missing(path)
    fmt = image_format(path)
    if fmt is None:
        raise ImageFileError(f"{path.name}: not an image this reads ({describe_formats()} folder)")
    if fmt == "ome.zarr":
        arr, rgb, axes, is_lazy = _open_zarr(path)
        if lazy is False:
            arr, is_lazy = np.asarray(arr.compute()), False
    elif fmt in _TIFF:
        arr, rgb, axes, is_lazy = _open_tiff(path, lazy)
    else:
        arr, rgb, axes, is_lazy = _open_raster(path)
        if lazy:
            chunks = native_multiple_chunks(arr.shape, None, rgb)
            arr, is_lazy = da.from_array(arr, chunks=chunks), True
    if arr.ndim < 2 or arr.size == 0:
        raise ImageFileError(f"{path.name}: image of shape {tuple(arr.shape)} has no pixels to deblur")
    return arr, ImageInfo(path, fmt, rgb, is_lazy, axes)


def open_image(path, lazy: bool | None = None):
    """An image file as numpy (PNG, JPEG, small TIFF, ...) or a lazy dask array (big TIFF, zarr, OME-Zarr).

    ``lazy``: None (default) decides by format and size (TIFFs above ``napari_lfdeblur.io.read.LAZY_BYTES``,
    their first series at full resolution, and every zarr store are lazy), True always gives a dask array,
    False always numpy.  Colour comes last: (..., Y, X[, C]); an OME-Zarr's channel axis of 1, 3 or 4 channels
    is moved last; a grey + alpha PNG, WebP, ... becomes RGBA so that alpha passes through ``deblur``.  A zarr folder is
    an array, or an OME-Zarr group of which the first dataset (full resolution) is read.  Unreadable files raise
    :class:`~napari_lfdeblur.errors.ImageFileError`.
    """
    return open_image_info(path, lazy)[0]
