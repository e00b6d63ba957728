"""Pairs refocused on the fly from light fields in memory (:class:`LightFieldPairs`), and the sampler that
refocuses one patch of a light field (shared with the procedural pairs)."""

from __future__ import annotations

import contextlib
import copy
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ...errors import LightFieldError, TrainingError
from ...io.pixels import to_uint8
from .base import PairDataset

__all__ = ["LightFieldPairs"]


@contextlib.contextmanager
def _one_thread():
    """Run torch single-threaded inside: light-field sampling is thousands of tiny
    torch operations, which two OpenMP threads on a busy CPU make tens of times
    slower (spin-waiting), not faster."""
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)

# --------------------------------------------------------------------------- light fields
def _lf_name(lf, i: int) -> str:
    m = getattr(lf, "metadata", {}) or {}
    n = m.get("name") or m.get("scene")
    if not n and m.get("source"):
        n = Path(str(m["source"]).rstrip("/\\")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(n)) if n else f"lightfield{i}"


def _refocus_margin(focus: tuple[float, float], max_off: int) -> int:
    """The border (px) a refocused crop reads beyond itself: focus planes up to ``max(|lo|, |hi|)`` px of disparity
    per view step, over views up to ``max_off`` steps from the centre (one pixel more for interpolation)."""
    return math.ceil(max(abs(focus[0]), abs(focus[1])) * max_off) + 1


class _LFSampler:
    """Refocus a random patch of one light field (shared by the on-the-fly datasets).

    The views are kept as float32, or as uint8 (``quantize=True``, a quarter
    of the memory: what procedural scenes use); only the cropped part of the
    light field is converted to float32 for refocusing.
    """

    def __init__(self, lf, name: str, focus=None, focus_margin: float = 0.25, quantize: bool = False):
        from ...lightfield.core import LightField

        if not isinstance(lf, LightField):
            raise TrainingError(f"expected a LightField, got {type(lf).__name__}")
        self.name = name
        if focus is None:
            from ...lightfield.disparity import lightfield_disparity_range

            lo, hi = lightfield_disparity_range(lf)
            width = max(hi - lo, 0.5)
            lo, hi = lo - focus_margin * width, hi + focus_margin * width
        else:
            lo, hi = (float(v) for v in focus)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise TrainingError(f"{name}: invalid focus range ({lo}, {hi})")
        self.focus = (float(lo), float(hi))
        data = lf.data.compute() if lf.is_lazy else lf.data
        if quantize:
            self.data = to_uint8(data)
        else:
            self.data = np.asarray(data, np.float32)
        self.view_mask = np.asarray(lf.view_mask, bool)
        self.grid = lf.grid
        self.view_shape = lf.view_shape
        V, U = lf.grid
        cv, cu = lf.center_index()
        # half-size of the odd sub-grid make_pairs refocuses (its largest view offset)
        self.max_off = max(min(cv, V - 1 - cv), min(cu, U - 1 - cu))
        self.margin = _refocus_margin(self.focus, self.max_off)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)

    def band(self, axis: int, start: int, stop: int, name: str | None = None) -> _LFSampler:
        """The same light field cut to rows (``axis=0``) or columns (``axis=1``) ``start:stop`` of
        every view (a view of the data, no copy): refocusing a band never reads pixels outside it."""
        new = copy.copy(self)
        cut = [slice(None)] * self.data.ndim
        cut[2 + axis] = slice(start, stop)
        new.data = self.data[tuple(cut)]
        y, x = self.view_shape
        new.view_shape = (stop - start, x) if axis == 0 else (y, stop - start)
        new.name = name or self.name
        return new

    def _lightfield(self, ys=slice(None), xs=slice(None)):
        from ...lightfield.core import LightField

        d = self.data[:, :, ys, xs]
        if d.dtype == np.uint8:
            d = d.astype(np.float32) * np.float32(1 / 255)
        # a crop of a light field checked when it was opened: no second pass over it for every sample
        return LightField(d, view_mask=self.view_mask, metadata={"name": self.name}, _checked=True)

    def sample(self, rng, patch: int | None, crop: str, apertures, aperture_shape):
        with _one_thread():
            return self._sample(rng, patch, crop, apertures, aperture_shape)

    def _sample(self, rng, patch, crop, apertures, aperture_shape):
        from ...lightfield.pairs import make_pairs

        Y, X = self.view_shape
        a = float(rng.uniform(*apertures)) if apertures[1] > apertures[0] else float(apertures[0])
        d = float(rng.uniform(*self.focus)) if self.focus[1] > self.focus[0] else self.focus[0]
        m = self.margin
        if crop == "full" or patch is None:
            c = min(math.ceil(abs(d) * self.max_off), max(0, (min(Y, X) - 16) // 2))
            pair = make_pairs(self._lightfield(), [a], [d], aperture_shape=aperture_shape, crop=c,
                              skip_duplicates=False, scene=self.name)[0]
            return pair.blurred, pair.sharp
        p = patch

        def corner(size):
            lo, hi = m, size - m - p  # keep the refocus border outside the patch when there is room
            if hi < lo:
                lo, hi = 0, max(0, size - p)
            if crop == "center":
                return (lo + hi) // 2
            return int(rng.integers(lo, hi + 1))

        y0, x0 = corner(Y), corner(X)
        ya, yb = max(0, y0 - m), min(Y, y0 + p + m)
        xa, xb = max(0, x0 - m), min(X, x0 + p + m)
        pair = make_pairs(self._lightfield(slice(ya, yb), slice(xa, xb)), [a], [d], aperture_shape=aperture_shape,
                          crop=None, skip_duplicates=False, scene=self.name)[0]
        oy, ox = y0 - ya, x0 - xa
        return pair.blurred[oy : oy + p, ox : ox + p], pair.sharp[oy : oy + p, ox : ox + p]


def _check_apertures(apertures) -> tuple[float, float]:
    try:
        a = [float(v) for v in np.atleast_1d(apertures)]
    except (TypeError, ValueError) as e:
        raise TrainingError(f"apertures must be a number or a (min, max) pair in (0, 1], got {apertures!r}") from e
    if len(a) == 1:
        a = a * 2
    if len(a) != 2 or not (0 < a[0] <= a[1] <= 1):
        raise TrainingError(f"apertures must be a number or a (min, max) pair in (0, 1], got {apertures!r}")
    return a[0], a[1]


class LightFieldPairs(PairDataset):
    """Pairs refocused on the fly from light fields in memory, no files written.

    Item ``i`` comes from light field ``i % len(lightfields)``, with a random focus disparity (uniform over the
    light field's disparity range widened by ``focus_margin``, or over ``focus``), a random aperture (uniform in
    ``apertures``) and a patch position; only the patch (plus the border its shifts need) is refocused
    (:func:`~napari_lfdeblur.lightfield.pairs.make_pairs`), the sharp image being the centre view, as in LFDOF.
    ``length`` (default 256 per light field) is the number of items, i.e. how often the light fields are sampled
    relative to other datasets they are mixed with.
    """

    def __init__(self, lightfields, *, length: int | None = None, patch=128, crop=None, augment=None,
                 apertures=(0.3, 1.0), aperture_shape="disk", focus=None, focus_margin: float = 0.25,
                 names: Sequence[str] | None = None, seed: int = 0, signed: bool = False):
        super().__init__(patch=patch, crop=crop, augment=augment, seed=seed, signed=signed)
        from ...lightfield.core import LightField

        if isinstance(lightfields, LightField):
            lightfields = [lightfields]
        lightfields = list(lightfields)
        if not lightfields:
            raise TrainingError("LightFieldPairs needs at least one light field")
        names = list(names) if names is not None else [_lf_name(lf, i) for i, lf in enumerate(lightfields)]
        try:
            self._samplers = [_LFSampler(lf, n, focus, focus_margin) for lf, n in zip(lightfields, names)]
        except LightFieldError as e:
            raise TrainingError(f"cannot make training pairs from the light field: {e}") from e
        self.apertures = _check_apertures(apertures)
        self.aperture_shape = aperture_shape
        self.length = int(length) if length is not None else 256 * len(lightfields)
        if self.length < 1:
            raise TrainingError(f"length must be >= 1, got {length}")

    def _n_items(self):
        return self.length

    def _name(self, j):
        return f"{self._samplers[j % len(self._samplers)].name}#{j}"

    def _groups(self):
        n = len(self._samplers)
        return [self._samplers[i % n].name for i in range(self.length)]

    def _load(self, j, rng, draw):
        s = self._samplers[j % len(self._samplers)]
        return s.sample(rng, self.patch, self.crop, self.apertures, self.aperture_shape)

    def _item_size(self, j):
        return tuple(self._samplers[j % len(self._samplers)].view_shape)

    def _item_source(self, j):
        return f"the views of light field {self._samplers[j % len(self._samplers)].name!r}"

    def describe(self) -> str:
        parts = ", ".join(f"{s.name} {s.grid[0]}x{s.grid[1]} views {s.view_shape[1]}x{s.view_shape[0]}"
                          f" focus {s.focus[0]:+.2f}..{s.focus[1]:+.2f}" for s in self._samplers)
        return f"light-field pairs on the fly ({parts}; apertures {self.apertures[0]:.2f}-{self.apertures[1]:.2f})"


