"""Helpers the readers share: explicit scales to [0, 1] and ``views=`` (the value rule itself is in ..core)."""

from __future__ import annotations

import numpy as np

from ...errors import LightFieldError
from ..core import _infinite_error


def apply_scale(a: np.ndarray, scale) -> np.ndarray:
    """Map ``a`` to [0, 1] with an explicit ``scale``, a full-scale number or a (low, high) pair; values
    outside the range are clipped (the user chose it), NaN stays NaN."""
    if isinstance(scale, (tuple, list)) and len(scale) == 2:
        lo, hi = float(scale[0]), float(scale[1])
    else:
        lo, hi = 0.0, float(scale)
    if not hi > lo:
        raise LightFieldError(f"scale={scale!r} gives an empty range [{lo:g}, {hi:g}]; use high > low.")
    a = np.asarray(a)
    if a.dtype.kind == "f" and np.isinf(a).any():  # clipping would turn them into 0 or 1 silently
        raise _infinite_error("the data")
    out = (np.asarray(a, dtype=np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0)


def views_pair(views, example: str = "a number such as 14 or a pair (V, U)") -> tuple[int, int]:
    """``views=`` as (V, U), from one whole number or a pair; a fraction is refused, not rounded (views=(2.5, 2.5)
    would silently read a 3x3 grid as 2x2 views of garbage)."""
    if isinstance(views, (str, bytes)):  # "14" would unpack as the pair (1, 4)
        raise LightFieldError(f"views={views!r} is a string; give {example}.")
    items = [views] * 2 if np.ndim(views) == 0 else views
    try:
        items = list(items)
        if len(items) != 2:
            raise ValueError
        nums = [float(x) for x in items]
    except (TypeError, ValueError):
        raise LightFieldError(f"views={views!r}: give {example}.") from None
    if any(isinstance(x, (bool, np.bool_)) for x in items) or not all(np.isfinite(x) and x == int(x) for x in nums):
        raise LightFieldError(f"views={views!r}: views are counted in whole numbers; give {example}.")
    V, U = (int(x) for x in nums)
    if V < 1 or U < 1:
        raise LightFieldError(f"views={views!r} must be positive; give {example}.")
    return V, U
