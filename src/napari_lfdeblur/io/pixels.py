"""Pixel conversions between stored samples (uint8, uint16, float) and float images in [0, 1], and the
grey/RGB channel layout: one definition each, for reading, writing, deblurring, training and scoring.

:func:`to_stored` is the one rule for floats saved as 8- or 16-bit files; :func:`to_uint8` / :func:`to_uint16`
are the quiet conversions for data whose NaN marks what is missing anyway (light-field views)."""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ImageFileError

__all__ = ["MAX_CHANNELS", "grey_or_rgb", "has_channel_axis", "to_float", "to_rgb", "to_stored", "to_uint8",
           "to_uint16"]

#: a last axis this short holds channels, not the columns of an image (the network works on an 8-pixel grid)
MAX_CHANNELS = 8
# floats beyond these are not a [0, 1] image that overshot but values on another scale (0-255, -1..1, ...)
_OVERSHOOT = (-0.5, 1.5)


_BLOCK = 1 << 16  # samples per pass of the quantisers: a scratch buffer that stays in the CPU's cache


def _quantize(img, dtype, keep_float64: bool) -> np.ndarray:
    """``img`` clipped to [0, 1] (NaN -> 0), scaled to ``dtype``'s range and rounded; float64 input is scaled in
    float64 when ``keep_float64``, anything else in float32.  A block at a time through one small buffer: a
    light field's worth of float temporaries, freshly allocated, cost more than the arithmetic."""
    a = np.asarray(img)
    src = a.reshape(-1)
    out = np.empty(a.shape, dtype)
    dst = out.reshape(-1)
    buf = np.empty(min(_BLOCK, src.size), np.float64 if keep_float64 and a.dtype == np.float64 else np.float32)
    top = float(np.iinfo(dtype).max)
    for start in range(0, src.size, _BLOCK):
        b = buf[: min(_BLOCK, src.size - start)]
        b[...] = src[start : start + b.size]
        np.minimum(b, 1.0, out=b)  # keeps NaN; fmax then picks 0 over it
        np.fmax(b, 0.0, out=b)
        np.multiply(b, top, out=b)
        np.add(b, 0.5, out=b)
        dst[start : start + b.size] = b  # truncation: rounds the values in [0.5, top + 0.5]
    return out


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint8 with rounding (NaN -> 0; values outside [0, 1] clipped)."""
    return _quantize(img, np.uint8, False)


def to_uint16(img: np.ndarray) -> np.ndarray:
    """Float image in [0, 1] to uint16 with rounding (NaN -> 0; values outside [0, 1] clipped); float64
    input is scaled in float64, anything else in float32."""
    return _quantize(img, np.uint16, True)


def to_stored(img: np.ndarray, dtype, what: str = "the image") -> np.ndarray:
    """A float image in [0, 1] as the uint8 or uint16 samples of an image file, by the one rule for saving.

    - NaN or infinite values raise :class:`ImageFileError` (how many, and how to replace them): writing them
      as black would hide a fault upstream;
    - values beyond [-0.5, 1.5] raise too: such an image is on another scale (0-255, 0-65535), which clipping
      would save almost all white, and which cannot be guessed safely (a dark 0-65535 image looks like a 0-255
      one); the message names the likely scale and the division that fixes it;
    - values a little outside [0, 1] (ringing) are clipped, with a ``UserWarning`` naming the fraction of
      values that clipping changed by more than rounding.

    ``what`` names the image (the output path) in messages."""
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise ValueError(f"to_stored makes uint8 or uint16 samples, not {dt}")
    top = float(np.iinfo(dt).max)
    a = np.asarray(img)
    a = a if a.dtype == np.float64 and dt == np.uint16 else a.astype(np.float32, copy=False)  # as to_uint16
    bad = ~np.isfinite(a)
    if bad.any():
        per_pixel = bad.any(axis=-1) if a.ndim == 3 and a.shape[-1] <= 4 else bad  # a pixel: all its channels
        n = int(per_pixel.sum())
        raise ImageFileError(
            f"{what}: {n} of {per_pixel.size} pixels ({100 * n / per_pixel.size:.3g} %) are not finite (NaN or "
            f"infinite), which a {dt.itemsize * 8}-bit file cannot hold; replace them first, e.g. "
            "np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)")
    if a.size == 0:
        return a.astype(dt)
    lo, hi = float(a.min()), float(a.max())
    if lo < _OVERSHOOT[0] or hi > _OVERSHOOT[1]:
        outside = float(np.count_nonzero((a < 0) | (a > 1))) / a.size
        if lo >= _OVERSHOOT[0] and hi <= 255:
            hint = "they look like 0-255 values: divide by 255 first"
        elif lo >= _OVERSHOOT[0] and hi <= 65535:
            hint = "they look like 0-65535 values: divide by 65535 first"
        else:
            hint = "scale them to [0, 1] first, e.g. (img - img.min()) / (img.max() - img.min())"
        raise ImageFileError(
            f"{what}: float pixels are saved as 0..1 -> 0..{int(top)}, but these span {lo:.4g} .. {hi:.4g} "
            f"({100 * outside:.3g} % of the values outside [0, 1]); {hint}, or save to .ome.zarr to keep the floats")
    half = 0.5 / top  # a value within half a step of [0, 1] is stored exactly as 0 or the top: not clipped
    # counted only when the extremes say some value is out: a pass over the image saved for the usual one
    clipped = np.count_nonzero((a < -half) | (a > 1 + half)) if lo < -half or hi > 1 + half else 0
    if clipped:
        warnings.warn(
            f"{what}: {100 * clipped / a.size:.3g} % of the values lie outside [0, 1] ({lo:.4g} .. {hi:.4g}) and "
            f"were clipped to 0..{int(top)}", UserWarning, stacklevel=3)
    return (np.clip(a, 0.0, 1.0) * top + 0.5).astype(dt)


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


def has_channel_axis(shape, rgb: bool | None = None) -> bool:
    """Whether the last axis of an image of ``shape`` holds channels: ``rgb`` when given, else when it has
    at most ``MAX_CHANNELS`` entries (colour, or too thin to be an image's width)."""
    if rgb is not None:
        return bool(rgb)
    return len(shape) >= 3 and 1 <= shape[-1] <= MAX_CHANNELS


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
