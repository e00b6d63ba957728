"""Pixel conversions between stored samples (uint8, uint16, float) and float images in [0, 1], and the
grey/RGB channel layout: one definition each, for reading, writing, training and scoring."""

from __future__ import annotations

import numpy as np

from ..errors import ImageFileError

__all__ = ["grey_or_rgb", "to_float", "to_rgb", "to_uint8", "to_uint16"]


def _unit_float(img, keep_float64: bool) -> np.ndarray:
    """``img`` as float32 (float64 kept when asked) in [0, 1], NaN -> 0."""
    a = np.asarray(img)
    a = a if keep_float64 and a.dtype == np.float64 else a.astype(np.float32)
    return np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0)


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 with rounding (NaN -> 0; values outside [0, 1] clipped)."""
    return (_unit_float(img, False) * 255.0 + 0.5).astype(np.uint8)


def to_uint16(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint16 with rounding (NaN -> 0; values outside [0, 1] clipped); float64
    input is scaled in float64, anything else in float32."""
    return (_unit_float(img, True) * 65535.0 + 0.5).astype(np.uint16)


def to_float(a: np.ndarray) -> np.ndarray:
    """Stored samples to float32 in [0, 1]: uint8 / 255, uint16 / 65535, other integers by their dtype's
    maximum, bool as 0/1; floats are clipped to [0, 1] (NaN -> 0)."""
    a = np.asarray(a)
    if a.dtype == np.uint8:
        return a.astype(np.float32) * np.float32(1 / 255)
    if a.dtype == np.uint16:
        return a.astype(np.float32) * np.float32(1 / 65535)
    if a.dtype.kind in "ui":
        return a.astype(np.float32) / np.float32(np.iinfo(a.dtype).max)
    if a.dtype == bool:
        return a.astype(np.float32)
    return np.clip(np.nan_to_num(a.astype(np.float32, copy=False)), 0.0, 1.0)


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


def to_rgb(a: np.ndarray, what: str) -> np.ndarray:
    """(H, W, 3) from (H, W), (H, W, 1), (H, W, 2=grey+alpha), (H, W, 3) or (H, W, 4); ``what`` names the
    image in the :class:`ImageFileError` raised for any other shape."""
    g = grey_or_rgb(a)
    if g is None:
        raise ImageFileError(f"{what}: expected a greyscale or RGB(A) image (H, W[, C]), got shape {a.shape}")
    return np.repeat(g[..., None], 3, axis=-1) if g.ndim == 2 else g
