"""Small image and file helpers shared across the package: atomic writes, image saving, channel layout."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

import numpy as np

from .errors import OutputError


# errors of the place written to (not of the data): reported as OutputError with what to do
_PLACE_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EEXIST,
                 errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.ENOENT}


def output_error(path, e: OSError, what: str = "") -> OutputError:
    """An :class:`OutputError` saying that ``path`` could not be written, why, and what to try."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space or write elsewhere"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "choose a folder you can write to"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a file stands where a folder is needed: choose another path"
    else:
        hint = "choose another path"
    where = f" ({e.filename})" if getattr(e, "filename", None) and str(e.filename) != str(path) else ""
    err = OutputError(f"cannot write {what + ' ' if what else ''}{path}: {reason}{where}; {hint}")
    err.errno, err.strerror, err.filename = e.errno, e.strerror, str(path)
    return err


def is_place_error(e: BaseException) -> bool:
    """Whether ``e`` is an OSError about the place written to (permissions, full disk, ...), not a bug."""
    return isinstance(e, OSError) and not isinstance(e, OutputError) and e.errno in _PLACE_ERRNOS


def check_writable_file(path, what: str = "", folder_ok: bool = False) -> Path:
    """Raise :class:`OutputError` now if ``path`` cannot be written (its missing folders could not be made).

    Tries a temporary file in the nearest folder of ``path`` that exists, and
    leaves nothing behind.  ``folder_ok``: ``path`` may be an existing folder
    (an OME-Zarr output is one).  Lets callers refuse before hours of work
    instead of failing at the end."""
    path = Path(path).expanduser()
    if path.is_dir() and not folder_ok:
        raise OutputError(f"cannot write {what + ' ' if what else ''}{path}: it is a folder; give a file name")
    place = path.parent
    while not os.path.lexists(place) and place != place.parent:
        place = place.parent
    try:
        if not place.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(place))
        with tempfile.NamedTemporaryFile(prefix=f".{path.name}.", suffix=".check", dir=place):
            pass
    except OSError as e:
        raise output_error(path, e, what) from e
    return path


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``final``; move it into place only on success.

    A crash or a cancel leaves no half-written file under the final name (the
    temporary one is removed), and ``os.replace`` is atomic on one file system.
    """
    final = Path(final)
    suffix = final.suffix if suffix is None else suffix
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".part" + suffix, dir=final.parent)
    except OSError as e:  # a read-only or full disk, a file where the folder should be, ...
        raise output_error(final, e) from e
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a normal new file gets
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        try:
            os.replace(tmp, final)
        except OSError as e:
            raise output_error(final, e) from e
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if writing_failed(e, tmp):
            raise output_error(final, e) from e
        raise


def writable_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before long work starts.

    Raises :class:`OutputError` (what is wrong and what to do), so that a read-only or full disk is found in
    a second instead of after every pair or step was computed.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"cannot write the {what} {folder}: it is a file; choose a folder (a new or an existing one)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise output_error(folder, e, f"the {what}") from e
    check_writable_file(folder / ".write-check", f"the {what}")
    return folder


def writing_failed(e: BaseException, tmp) -> bool:
    """Whether ``e``, raised while writing ``tmp``, is the disk's doing (full, read-only) rather than the data's."""
    if not is_place_error(e):
        return False
    return e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS) or (
        e.filename is not None and os.path.abspath(str(e.filename)) == os.path.abspath(str(tmp)))


def grey_or_rgb(a: np.ndarray) -> np.ndarray | None:
    """An (H, W[, C]) image as (H, W) grey or (H, W, 3) RGB, without copying; None for any other shape.

    Alpha is dropped: (H, W, 1) and grey+alpha (H, W, 2) give (H, W), RGBA gives RGB.  Grey stays 2-D so
    that callers which expand it to three channels do so only for the crop they use.
    """
    if a.ndim == 2:
        return a
    if a.ndim == 3 and a.shape[-1] in (1, 2):
        return a[..., 0]
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        return a[..., :3]
    return None


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 with rounding (NaN -> 0)."""
    a = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
    return (np.clip(a, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_image(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Save a float [0, 1] image atomically: 8-bit for PNG/JPEG, 16-bit for TIFF."""
    import imageio.v3 as iio

    path = Path(path)
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        if a.dtype.kind == "f":
            a = (np.clip(np.nan_to_num(a), 0, 1) * 65535 + 0.5).astype(np.uint16)
        with atomic_path(path) as tmp:
            tifffile.imwrite(tmp, a, photometric="rgb" if a.ndim == 3 else "minisblack")
        return path
    if a.dtype.kind == "f":
        a = to_uint8(a)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, a, extension=path.suffix)
    return path
