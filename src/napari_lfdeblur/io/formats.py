"""The one table of image formats (:data:`FORMATS`): which suffixes name an image, which formats are read and
written, and which format ``deblur`` writes each one's results in.  Every part of the package that meets an
image file asks this table, so they all accept the same files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ImageFileError

__all__ = [
    "FORMATS",
    "IMAGE_SUFFIXES",
    "NOT_WRITTEN_SUFFIXES",
    "WRITE_SUFFIXES",
    "ImageFormat",
    "describe_formats",
    "image_files",
    "image_format",
    "is_image_path",
    "output_format",
    "result_format",
    "stem",
    "suffix_of",
]


@dataclass(frozen=True)
class ImageFormat:
    """One row of the table: a format's name, its suffixes and what is done with it."""

    name: str  # the key used everywhere: "png", "jpg", "tif", ..., "ome.zarr"
    label: str  # for messages: "PNG", "JPEG", ...
    suffixes: tuple[str, ...]  # lower case, with the dot; the first is the one written
    write: bool = False  # written by save_image / save_image_streaming
    results: str = ""  # the format deblur writes results of this input in (default: itself)
    folder: bool = False  # a folder (zarr store), not a file


FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("png", "PNG", (".png",), write=True),
    ImageFormat("jpg", "JPEG", (".jpg", ".jpeg"), write=True),
    ImageFormat("tif", "TIFF", (".tif", ".tiff"), write=True),
    ImageFormat("bmp", "BMP", (".bmp",), results="png"),
    ImageFormat("webp", "WebP", (".webp",), results="png"),
    ImageFormat("pnm", "PPM/PGM", (".ppm", ".pgm"), results="tif"),
    ImageFormat("gif", "GIF", (".gif",), results="png"),
    ImageFormat("ome.zarr", "zarr", (".ome.zarr", ".zarr"), write=True, folder=True),
)
_BY_NAME = {f.name: f for f in FORMATS}
_BY_SUFFIX = {s: f for f in FORMATS for s in f.suffixes if s.count(".") == 1}

#: suffixes of the image *files* read (zarr stores are folders): views, photos, pair images, deblur inputs
IMAGE_SUFFIXES: tuple[str, ...] = tuple(s for f in FORMATS if not f.folder for s in f.suffixes)
#: suffix -> format, for the formats written
WRITE_SUFFIXES: dict[str, str] = {s: f.name for s, f in _BY_SUFFIX.items() if f.write}
#: image (and array) suffixes that are not written: an output name ending in one is a mistake, not a folder
NOT_WRITTEN_SUFFIXES: tuple[str, ...] = tuple(s for s, f in _BY_SUFFIX.items() if not f.write) + (
    ".pbm", ".pnm", ".jp2", ".j2k", ".jpx", ".jxl", ".tga", ".exr", ".hdr", ".ico", ".heic", ".heif", ".avif",
    ".psd", ".svg", ".pdf", ".eps", ".npy", ".npz", ".h5", ".hdf5", ".n5", ".czi", ".nd2", ".lif", ".dng", ".raw")

_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zarray")


def describe_formats(write: bool = False) -> str:
    """The formats read (or written) for messages: ``"PNG, JPEG, TIFF, BMP, WebP, PPM/PGM, GIF or zarr"``."""
    labels = [f.label for f in FORMATS if f.write or not write]
    return ", ".join(labels[:-1]) + " or " + labels[-1]


def _is_zarr_folder(p: Path) -> bool:
    return p.is_dir() and any((p / m).exists() for m in _ZARR_MARKERS)


def image_format(path: str | os.PathLike) -> str | None:
    """The format (``"png"``, ``"jpg"``, ``"tif"``, ``"bmp"``, ..., ``"ome.zarr"``) of a path by its suffix, or
    of a zarr folder by its contents; None for anything else."""
    p = Path(path)
    f = _BY_SUFFIX.get(p.suffix.lower())
    if f is not None:
        return f.name
    return "ome.zarr" if _is_zarr_folder(p) else None


def is_image_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names an image that is read (by suffix, or a zarr folder)."""
    return image_format(path) is not None


def output_format(path: str | os.PathLike) -> str:
    """The format written to ``path`` by its suffix; :class:`ImageFileError` when it is not one written."""
    fmt = WRITE_SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise ImageFileError(f"{path}: unknown output type; end the name with .png, .jpg, .tif or .ome.zarr")
    return fmt


def result_format(path: str | os.PathLike) -> str:
    """The format ``lfdeblur deblur`` writes the result of the image ``path`` in: its own when it is written,
    else the table's choice (PNG for 8-bit formats, TIFF otherwise)."""
    f = _BY_NAME.get(image_format(path) or "tif", _BY_NAME["tif"])
    return f.results or f.name


def suffix_of(fmt: str) -> str:
    """The suffix a format is written with: ``".png"``, ``".jpg"``, ``".tif"``, ``".ome.zarr"``, ..."""
    return _BY_NAME[fmt].suffixes[0]


def stem(path: str | os.PathLike) -> str:
    """A file's name without its image suffix, double ones (``.ome.zarr``, ``.ome.tif``) included."""
    p = Path(path)
    name = p.name
    for suffix in (".ome.zarr", ".ome.tiff", ".ome.tif"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return p.stem


def image_files(folder: str | os.PathLike, *, zarr: bool = False, broken: list | None = None) -> list[Path]:
    """The image files of a folder (``IMAGE_SUFFIXES``, any case), sorted by name: the one listing rule for every
    folder of images the package reads.

    Hidden files (macOS ``._name.png``) and sub-folders are skipped; ``zarr=True`` lists zarr stores (folders)
    too.  Symbolic links to nothing (broken, or loops) are skipped and, when ``broken`` is a list, appended to
    it."""
    found = []
    for p in sorted(Path(folder).iterdir()):
        if p.name.startswith("."):
            continue
        if not p.exists():  # False for a broken link or a link loop (which stat() cannot follow)
            if broken is not None and p.suffix.lower() in _BY_SUFFIX:
                broken.append(p)
        elif p.is_dir():
            if zarr and image_format(p) == "ome.zarr":
                found.append(p)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            found.append(p)
    return found
