"""The base of every pair dataset (:class:`PairDataset`): item keys and their randomness, crops, augmentation,
subsets; and the size check of a run's pairs (:func:`fit_patch`).

Greyscale images are repeated to RGB, an alpha channel is dropped, 8-bit and 16-bit files are scaled by their
maximum.  An item is a function of its *key* only, never of hidden state: ``dataset[i]`` always gives the same
pair (deterministic crops: what validation wants), and the trainer asks for ``dataset[(i, seed, draw)]``,
``draw`` counting the samples drawn so far; the crop position, flips/rotation, focus and aperture come from
``numpy.random.default_rng([seed, draw, i])``.  So a run is reproducible and resumable exactly, whatever the
number of data-loader workers, and the ranks of a multi-process run draw different samples.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from ...errors import TrainingError
from ...io.pixels import to_float, to_rgb

__all__ = ["CROPS", "PairDataset", "fit_patch"]

CROPS = ("random", "center", "full")


# --------------------------------------------------------------------------- helpers
def _rng_for(key, default_seed: int, n: int) -> tuple[int, np.random.Generator, int]:
    """(index, rng, draw) from an item key: ``i`` or ``(i, seed, draw)``."""
    if isinstance(key, tuple):
        if len(key) != 3:
            raise TrainingError(f"a dataset key is an int or a tuple (index, seed, draw), got {key!r}")
        index, seed, draw = (int(k) for k in key)
    else:
        index, seed, draw = int(key), int(default_seed), -1
    if n == 0:
        raise IndexError("the dataset is empty")
    if index < 0:
        index += n
    if not 0 <= index < n:
        raise IndexError(f"index {index} out of range for a dataset of {n} items")
    # draw == -1 marks a plain int key: deterministic per index
    rng = np.random.default_rng([seed & 0xFFFFFFFFFFFF, draw + 1, index])
    return index, rng, draw


def _crop_box(h: int, w: int, patch: int, mode: str, rng: np.random.Generator) -> tuple[int, int]:
    if mode == "center":
        return max(0, (h - patch) // 2), max(0, (w - patch) // 2)
    y0 = int(rng.integers(0, max(h - patch, 0) + 1))
    x0 = int(rng.integers(0, max(w - patch, 0) + 1))
    return y0, x0


# Single-scene validation bands (see split): the last ``fraction`` of an image's / a view's longer
# side, at least 16 px wider than the refocus border (``margin``) on each side.
def _band_axis(h: int, w: int) -> int:
    return 1 if w >= h else 0


def _band_width(size: int, fraction: float, margin: int = 0) -> int:
    return max(2 * margin + 16, int(round(fraction * size)))


def _band_shape(hw: tuple[int, int], side: str, fraction: float) -> tuple[int, int]:
    """The (H, W) that :func:`_cut_band` leaves of an (H, W) image."""
    h, w = _cut_band(np.empty((*hw, 0)), side, fraction).shape[:2]
    return h, w


def _cut_band(a: np.ndarray, side: str, fraction: float) -> np.ndarray:
    """The validation band (the last ``fraction`` of the longer side) or the training rest."""
    axis = _band_axis(*a.shape[:2])
    cut = a.shape[axis] - _band_width(a.shape[axis], fraction)
    part = slice(cut, None) if side == "val" else slice(0, cut)
    return a[:, part] if axis else a[part]


def _pad_to(a: np.ndarray, patch: int) -> np.ndarray:
    ph, pw = max(0, patch - a.shape[0]), max(0, patch - a.shape[1])
    if ph == 0 and pw == 0:
        return a
    pads = ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)) + ((0, 0),) * (a.ndim - 2)
    if ph < a.shape[0] and pw < a.shape[1]:
        return np.pad(a, pads, mode="reflect")
    return np.pad(a, pads, mode="edge")


def _augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One of the 8 flips / 90-degree rotations (rotations only when square)."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        if a.shape[0] == a.shape[1] and k:
            a = np.rot90(a, k, axes=(0, 1))
        elif k == 2:  # non-square: a 180-degree turn keeps the shape
            a = a[::-1, ::-1]
        if flip:
            a = a[:, ::-1]
        out.append(a)
    return out


def _tensor(a: np.ndarray, signed: bool) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), dtype=np.float32))
    if signed:
        t = t.mul_(2).sub_(1)
    return t


def _check_patch(patch, what="patch") -> int | None:
    if patch is None:
        return None
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 8:
        raise TrainingError(f"{what} must be an int >= 8 (pixels) or None, got {patch!r}")
    return int(patch)


# --------------------------------------------------------------------------- base
_Dataset = TypeVar("_Dataset", bound="PairDataset")


class PairDataset(torch.utils.data.Dataset):
    """Base class: ``(blurred, sharp)`` float32 tensors (3, H, W) in [0, 1] (``signed=True``: [-1, 1], the
    network's own range).

    ``crop="random"`` takes a random ``patch`` x ``patch`` window (padded when the image is smaller),
    ``"center"`` the central one, ``"full"`` the whole image; ``augment=True`` applies one of the 8 flips/90-degree
    rotations (rotations only for square crops), the same to both images.  Subclasses implement ``_n_items()``,
    ``_load(j, rng, draw)`` (two (H, W[, C]) arrays of uint8/uint16/float, possibly larger than the patch),
    ``_names()`` and ``_groups()``; this class handles subsets, crops, augmentation and conversion.
    """

    value_range = (0.0, 1.0)
    #: ("train" | "val", fraction): every image cut to the part a single-scene split gives that side
    #: (see split); a class default so that copies made by options()/subset() keep it
    _band: tuple[str, float] | None = None

    def __init__(self, *, patch=None, crop=None, augment=None, seed: int = 0, signed: bool = False):
        self.patch = _check_patch(patch)
        if crop is None:
            crop = "random" if self.patch is not None else "full"
        if crop not in CROPS:
            raise TrainingError(f"crop must be one of {CROPS}, got {crop!r}")
        if crop != "full" and self.patch is None:
            raise TrainingError(f"crop={crop!r} needs a patch size; pass patch=... or crop='full'")
        self.crop = crop
        self.augment = (crop == "random") if augment is None else bool(augment)
        self.seed = int(seed)
        self.signed = bool(signed)
        self._index: list[int] | None = None  # a subset: positions in the full item list
        if signed:
            self.value_range = (-1.0, 1.0)

    # -- to implement
    def _n_items(self) -> int:
        raise NotImplementedError

    def _load(self, j: int, rng: np.random.Generator, draw: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _names(self) -> list[str]:
        return [self._name(j) for j in range(self._n_items())]

    def _name(self, j: int) -> str:
        return str(j)

    def _groups(self) -> list[str]:
        return self._names()

    def describe(self) -> str:
        return f"{type(self).__name__} ({len(self)} items)"

    def _item_size(self, j: int) -> tuple[int, int] | None:
        """(H, W) of item ``j`` (of the full item list) before cropping, if known without decoding it."""
        return None

    def _item_source(self, j: int) -> str:
        """What to call item ``j`` in a message: its file, its light field."""
        return self._name(j)

    # -- public
    def item_sizes(self) -> list[tuple[str, tuple[int, int] | None]]:
        """``(source, (H, W) or None)`` of each item before cropping (a held-out band removed); None where the
        size is not known without decoding the item."""
        idx = range(self._n_items()) if self._index is None else self._index
        out = []
        for j in idx:
            hw = self._item_size(j)
            if hw is not None and self._band is not None:
                hw = _band_shape(hw, *self._band)
            out.append((self._item_source(j), hw))
        return out

    def fingerprint(self) -> str:
        """What identifies these data, to compare a resumed run's data with the run's own: :meth:`describe`, with
        a digest of the files (names and sizes) in place of a folder's path, so that the same files moved
        elsewhere are the same data and another folder is not."""
        return self.describe()

    def __len__(self) -> int:
        return self._n_items() if self._index is None else len(self._index)

    @property
    def names(self) -> list[str]:
        """A name per item (file stem, or scene and number)."""
        n = self._names()
        return n if self._index is None else [n[j] for j in self._index]

    @property
    def groups(self) -> list[str]:
        """The group (scene) of each item: :func:`split` keeps a group on one side."""
        g = self._groups()
        return g if self._index is None else [g[j] for j in self._index]

    def options(self: _Dataset, **kw) -> _Dataset:
        """A shallow copy with other ``patch``/``crop``/``augment``/``seed``/``signed``
        (sharing caches and the underlying data).  ``patch=None`` alone means
        full images; a new ``crop`` alone sets ``augment`` to ``crop == "random"``."""
        allowed = {"patch", "crop", "augment", "seed", "signed"}
        bad = set(kw) - allowed
        if bad:
            raise TrainingError(f"unknown dataset option(s) {sorted(bad)}; known: {sorted(allowed)}")
        patch = kw.get("patch", self.patch)
        crop = kw.get("crop")
        if crop is None:
            crop = "full" if patch is None else (self.crop if self.crop != "full" else "random")
        aug = kw.get("augment")
        if aug is None:
            aug = self.augment if crop == self.crop else crop == "random"
        new = copy.copy(self)
        PairDataset.__init__(new, patch=patch, crop=crop, augment=aug, seed=kw.get("seed", self.seed),
                             signed=kw.get("signed", self.signed))
        new._index = None if self._index is None else list(self._index)
        new._after_options()
        return new

    def _after_options(self) -> None:
        """Hook for subclasses whose caches depend on the options."""

    def subset(self, indices: Sequence[int]) -> PairDataset:
        """The items at ``indices`` (positions in this dataset)."""
        new = copy.copy(self)
        base = list(range(self._n_items())) if self._index is None else self._index
        new._index = [base[int(i)] for i in indices]
        return new

    def __getitem__(self, key):
        index, rng, draw = _rng_for(key, self.seed, len(self))
        j = index if self._index is None else self._index[index]
        blur, sharp = self._load(j, rng, draw)
        name = self._name(j)
        blur, sharp = to_rgb(np.asarray(blur), f"{name} (blurred)"), to_rgb(np.asarray(sharp), f"{name} (sharp)")
        if blur.shape[:2] != sharp.shape[:2]:
            raise TrainingError(
                f"pair {name!r}: the blurred image is {blur.shape[1]}x{blur.shape[0]} and the sharp one "
                f"{sharp.shape[1]}x{sharp.shape[0]}; both images of a pair must have the same size"
            )
        if self._band is not None:
            blur, sharp = _cut_band(blur, *self._band), _cut_band(sharp, *self._band)
        if self.crop != "full":
            p = self.patch
            h, w = blur.shape[:2]
            y0, x0 = _crop_box(h, w, p, self.crop, rng)
            blur, sharp = blur[y0 : y0 + p, x0 : x0 + p], sharp[y0 : y0 + p, x0 : x0 + p]
            blur, sharp = _pad_to(blur, p), _pad_to(sharp, p)
        if self.augment:
            blur, sharp = _augment([blur, sharp], rng)
        return _tensor(to_float(blur), self.signed), _tensor(to_float(sharp), self.signed)

    def __repr__(self) -> str:
        return f"<{self.describe()}; patch={self.patch}, crop={self.crop!r}, augment={self.augment}>"


# --------------------------------------------------------------------------- the size check
def _largest_patch(side: int) -> int:
    return side // 8 * 8


def _listed(items, limit=4) -> str:
    """``src (WxH px), ...`` of ``(i, src, (H, W))`` items, each source once, at most ``limit`` of them."""
    seen: dict[str, tuple[int, int]] = {}
    for _, src, hw in items:
        seen.setdefault(src, hw)
    more = f" and {len(seen) - limit} more" if len(seen) > limit else ""
    return ", ".join(f"{src} ({hw[1]}x{hw[0]} px)" for src, hw in list(seen.items())[:limit]) + more


def fit_patch(ds, patch: int | None, *, validation: bool = False, stacklevel: int = 6):
    """``ds`` with no crop larger than its pairs: the one size check of a run's pairs, training and validation (a
    crop larger than the image would be padded: made-up pixels to learn from, or to score).

    Training: the pairs smaller than ``patch`` on either side are left out, which a warning names; a
    :class:`TrainingError` naming them when no pair is large enough.  Validation (``validation=True``, ``patch``
    being ``val_patch``): every pair is kept and the crop shrinks to the smallest pair's shorter side, which a
    warning says, so that ``val_patch`` (which the command line and the Train widget leave at its default) never
    stops a run; only pairs under 8x8 px, too small for the network, are left out (a TrainingError when none is
    left).  Datasets that are not :class:`PairDataset` (no sizes known), and validation data scored whole, are
    returned as they are.  ``stacklevel`` of the warnings points at ``train()``.
    """
    if not isinstance(ds, PairDataset) or patch is None:
        return ds
    if not validation:
        return _leave_out(ds, patch, "training", stacklevel + 1)
    if ds.crop == "full":
        return ds
    ds = _leave_out(ds, 8, "validation", stacklevel + 1)
    known = [(i, src, hw) for i, (src, hw) in enumerate(ds.item_sizes()) if hw is not None]
    if not known:
        return ds
    smallest = min(known, key=lambda item: min(item[2]))
    side = min(smallest[2])
    if side >= patch:
        return ds
    warnings.warn(
        f"validation scores {side}-px crops, not {patch}-px ones (val_patch): the smallest validation pair is "
        f"{_listed([smallest])}, and a larger crop would score padding; give larger validation pairs, or "
        "val_patch=None to score whole images",
        RuntimeWarning, stacklevel=stacklevel,
    )
    return ds.options(patch=side)


def _leave_out(ds: PairDataset, patch: int, role: str, stacklevel: int):
    """``ds`` without the pairs smaller than ``patch`` (``role``: ``"training"``, or ``"validation"`` with
    ``patch=8``, the least the network takes), named in a warning (at ``stacklevel``, counted from here); a
    TrainingError when none is left."""
    sizes = ds.item_sizes()
    small = [(i, src, hw) for i, (src, hw) in enumerate(sizes) if hw is not None and min(hw) < patch]
    if not small:
        return ds
    largest, smallest = max(min(hw) for _, _, hw in small), min(min(hw) for _, _, hw in small)
    training = role == "training"
    if len(small) == len(sizes):
        if training:
            fix = (f"train with patch={_largest_patch(largest)} or less, or on larger images"
                   if largest >= 8 else "the network needs pairs of at least 8x8 px: train on larger images")
            raise TrainingError(f"no training pair is as large as the {patch}-px patch: {_listed(small)}; {fix}")
        raise TrainingError(f"no {role} pair is as large as {patch}x{patch} px, the least the network takes: "
                            f"{_listed(small)}; give larger {role} pairs")
    skip = {i for i, _, _ in small}
    if training:
        what = f"smaller than the {patch}-px patch"
        hint = f" (patch={_largest_patch(smallest)} would keep them all)" if smallest >= 8 else ""
    else:
        what, hint = f"under {patch}x{patch} px, too small for the network,", ""
    warnings.warn(
        f"{len(skip)} of the {len(sizes)} {role} pairs are {what} and are left out: {_listed(small)}{hint}",
        RuntimeWarning, stacklevel=stacklevel,
    )
    return ds.subset([i for i in range(len(sizes)) if i not in skip])
