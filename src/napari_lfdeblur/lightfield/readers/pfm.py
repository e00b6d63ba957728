"""Portable Float Map (PFM) images, the HCI benchmark's disparity format: a three-line ASCII header (``PF``
colour or ``Pf`` grey; width height; a scale whose sign gives the byte order, negative = little endian), then
float32 samples, rows bottom-up (read into the usual top-down order)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import LightFieldError


def _header_token(f) -> bytes:
    """The header's next token (PFM allows any whitespace between them)."""
    tok = b""
    while True:
        c = f.read(1)
        if not c:
            return tok
        if c.isspace():
            if tok:
                return tok
            continue
        tok += c


def read_pfm(path: str | os.PathLike) -> np.ndarray:
    """A PFM file as float32 (Y, X) (greyscale ``Pf``) or (Y, X, 3) (colour ``PF``), row 0 at the top."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = _header_token(f)
            if magic not in (b"PF", b"Pf"):
                raise LightFieldError(
                    f"{path} is not a PFM file (it starts with {magic[:8]!r}, expected 'PF' or 'Pf')."
                )
            width, height, scale = int(_header_token(f)), int(_header_token(f)), float(_header_token(f))
            # exactly one whitespace byte ends the header; _header_token consumed it
            channels = 3 if magic == b"PF" else 1
            dtype = "<f4" if scale < 0 else ">f4"
            count = width * height * channels
            data = np.fromfile(f, dtype=dtype, count=count)
    except LightFieldError:
        raise
    except (OSError, ValueError) as e:
        raise LightFieldError(f"Could not read the PFM file {path}: {e}") from e
    if width <= 0 or height <= 0 or data.size != count:
        raise LightFieldError(
            f"PFM file {path} is truncated or has a bad header: expected {count} samples "
            f"({width}x{height}x{channels}), found {data.size}."
        )
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.ascontiguousarray(data.reshape(shape)[::-1]).astype(np.float32)


def write_pfm(path: str | os.PathLike, image: np.ndarray, little_endian: bool = True) -> Path:
    """Write a (Y, X) or (Y, X, 3) float image as PFM (row 0 at the top in ``image``)."""
    a = np.asarray(image, dtype=np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] == 3)):
        raise LightFieldError(f"PFM stores (Y, X) or (Y, X, 3) images, got shape {a.shape}.")
    path = Path(path)
    magic = b"PF" if a.ndim == 3 else b"Pf"
    scale = -1.0 if little_endian else 1.0
    body = np.ascontiguousarray(a[::-1]).astype("<f4" if little_endian else ">f4")
    with open(path, "wb") as f:
        f.write(magic + b"\n" + f"{a.shape[1]} {a.shape[0]}\n{scale:g}\n".encode("ascii"))
        f.write(body.tobytes())
    return path
