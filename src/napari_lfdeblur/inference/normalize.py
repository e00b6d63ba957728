"""Intensity and channel conventions between user images and the RGB network (docs/deblurring.md, "Shapes,
dtypes and intensities"): :class:`Normalization` maps intensities into [0, 1] and back, reversibly within its
range; greyscale planes go through the network as three equal channels and come back as their mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DeblurInputError

PERCENTILES = (0.05, 99.95)
_SAMPLE_PIXELS = 1_000_000
_SAMPLE_CHUNKS = 16
# how far outside [0, 1] normalize='none' lets values be (rounding of a float pipeline), clipped away
UNIT_SLACK = 1e-3


def _subsample(a, max_pixels: int = _SAMPLE_PIXELS):
    """A strided view with at most about ``max_pixels`` elements over the last spatial axes."""
    if a.size <= max_pixels:
        return a
    step = int(np.ceil(np.sqrt(a.size / max_pixels)))
    index = [slice(None)] * a.ndim
    for ax in np.argsort(a.shape)[-2:]:
        index[ax] = slice(None, None, step)
    return a[tuple(index)]


def _sample_chunks(a, max_chunks: int = _SAMPLE_CHUNKS):
    """Up to ``max_chunks`` blocks of a dask array, evenly spread in block order, concatenated flat."""
    import dask.array as da

    n = int(np.prod(a.numblocks))
    if n <= max_chunks:
        return a
    picks = np.unique(np.linspace(0, n - 1, max_chunks).round().astype(int))
    blocks = [a.blocks[np.unravel_index(i, a.numblocks)] for i in picks]
    per_block = max(1, _SAMPLE_PIXELS // len(blocks))
    return da.concatenate([_subsample(b, per_block).ravel() for b in blocks])


def pixel_sample(image) -> np.ndarray:
    """About a million of ``image``'s values as float64, evenly spread: a numpy array strided, a lazy one
    read in at most 16 of its chunks (never whole)."""
    sample = _sample_chunks(image) if hasattr(image, "numblocks") else image
    sample = _subsample(sample)
    return np.asarray(sample.compute() if hasattr(sample, "compute") else sample).astype(np.float64, copy=False)


@dataclass(frozen=True)
class Normalization:
    lo: float
    hi: float
    dtype: np.dtype

    @classmethod
    def for_image(cls, image, normalize="auto", alpha: bool = False) -> Normalization:
        """The mapping ``normalize`` asks for (see :func:`~napari_lfdeblur.deblur`), from ``image``'s pixels when
        it depends on them (``alpha``: the last channel is left out of them)."""
        dtype = np.dtype(image.dtype)
        if dtype.kind not in "uif":
            raise DeblurInputError(
                f"Unsupported dtype {dtype}: give uint8, uint16 or float images (convert others with astype)."
            )
        if dtype.kind in "ui" and dtype.itemsize > 2 and normalize == "auto":
            normalize = "percentile"
        fixed = cls._fixed(normalize, dtype)
        if fixed is not None:
            return fixed
        if normalize not in ("auto", "percentile", "none"):
            raise DeblurInputError(
                f"normalize={normalize!r}: use 'auto', 'percentile', 'dtype', 'none' or a (lo, hi) pair."
            )
        return cls._from_sample(pixel_sample(image[..., :3] if alpha else image), normalize, dtype)

    @classmethod
    def _fixed(cls, normalize, dtype: np.dtype) -> Normalization | None:
        """The mappings that do not depend on the pixels: ``(lo, hi)``, ``"dtype"``, uint8 by ``"auto"``."""
        if isinstance(normalize, (tuple, list)):
            try:
                lo, hi = map(float, normalize)
            except (TypeError, ValueError):
                raise DeblurInputError(
                    f"normalize={normalize!r}: a range is two numbers (lo, hi), the values that map to 0 and 1."
                ) from None
            if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
                raise DeblurInputError(f"normalize=(lo, hi) needs finite numbers with hi > lo, got {normalize}.")
            return cls(lo, hi, dtype)
        if normalize == "dtype":
            if dtype.kind == "f":
                return cls(0.0, 1.0, dtype)
            info = np.iinfo(dtype)
            return cls(float(info.min), float(info.max), dtype)
        if normalize == "auto" and dtype == np.uint8:
            return cls(0.0, 255.0, dtype)
        return None

    @classmethod
    def _from_sample(cls, sample: np.ndarray, normalize: str, dtype: np.dtype) -> Normalization:
        """``"auto"``, ``"percentile"`` or ``"none"`` from a sample of the pixels."""
        if not np.isfinite(sample).all():
            raise DeblurInputError("The image contains NaN or infinite values; replace them (e.g. np.nan_to_num) "
                                   "first.")
        if normalize == "none":
            # taken as it is: values outside [0, 1] would be clipped away (a 0-255 image came back half white)
            if sample.size and (sample.min() < -UNIT_SLACK or sample.max() > 1.0 + UNIT_SLACK):
                raise DeblurInputError(
                    f"normalize='none' takes images already in [0, 1]; this one spans {sample.min():.4g} to "
                    f"{sample.max():.4g}: use normalize='auto', or (lo, hi) for the values that map to 0 and 1."
                )
            return cls(0.0, 1.0, dtype)
        if normalize == "auto" and dtype.kind == "f" and sample.min() >= 0.0 and sample.max() <= 1.0:
            return cls(0.0, 1.0, dtype)
        lo, hi = np.percentile(sample, PERCENTILES)
        if not hi > lo:  # a flat image: any range maps it reversibly
            hi = lo + 1.0
        return cls(float(lo), float(hi), dtype)

    def to_unit(self, a: np.ndarray) -> np.ndarray:
        out = (np.asarray(a, dtype=np.float32) - np.float32(self.lo)) / np.float32(self.hi - self.lo)
        return np.clip(out, 0.0, 1.0, out=out)

    def from_unit(self, y: np.ndarray) -> np.ndarray:
        out = np.asarray(y, dtype=np.float64) * (self.hi - self.lo) + self.lo
        if self.dtype.kind in "ui":
            info = np.iinfo(self.dtype)
            return np.clip(np.rint(out), info.min, info.max).astype(self.dtype)
        return out.astype(self.dtype)


def split_channels(plane: np.ndarray, rgb: bool) -> tuple[np.ndarray, str]:
    """(Y, X[, C]) float plane -> (RGB (Y, X, 3) for the network, kind); RGBA's alpha is left to the caller."""
    if not rgb:
        return np.repeat(plane[..., None], 3, axis=-1), "grey"
    c = plane.shape[-1]
    if c in (3, 4):
        return plane[..., :3], "rgb" if c == 3 else "rgba"
    if c == 1:
        return np.repeat(plane, 3, axis=-1), "grey1"
    raise DeblurInputError(f"{c} channels: the network takes greyscale, RGB or RGBA.")


def merge_channels(rgb: np.ndarray, kind: str) -> np.ndarray:
    """The network's RGB back to the channels of :func:`split_channels`' plane (RGBA: its RGB)."""
    if kind == "grey":
        return rgb.mean(axis=-1)
    if kind == "grey1":
        return rgb.mean(axis=-1, keepdims=True)
    return rgb
