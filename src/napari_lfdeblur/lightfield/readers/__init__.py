"""Light-field readers: ``read_lightfield``, format detection, and the table of formats (one module each; what
they read: docs/lightfield-formats.md).  Every failure a user can cause is raised as ``LightFieldError``."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path

from ...errors import LightFieldError
from ...io.formats import IMAGE_SUFFIXES
from ..core import LightField
from .arrays import ARRAY_SUFFIXES, is_zarr_path, read_array
from .eslf import read_eslf, write_eslf
from .grid_folder import read_grid_folder
from .hci import is_hci_folder, read_hci
from .lenslet import read_lenslet
from .pfm import read_pfm, write_pfm

READERS: dict[str, Callable[..., LightField]] = {
    "hci": read_hci,
    "grid": read_grid_folder,
    "eslf": read_eslf,
    "lenslet": read_lenslet,
    "array": read_array,
}
FORMATS = tuple(READERS)
_ALIASES = {"folder": "grid", "views": "grid", "npy": "array", "zarr": "array", "h5": "array", "tiff": "array"}
# metadata every reader accepts from the user (they are facts the files may lack)
_GENERAL_OPTIONS = ("angular_spacing", "disparity_range")

__all__ = [
    "FORMATS",
    "LightField",
    "detect_format",
    "read_lightfield",
    "read_hci",
    "read_grid_folder",
    "read_eslf",
    "write_eslf",
    "read_lenslet",
    "read_array",
    "read_pfm",
    "write_pfm",
]


def _is_path(x) -> bool:
    return isinstance(x, (str, os.PathLike))


def _split_pattern_path(path: Path) -> tuple[Path, str] | None:
    """``folder/view_{row}_{col}.png`` -> (folder, pattern)."""
    if "{" in path.name and "}" in path.name and path.parent.is_dir():
        return path.parent, path.name
    return None


def detect_format(path, **options) -> str:
    """Name of the reader for ``path`` (see ``FORMATS``); raises LightFieldError if none fits.

    ``options`` help: ``centers=`` means a raw lenslet image, ``views=`` on a
    single image means ESLF, ``pattern=`` means a grid folder.
    """
    if not _is_path(path):
        if hasattr(path, "shape") and hasattr(path, "dtype"):
            return "array"
        raise LightFieldError(
            f"Cannot read a {type(path).__name__} as a light field; give a path or a numpy/dask array."
        )
    if not str(path).strip():
        raise LightFieldError("The path is empty; give a folder of views, a light-field file or an array.")
    p = Path(path)
    if not p.exists():
        if _split_pattern_path(p):
            return "grid"
        raise LightFieldError(f"{p} does not exist; check the path.")
    if options.get("centers") is not None:
        return "lenslet"
    if p.is_dir():
        if is_zarr_path(p):
            return "array"
        if options.get("pattern") is not None:
            return "grid"
        return "hci" if is_hci_folder(p) else "grid"  # the grid reader explains what it looked for if nothing matches
    return _file_format(p, options)


def _file_format(p: Path, options: dict) -> str:
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES and ("eslf" in p.name.lower() or options.get("views") is not None):
        return "eslf"
    if suffix in ARRAY_SUFFIXES:
        return "array"
    if suffix in IMAGE_SUFFIXES:
        raise LightFieldError(
            f"{p.name} is a single image, not a light field. If it is a lenslet-sliced ESLF image pass "
            "format='eslf' (and views=(V, U) if not 14x14); if it is a raw plenoptic image pass "
            "format='lenslet' with centers='table.mat'; for a folder of views give the folder."
        )
    if suffix == ".mat":
        raise LightFieldError(
            f"{p.name} is a MATLAB file; if it is a microlens-centre table, pass it as centers= together with "
            "the raw lenslet image."
        )
    raise LightFieldError(
        f"{p.name}: unknown light-field file type {suffix or '(no suffix)'!r}. Readable: a folder of views, "
        "an ESLF image, a raw lenslet image with centers=, or an array file (.npy, .npz, .tif, .zarr, .h5)."
    )


def _check_path_kind(p: Path, fmt: str) -> None:
    if not p.exists():
        raise LightFieldError(f"{p} does not exist; check the path.")
    if fmt in ("hci", "grid") and not p.is_dir():
        raise LightFieldError(f"format={fmt!r} reads a folder of views, but {p} is a file.")
    if fmt in ("eslf", "lenslet") and p.is_dir():
        raise LightFieldError(f"format={fmt!r} reads one image file, but {p} is a folder.")
    if fmt == "array" and p.is_dir() and not is_zarr_path(p):
        raise LightFieldError(
            f"{p} is a folder but not a zarr store; format='array' reads .npy, .npz, .tif, .zarr or .h5."
        )


def _check_options(fmt: str, reader, options: dict) -> None:
    params = inspect.signature(reader).parameters
    accepted = [n for n in list(params)[1:] if params[n].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise LightFieldError(
            f"Option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} do{'es' if len(unknown) == 1 else ''} "
            f"not apply to format {fmt!r}; it accepts: {', '.join(accepted + list(_GENERAL_OPTIONS))}."
        )


def read_lightfield(path, format: str | None = None, **options) -> LightField:
    """Read a light field from a folder, a file or an array.

    Parameters
    ----------
    path
        A folder of views (HCI or named by grid position), an ESLF image, a
        raw lenslet image, an array file (.npy, .npz, .tif, .zarr, .h5), or a
        numpy/dask array.  ``folder/name_{row}_{col}.png`` is read as a grid
        folder with that pattern.
    format
        ``"hci"``, ``"grid"``, ``"eslf"``, ``"lenslet"`` or ``"array"``; None
        detects it (see ``detect_format``).
    **options
        Passed to the format's reader (``read_hci``, ``read_grid_folder``,
        ``read_eslf``, ``read_lenslet``, ``read_array``), e.g. ``lazy=``,
        ``pattern=``, ``views=``, ``centers=``, ``axes=``, ``key=``,
        ``scale=``.  ``angular_spacing=`` and ``disparity_range=`` are
        accepted by every format and stored in the metadata.

    Returns
    -------
    LightField
        data (V, U, Y, X, C) float32 in [0, 1], lazy (dask, one chunk per
        view) for folders, .zarr, .h5 and .npy unless ``lazy=False``.
        ``metadata`` always has ``source``, ``format``, ``angular_spacing``,
        ``disparity_range`` and ``source_dtype`` (None when unknown).

    Raises
    ------
    LightFieldError
        For anything that is not a readable light field, with what to try.
    """
    fmt = format
    try:
        general = {k: options.pop(k) for k in _GENERAL_OPTIONS if k in options}
        fmt, path = _resolve_format(path, format, options)
        lf = READERS[fmt](path, **options)
        _set_general(lf.metadata, general)
        return lf
    except LightFieldError:
        raise
    except MemoryError as e:
        raise LightFieldError(
            f"Not enough memory to read {path}: {e}. Use lazy=True, or a zarr/h5/npy file that can be read per view."
        ) from e
    except Exception as e:  # anything else from a decoder or file system: say where and what
        what = path if _is_path(path) else f"the {type(path).__name__}"
        raise LightFieldError(
            f"Could not read {what} as a light field (format {fmt or 'auto'!r}): {type(e).__name__}: {e}"
        ) from e


def _resolve_format(path, format, options: dict):
    """(the reader's name, the path it reads) for ``path`` and ``format``, checked with the reader's options;
    ``folder/name_{row}_{col}.png`` becomes the folder, with the name as ``options["pattern"]``."""
    fmt = detect_format(path, **options) if format is None else format
    fmt = _ALIASES.get(fmt.lower(), fmt.lower()) if isinstance(fmt, str) else None
    if fmt not in READERS:
        raise LightFieldError(f"Unknown format {format!r}; choose one of {', '.join(FORMATS)} or None (detect).")
    if _is_path(path) and not str(path).strip():
        raise LightFieldError("The path is empty; give a folder of views, a light-field file or an array.")
    if fmt != "array" and not _is_path(path):
        raise LightFieldError(
            f"format={fmt!r} reads a path, but got a {type(path).__name__}; use format='array' for arrays."
        )
    if fmt == "grid" and _is_path(path) and not Path(path).exists():
        split = _split_pattern_path(Path(path))
        if split and "pattern" not in options:
            path, options["pattern"] = split[0], split[1]
    if _is_path(path):
        _check_path_kind(Path(path), fmt)
    _check_options(fmt, READERS[fmt], options)
    return fmt, path


def _set_general(md: dict, general: dict) -> None:
    """The options every format takes, into the metadata; the keys every light field's metadata has."""
    if "angular_spacing" in general:
        md["angular_spacing"] = general["angular_spacing"]
    if "disparity_range" in general:
        try:
            lo, hi = (float(x) for x in general["disparity_range"])
        except (TypeError, ValueError):
            raise LightFieldError(
                f"disparity_range={general['disparity_range']!r}: give a pair (low, high) in px per view."
            ) from None
        md["disparity_range"] = (lo, hi)
    for k in ("source", "format", "angular_spacing", "disparity_range", "source_dtype"):
        md.setdefault(k, None)
