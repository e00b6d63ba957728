"""A grid of per-view image files as one (V, U, Y, X, C) array, lazy by default: opening reads only the file
headers (225 header reads for a 15 x 15 grid, not 225 decodes), and each view is one dask chunk, decoded and
converted to float32 [0, 1] when something asks for it.  Missing views are NaN chunks."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import ImageFileError, LightFieldError
from ...io.read import image_header, read_image
from ..core import to_float01


@dataclass(frozen=True)
class ImageInfo:
    """What a file header says about one view: (Y, X), channels (alpha dropped), dtype."""

    path: Path
    shape: tuple[int, int]
    channels: int
    dtype: np.dtype


def _view_error(e: ImageFileError) -> ImageFileError:
    return ImageFileError(f"{e} (A view file removed counts as a missing view.)")


def probe_image(path: str | os.PathLike) -> ImageInfo:
    """The header of a view file (no pixel decoding), checked to be one (Y, X[, C]) image."""
    path = Path(path)
    h = image_header(path)
    if h.axes not in ("yx", "yxc"):
        raise LightFieldError(
            f"{path} holds {len(h.shape)}D data with axes {h.axes!r} {h.shape}; a view file must be one "
            "(Y, X) or (Y, X, C) image. A whole light field in one TIFF is read with format='array'."
        )
    if h.frames > 1:
        raise LightFieldError(f"{path} is an animation of {h.frames} frames, not a single view.")
    c = {2: 1, 4: 3}.get(h.channels, h.channels)  # drop alpha
    return ImageInfo(path, h.size, c, h.dtype)


def read_view_image(path: str | os.PathLike) -> np.ndarray:
    """An image file's stored samples, (Y, X, C) with alpha dropped (views, ESLF and raw lenslet images are
    compared and refocused by colour only); ImageFileError for a corrupt or truncated file."""
    a = read_image(path)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3:
        raise LightFieldError(f"{path} decodes to shape {a.shape}, not a (Y, X[, C]) image.")
    if a.shape[-1] in (2, 4):  # drop alpha
        a = a[..., :-1]
    return a


def decode_view(path: str | os.PathLike, shape: tuple[int, int] | None = None, channels: int | None = None):
    """One view file as (Y, X, C) float32 in [0, 1], checked against its header."""
    try:
        a = read_view_image(path)
    except ImageFileError as e:
        raise _view_error(e) from e
    if shape is not None and tuple(a.shape[:2]) != tuple(shape):
        raise LightFieldError(f"{path} decodes to {a.shape[:2]} but its header said {tuple(shape)}.")
    if channels is not None and a.shape[2] != channels:
        raise LightFieldError(f"{path} decodes to {a.shape[2]} channels, expected {channels}.")
    # the file is a present view: NaN in it would be averaged into every refocused image
    return to_float01(a, f"view file {path}", allow_nan=False)


def _expand_key(key, ndim: int) -> tuple:
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (ndim - len(key) + 1) + key[i + 1 :]
    return key + (slice(None),) * (ndim - len(key))


class ViewGridSource:
    """Array-like (V, U, Y, X, C) float32 that decodes the view files it is sliced with (dask's ``from_array``
    slices it once per view); missing views come back as NaN without touching the disk."""

    dtype = np.dtype(np.float32)
    ndim = 5

    def __init__(self, files: Mapping[tuple[int, int], Path], grid, view_shape, channels):
        self.files = {tuple(k): Path(p) for k, p in files.items()}
        self.shape = (int(grid[0]), int(grid[1]), int(view_shape[0]), int(view_shape[1]), int(channels))

    def __getitem__(self, key):
        V, U, Y, X, C = self.shape
        key = _expand_key(key, 5)
        if len(key) != 5 or any(k is None or isinstance(k, (list, np.ndarray)) for k in key):
            raise IndexError(f"unsupported index {key!r} for a view grid")
        vk, uk, rest = key[0], key[1], key[2:]
        vs = range(V)[vk] if isinstance(vk, slice) else [range(V)[vk]]
        us = range(U)[uk] if isinstance(uk, slice) else [range(U)[uk]]
        pix_shape = np.broadcast_to(np.empty((), np.float32), (Y, X, C))[rest].shape
        out = np.full((len(vs), len(us)) + pix_shape, np.nan, dtype=np.float32)
        for i, v in enumerate(vs):
            for j, u in enumerate(us):
                p = self.files.get((v, u))
                if p is not None:
                    out[i, j] = decode_view(p, (Y, X), C)[rest]
        drop = tuple(0 if not isinstance(k, slice) else slice(None) for k in (vk, uk))
        return out[drop]


def _decode_all(src: ViewGridSource) -> np.ndarray:
    """Every view decoded into one preallocated array, in threads (PNG/zlib decoding releases the GIL): the
    peak stays near one copy of the light field, where ``dask.compute`` would hold the per-view chunks and
    their concatenation at once."""
    from concurrent.futures import ThreadPoolExecutor

    V, U, Y, X, C = src.shape
    out = np.empty(src.shape, dtype=np.float32)
    for key in np.ndindex(V, U):
        if key not in src.files:
            out[key] = np.nan

    def fill(key):
        out[key] = decode_view(src.files[key], (Y, X), C)

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        list(pool.map(fill, sorted(src.files)))  # list(): re-raises the first error
    return out


def _describe_mismatch(infos: list[ImageInfo], attr: str, label) -> str:
    counts = Counter(getattr(i, attr) for i in infos)
    common, n = counts.most_common(1)[0]
    odd = [i for i in infos if getattr(i, attr) != common]
    examples = ", ".join(f"{i.path.name} ({label(getattr(i, attr))})" for i in odd[:4])
    more = f" and {len(odd) - 4} more" if len(odd) > 4 else ""
    return f"{n} views are {label(common)}, but {examples}{more}"


def _probe_views(paths: dict[tuple[int, int], Path], V: int, U: int) -> list[ImageInfo]:
    """The view files' headers, in grid order, checked to be of one size and channel count."""
    if not paths:
        raise LightFieldError("No view files to open.")
    outside = [(k, p.name) for k, p in paths.items() if not (0 <= k[0] < V and 0 <= k[1] < U)]
    if outside:
        raise LightFieldError(f"View files outside the {V}x{U} grid: {outside[:4]}.")
    try:
        infos = [probe_image(paths[k]) for k in sorted(paths)]
    except ImageFileError as e:
        raise _view_error(e) from e
    if len({i.shape for i in infos}) > 1:
        raise LightFieldError(
            "The views have different sizes: "
            + _describe_mismatch(infos, "shape", lambda s: f"{s[0]}x{s[1]} (Y x X)")
            + ". All views of a light field must have the same size; remove or resize the odd ones."
        )
    if len({i.channels for i in infos}) > 1:
        raise LightFieldError(
            "The views have different channel counts: "
            + _describe_mismatch(infos, "channels", lambda c: f"{c} channel{'s' if c != 1 else ''}")
            + ". Convert them all to RGB or all to greyscale."
        )
    return infos


def _dask_views(src: ViewGridSource):
    import dask.array as da
    from dask.base import tokenize

    V, U, Y, X, C = src.shape
    # a deterministic name from paths, sizes and modification times: reopening
    # unchanged files reuses dask's cache keys, an edited file gets a new key
    stamp = []
    for k in sorted(src.files):
        st = os.stat(src.files[k])
        stamp.append((k, str(src.files[k]), st.st_size, st.st_mtime_ns))
    name = "lf-views-" + tokenize(stamp, (V, U), (Y, X), C)
    return da.from_array(src, chunks=(1, 1, Y, X, C), name=name, asarray=False, fancy=False,
                         meta=np.empty((0, 0, 0, 0, 0), dtype=np.float32))


def open_view_grid(
    files: Mapping[tuple[int, int], str | os.PathLike],
    grid: tuple[int, int],
    lazy: bool = True,
):
    """(data, view_mask, info) of the view files ``{(v, u): path}`` (0-based, (0, 0) top-left) on a (V, U)
    ``grid``: data (V, U, Y, X, C) float32 in [0, 1], NaN where no file is, a dask array (one chunk per view)
    when ``lazy``, else decoded now; info has ``source_dtype`` and ``n_view_files``."""
    V, U = int(grid[0]), int(grid[1])
    paths = {(int(v), int(u)): Path(p) for (v, u), p in files.items()}
    infos = _probe_views(paths, V, U)
    mask = np.zeros((V, U), dtype=bool)
    for v, u in paths:
        mask[v, u] = True
    src = ViewGridSource(paths, (V, U), infos[0].shape, infos[0].channels)
    data = _dask_views(src) if lazy else _decode_all(src)
    info = {"source_dtype": "+".join(sorted({str(i.dtype) for i in infos})), "n_view_files": len(paths)}
    return data, mask, info
