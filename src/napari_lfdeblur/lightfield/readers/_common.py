"""Helpers shared by the readers: value scaling to [0, 1].

Image files (views, ESLF, raw lenslet images) are those of
:data:`napari_lfdeblur.io.IMAGE_SUFFIXES`, decoded by :func:`napari_lfdeblur.io.read_image`.
"""

from __future__ import annotations

import numpy as np

from ...errors import LightFieldError

#: integer dtypes with an obvious full-scale value
_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def check_scalable(dtype, what: str) -> None:
    """Raise if ``dtype`` has no natural mapping to [0, 1] (so ``scale=`` is needed)."""
    dtype = np.dtype(dtype)
    if dtype in _FULL_SCALE or dtype == np.bool_ or dtype.kind == "f":
        return
    raise LightFieldError(
        f"{what} has dtype {dtype}, which has no natural [0, 1] range; pass scale= "
        "(a full-scale value such as 4095 for 12-bit data, a (low, high) pair, or 'minmax')."
    )


def to_float01(a: np.ndarray, what: str = "the data") -> np.ndarray:
    """Convert uint8/uint16/bool/float to float32 in [0, 1].

    uint8 is divided by 255 and uint16 by 65535 (exact inverse of the usual
    8/16-bit encoding), bool becomes 0/1, float is kept when it lies within
    [0, 1] (NaN allowed: it marks missing data) and rejected otherwise so that
    no silent clipping hides a wrong scale.
    """
    a = np.asarray(a)
    dt = a.dtype
    if dt in _FULL_SCALE:
        return a.astype(np.float32) / np.float32(_FULL_SCALE[dt])
    if dt == np.bool_:
        return a.astype(np.float32)
    if dt.kind == "f":
        out = a.astype(np.float32, copy=False)
        bad = (out < 0.0) | (out > 1.0)  # NaN compares False (allowed); +-inf counts as bad
        if bad.any():
            _refuse_infinities(out, what)
            vals = out[~np.isnan(out)]
            lo, hi = float(vals.min()), float(vals.max())
            raise LightFieldError(
                f"{what} holds floats in [{lo:g}, {hi:g}], outside [0, 1]; pass scale= "
                "(e.g. scale=255, scale=(low, high) or scale='minmax') to map it to [0, 1]."
            )
        return out
    check_scalable(dt, what)  # raises
    raise AssertionError("unreachable")


def _refuse_infinities(a: np.ndarray, what: str) -> None:
    if np.isinf(a).any():
        raise LightFieldError(
            f"{what} holds infinite values; replace them (e.g. np.nan_to_num) first. NaN marks missing pixels "
            "(a view that is all NaN is a missing view)."
        )


def apply_scale(a: np.ndarray, scale) -> np.ndarray:
    """Map ``a`` to [0, 1] with an explicit ``scale``: a full-scale number or a (low, high) pair.

    Values outside the given range are clipped (the user chose the range); NaN
    stays NaN.
    """
    if isinstance(scale, (tuple, list)) and len(scale) == 2:
        lo, hi = float(scale[0]), float(scale[1])
    else:
        lo, hi = 0.0, float(scale)
    if not hi > lo:
        raise LightFieldError(f"scale={scale!r} gives an empty range [{lo:g}, {hi:g}]; use high > low.")
    a = np.asarray(a)
    if a.dtype.kind == "f":
        _refuse_infinities(a, "the data")
    out = (np.asarray(a, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0)
