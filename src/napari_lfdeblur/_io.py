"""Small image and file helpers shared across the package: atomic writes, image saving, channel layout."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None):
    """Yield a temporary path beside ``final``; move it into place only on success.

    A crash or a cancel leaves no half-written file under the final name (the
    temporary one is removed), and ``os.replace`` is atomic on one file system.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    fd, tmp = tempfile.mkstemp(prefix=f".{final.stem}.", suffix=".part" + suffix, dir=final.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); give it the permissions a normal new file gets
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def writable_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and prove a file can be written there, before long work starts.

    Raises :class:`~napari_lfdeblur.errors.LFDeblurError` saying which folder and what to do, so that a
    read-only or full disk is found in a second instead of after every pair or step was computed.
    """
    from .errors import LFDeblurError

    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise LFDeblurError(f"The {what} {folder} is a file: choose a folder (a new or an existing one).")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise LFDeblurError(
            f"Cannot write into the {what} {folder} ({e.strerror or e}): choose a folder you can write to."
        ) from None
    return folder


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
