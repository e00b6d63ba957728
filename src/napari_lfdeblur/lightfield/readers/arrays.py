"""Light fields stored as one array: numpy/dask arrays, .npy/.npz, TIFF, Zarr, HDF5, their axes in any order
(``axes=``).  Zarr, HDF5 and .npy (memory-mapped) stay lazy, one dask chunk per view, converted inside each chunk;
TIFF and .npz are read at once."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ...errors import LightFieldError
from ..core import LightField, _check_views, _is_dask, check_scalable
from ._common import apply_scale

ARRAY_SUFFIXES = (".npy", ".npz", ".tif", ".tiff", ".zarr", ".h5", ".hdf5", ".he5")
_VIEW_LETTERS = "VUYX"
# lazy float arrays up to this size are read once at open time to find their missing (all-NaN) views
_SCAN_BYTES = 256 * 2**20


def is_zarr_path(path: Path) -> bool:
    if path.suffix.lower() == ".zarr":
        return True
    return path.is_dir() and any((path / m).exists() for m in ("zarr.json", ".zgroup", ".zarray"))


def _pick(found: dict, key, path: Path, kind: str):
    """The array named ``key`` among ``found`` ({name: (array, shape)}), or the only one."""
    if key is not None:
        if key not in found:
            names = ", ".join(sorted(found)) or "none"
            raise LightFieldError(f"No {kind} named {key!r} in {path}; it has: {names}.")
        return found[key][0], key
    if not found:
        raise LightFieldError(f"{path} holds no {kind}s.")
    if len(found) > 1:
        listing = ", ".join(f"{k} {tuple(v[1])}" for k, v in sorted(found.items()))
        raise LightFieldError(f"{path} holds several {kind}s ({listing}); choose one with key='NAME'.")
    ((name, (arr, _)),) = found.items()
    return arr, name


def _open_zarr(path: Path, key):
    import zarr

    node = zarr.open(str(path), mode="r")
    if hasattr(node, "members"):  # a group: collect its arrays at any depth
        found = {name: (a, a.shape) for name, a in node.members(max_depth=None)  # type: ignore[union-attr]
                 if hasattr(a, "dtype")}
        return _pick(found, key, path, "zarr array")
    if key is not None:
        raise LightFieldError(f"{path} is a single zarr array; key={key!r} does not apply.")
    return node, None


def _open_h5(path: Path, key):
    import h5py

    f = h5py.File(path, "r")  # stays open: the lazy dask array reads from it
    found = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found[name] = (obj, obj.shape)

    f.visititems(visit)
    return _pick(found, key, path, "HDF5 dataset")


def _open_file(path: Path, key, lazy: bool):
    """(array-like, key used, lazy?) for an array file."""
    suffix = path.suffix.lower()
    if is_zarr_path(path):
        arr, key = _open_zarr(path, key)
        return arr, key, True
    if suffix in (".h5", ".hdf5", ".he5"):
        arr, key = _open_h5(path, key)
        return arr, key, True
    if suffix == ".npy":
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise LightFieldError(f"{path.name} is not a .npy file (no NumPy header); was it saved with np.save?")
        arr = np.load(path, mmap_mode="r" if lazy else None, allow_pickle=False)
        return arr, None, lazy
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            found = {k: (z[k], z[k].shape) for k in z.files}
        arr, key = _pick(found, key, path, "array")
        return arr, key, False
    if suffix in (".tif", ".tiff"):
        import tifffile

        return tifffile.imread(path), None, False
    raise LightFieldError(f"{path.name}: unknown array file type {suffix!r}; use .npy, .npz, .tif, .zarr or .h5.")


def _default_axes(shape: tuple) -> str:
    """``"VUYX"`` for 4D, ``"VUYXC"`` for 5D; other arrays, and ones whose last axis says otherwise, are refused."""
    ndim = len(shape)
    if ndim == 3:
        raise LightFieldError(
            f"A 3D array {shape} is not a light field (it is one image or a plain stack). A light field "
            "is 4D (V, U, Y, X) or 5D (V, U, Y, X, C); reshape a stack of N = V*U views to "
            "(V, U, Y, X[, C]), or pass axes= for another order."
        )
    if ndim == 4:
        if shape[-1] in (3, 4):
            raise LightFieldError(
                f"The 4D array {shape} ends in {shape[-1]}, which looks like colour channels of a stack of "
                "views rather than a greyscale light field (V, U, Y, X). Reshape it to (V, U, Y, X, C), "
                "or pass axes='VUYX' if it really is greyscale."
            )
        return "VUYX"
    if ndim == 5:
        if shape[-1] > 4:
            raise LightFieldError(
                f"The 5D array {shape} has {shape[-1]} entries on its last axis, too many for channels; "
                "pass axes= to say its order (e.g. axes='VUCYX')."
            )
        return "VUYXC"
    raise LightFieldError(
        f"A {ndim}D array {shape} is not a light field: expected 4D (V, U, Y, X) or 5D (V, U, Y, X, C)."
    )


def _parse_axes(axes, shape: tuple) -> str:
    """The array's axis letters, upper case: ``axes`` checked against ``shape``, or the default."""
    if axes is None:
        return _default_axes(shape)
    ndim = len(shape)
    if not isinstance(axes, str):
        raise LightFieldError(f"axes must be a string like 'VUYXC', got {axes!r}.")
    ax = axes.upper()
    if len(ax) != ndim and ndim not in (4, 5):
        what = "one image or a plain stack" if ndim == 3 else "one image" if ndim == 2 else "no light field"
        raise LightFieldError(
            f"The {ndim}D array {shape} is not a light field (it is {what}): a light field is a grid of views, "
            f"4D (V, U, Y, X) or 5D (V, U, Y, X, C), and axes={axes!r} names {len(ax)} axes. Open a light field "
            "(a folder of views, an ESLF or lenslet image, an array file), or reshape a stack of V*U views to "
            "(V, U, Y, X[, C])."
        )
    if len(ax) != ndim:
        raise LightFieldError(f"axes={axes!r} has {len(ax)} letters but the array is {ndim}D {shape}.")
    if len(set(ax)) != len(ax) or not set(ax) <= set("VUYXC") or not set(_VIEW_LETTERS) <= set(ax):
        raise LightFieldError(
            f"axes={axes!r}: use each of V, U, Y, X once, plus C for colour (e.g. 'VUYXC', 'UVYX', 'YXVUC')."
        )
    return ax


def _present_views(block, what, block_info=None):
    """(V', U', 1, 1, 1) flags of the views of a chunk that hold data; raises by the value rule."""
    origin = (0, 0) if block_info is None else tuple(lo for lo, _ in block_info[0]["array-location"][:2])
    return _check_views(block, None, what, origin=origin)[:, :, None, None, None]


def _scan_views(d, what: str) -> np.ndarray:
    """Check every view of the lazy float array ``d`` (one read) and return its view mask."""
    flags = d.map_blocks(
        _present_views, what, dtype=bool, meta=np.empty((0,) * 5, bool),
        chunks=d.chunks[:2] + tuple((1,) * len(c) for c in d.chunks[2:]),
    )
    # (only arrays opened here are scanned, and from_array gives them one chunk per whole view)
    return np.asarray(flags.compute())[:, :, 0, 0, 0]


def read_array(
    source,
    axes: str | None = None,
    key: str | None = None,
    scale=None,
    lazy: bool = True,
) -> LightField:
    """Read a light field held in one array or array file.

    Parameters
    ----------
    source
        A numpy/dask/zarr/h5py array, or a path to ``.npy``, ``.npz``,
        ``.tif``/``.tiff``, ``.zarr`` (array or group) or ``.h5``/``.hdf5``.
    axes
        Axis order of the stored array, letters V, U, Y, X and optionally C
        (e.g. ``"UVYX"``, ``"YXVUC"``).  Default ``"VUYX"`` for 4D,
        ``"VUYXC"`` for 5D.
    key
        Array inside a zarr group, HDF5 file or .npz; optional when there is
        only one.
    scale
        None: automatic (uint8, uint16, bool, float already in [0, 1]).  A
        number: full-scale value (e.g. 4095 for 12-bit data).  A (low, high)
        pair: mapped to [0, 1].  ``"minmax"``: the array's own range (reads
        all of it once).  Explicit scales clip to [0, 1].
    lazy
        True (default): zarr, HDF5 and .npy stay lazy (one dask chunk per
        view).  Dask inputs always stay lazy; numpy inputs are converted now.

    Returns
    -------
    LightField
        (V, U, Y, X, C) float32 in [0, 1]; greyscale keeps C = 1.
    """
    arr, is_lazy, name, meta = _open_source(source, key, lazy)
    shape = tuple(int(s) for s in arr.shape)
    ax = _parse_axes(axes, shape)
    dtype = np.dtype(arr.dtype)
    meta["source_dtype"] = str(dtype)
    meta["axes"] = ax
    _check_scale(scale, dtype)
    if is_lazy:
        return _lazy_lightfield(arr, ax, scale, name, meta)
    a = np.transpose(np.asarray(arr), [ax.index(c) for c in "VUYXC" if c in ax])
    if "C" not in ax:
        a = a[..., None]
    if isinstance(scale, str):
        scale = _minmax(np.nanmin(a), np.nanmax(a))
    if scale is not None:
        meta["scale"] = scale
        a = apply_scale(a, scale)
    # LightField applies the value rule; all-NaN views (a saved incomplete light field) are missing views
    return LightField(data=np.ascontiguousarray(a), metadata=meta)


def _open_source(source, key, lazy: bool):
    """(the array, whether it stays lazy, its dask name or None, the metadata so far) of a path or an array."""
    from dask.base import tokenize

    meta: dict = {"format": "array", "angular_spacing": None, "disparity_range": None}
    if not isinstance(source, (str, os.PathLike)):
        arr = source
        if not (hasattr(arr, "shape") and hasattr(arr, "dtype") and hasattr(arr, "__getitem__")):
            arr = np.asarray(arr)
        meta["source"] = f"<{type(arr).__module__.split('.')[0]} array>"
        return arr, _is_dask(arr) or not isinstance(arr, np.ndarray), None, meta
    path = Path(source)
    arr, key, is_lazy = _open_file(path, key, lazy)
    meta["source"] = str(path)
    if key is not None:
        meta["key"] = key
    name = None
    if is_lazy:
        st = path.stat()
        name = "lf-array-" + tokenize(str(path.resolve()), key, st.st_mtime_ns, st.st_size)
    return arr, is_lazy, name, meta


def _check_scale(scale, dtype: np.dtype) -> None:
    """``scale`` is None (for a type with a known range), a number, a (low, high) pair or ``"minmax"``."""
    if scale is None:
        check_scalable(dtype, "The light-field array")
    elif not (isinstance(scale, str) and scale == "minmax"):
        if not (isinstance(scale, (int, float)) or (isinstance(scale, (tuple, list)) and len(scale) == 2)):
            raise LightFieldError(f"scale={scale!r}: give a number, a (low, high) pair or 'minmax'.")
        apply_scale(np.zeros(1, np.float32), scale)  # validates the range early


def _lazy_lightfield(arr, ax: str, scale, name, meta: dict) -> LightField:
    """A LightField over a dask array of ``arr``, one chunk per view, scaled and converted inside each chunk."""
    import dask.array as da

    if _is_dask(arr):
        d = arr
    else:  # one chunk per view, whatever the stored order
        chunks = tuple(1 if c in "VU" else int(s) for c, s in zip(ax, arr.shape))
        d = da.from_array(arr, chunks=chunks, name=name, asarray=True, fancy=False)
    d = d.transpose([ax.index(c) for c in "VUYXC" if c in ax])
    if "C" not in ax:
        d = d[..., None]
    if isinstance(scale, str):
        lo, hi = da.compute(da.nanmin(d), da.nanmax(d))
        scale = _minmax(lo, hi)
    d = d.rechunk({0: 1, 1: 1}) if any(c > 1 for c in d.chunks[0] + d.chunks[1]) else d
    if scale is not None:
        d = d.map_blocks(apply_scale, scale, dtype=np.float32, meta=np.empty((0,) * 5, np.float32))
        meta["scale"] = scale
    mask, checked = None, False
    if np.dtype(arr.dtype).kind == "f":
        d, mask, checked = _float_views(d, arr)
    if mask is not None and not mask.any():
        raise LightFieldError(
            "Every view of the array is NaN: there is no data in it (NaN marks missing views); check that the "
            "file was written after its views were filled."
        )
    return LightField(data=d, view_mask=mask, metadata=meta, _checked=checked)  # type: ignore[arg-type]  # None: all


def _float_views(d, arr):
    """(d, the view mask, whether d is checked) of a lazy float array: bad values fail at open time rather than
    at the first draw, and all-NaN views are missing.  Every view of a file is read once when that is cheap,
    else (big files, the caller's dask graphs) the centre one; LightField checks unscanned chunks as computed."""
    if not _is_dask(arr) and math.prod(arr.shape) * np.dtype(arr.dtype).itemsize <= _SCAN_BYTES:
        return d.astype(np.float32), _scan_views(d, "The light-field array"), True
    V, U = d.shape[:2]
    mask = np.ones((V, U), bool)
    mask[V // 2, U // 2] = not np.isnan(d[V // 2, U // 2].compute()).all()
    return d, mask, False


def _minmax(lo, hi):
    lo, hi = float(lo), float(hi)
    if not np.isfinite(lo) or not np.isfinite(hi):
        raise LightFieldError("scale='minmax' needs finite values; the array has none (or infinities).")
    if hi <= lo:
        raise LightFieldError(f"scale='minmax': the array is constant ({lo:g}); give scale= explicitly.")
    return (lo, hi)
