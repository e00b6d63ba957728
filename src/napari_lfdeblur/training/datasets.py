"""Datasets of (blurred, sharp) training pairs.

Every dataset here yields ``(blurred, sharp)``: two float32 torch tensors
(3, H, W) with values in **[0, 1]** (``signed=True`` gives [-1, 1], the
network's own input range, instead).  Greyscale images are repeated to RGB,
an alpha channel is dropped; 8-bit and 16-bit files are scaled by their
maximum.  The trainer works in [0, 1] and gives the network ``2 * x - 1``.

Sources (:func:`open_pairs` detects which from what it is given):

- :class:`FolderPairs`, pair folders on disk, in any of these layouts:

  * ``manifest.csv`` + ``blur/`` + ``sharp/``: written by
    :func:`~napari_lfdeblur.lightfield.pairs.write_pairs`; the manifest's
    ``blur`` and ``sharp`` columns give the files, ``scene`` the group used
    for validation splits (all pairs of one light field stay on one side);
  * DPDD: ``source/`` + ``target/`` (the DPDD release), or ``blur/`` +
    ``sharp/`` (``input/`` + ``target/``, ``blurred/`` + ``sharp/``), files
    paired by equal names (the extension may differ);
  * LFDOF: ``input/`` + ``ground_truth/``, several blurred inputs
    ``input/NAME_<anything>.png`` (or ``input/NAME/*.png``) per all-in-focus
    ``ground_truth/NAME.png``; ``NAME`` is the group.

  Images are decoded when an item is asked for, cropped in their stored
  integer type, and only then converted to float.  Decoded images are kept
  (as uint8/uint16, never float) up to ``cache_mb`` megabytes (default
  1024; ``cache=False`` keeps nothing): 60 DPDD pairs of 1024x1024 take
  360 MB.

- :class:`LightFieldPairs`: pairs made on the fly from light fields in
  memory (:class:`~napari_lfdeblur.lightfield.core.LightField`), no files
  written: each item picks a light field, a random focus disparity (uniform
  over the light field's disparity range widened by ``focus_margin``), a
  random aperture (uniform in ``apertures``), and a patch position; only the
  patch (plus the border its shifts need) is refocused
  (:func:`~napari_lfdeblur.lightfield.pairs.make_pairs` on the cropped light
  field), the sharp image being the centre view, as in LFDOF.

- :class:`ProceduralPairs`: the same on procedural light fields
  (:func:`~napari_lfdeblur.lightfield.synthetic.synthetic_lightfield`) with
  random seeds, an endless supply of scenes.  A pool of ``pool`` scenes is
  kept; each pool slot is replaced by a new scene every ``refresh`` draws
  (staggered, so one new scene is rendered every ``refresh / pool`` draws).

Randomness.  An item is a function of its *key* only, never of hidden state:
``dataset[i]`` (an int) always gives the same pair (deterministic crops:
what validation wants), and the trainer asks for ``dataset[(i, seed,
draw)]``, where ``draw`` counts the samples drawn so far; the crop position,
flips/rotation, focus and aperture come from ``numpy.random.default_rng([seed,
draw, i])``.  So a run is reproducible and resumable exactly, whatever the
number of data-loader workers, and ranks of a multi-process run draw
different samples by drawing different ``draw`` numbers.

Crops and augmentation (``patch``, ``crop``, ``augment``): ``crop="random"``
takes a random ``patch`` x ``patch`` window (reflect-padded when the image
is smaller), ``"center"`` the central one, ``"full"`` the whole image.
``augment=True`` applies one of the 8 flips/90-degree rotations (rotations
only for square crops), identically to both images.

Validation split: :func:`split` holds out whole groups (scenes / names),
deterministically from a seed, and returns the validation part with centre
crops (or full images) and no augmentation.  A single light field has no
scene to spare (nor has a pair folder written from one): a band along
the edge of its views (images) is held out instead.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..errors import LightFieldError, TrainingError
from ..io.formats import image_files
from ..io.pixels import to_float, to_rgb, to_uint8
from ..io.read import read_image

__all__ = [
    "ConcatPairs",
    "FolderPairs",
    "LightFieldPairs",
    "PairDataset",
    "ProceduralPairs",
    "detect_layout",
    "image_files",
    "open_pairs",
    "split",
]

CROPS = ("random", "center", "full")

# (blurred folder, sharp folder, layout name): equal-name layouts, first match wins
_EQUAL_NAME_DIRS = (
    ("blur", "sharp"),
    ("source", "target"),
    ("blurred", "sharp"),
    ("input", "target"),
    ("blur", "gt"),
    ("input", "gt"),
)
_LFDOF_DIRS = (("input", "ground_truth"), ("input", "groundtruth"), ("input", "ground-truth"))


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


def _band_val_options(width: int, across: int, val_patch: int | None, margin: int = 0) -> dict:
    """Centre ``val_patch`` crops where the band holds them, else the whole band."""
    if val_patch is not None and min(width, across) >= val_patch + 2 * margin:
        return {"patch": val_patch, "crop": "center"}
    return {"patch": None, "crop": "full"}


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
    mode = "reflect" if (ph < a.shape[0] and pw < a.shape[1]) else "edge"
    return np.pad(a, pads, mode=mode)


def _augment(arrays: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """One of the 8 flips / 90-degree rotations (rotations only when square)."""
    k = int(rng.integers(4))
    flip = bool(rng.integers(2))
    out = []
    for a in arrays:
        if a.shape[0] == a.shape[1] and k:
            a = np.rot90(a, k, axes=(0, 1))
        elif k in (2,):  # non-square: a 180-degree turn keeps the shape
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


def _check_patch(patch, what="patch") -> int | None:
    if patch is None:
        return None
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 8:
        raise TrainingError(f"{what} must be an int >= 8 (pixels) or None, got {patch!r}")
    return int(patch)


# --------------------------------------------------------------------------- base
class PairDataset(torch.utils.data.Dataset):
    """Base class: ``(blurred, sharp)`` float32 tensors (3, H, W) in [0, 1].

    Subclasses implement ``_n_items()``, ``_load(j, rng, draw)`` (returning
    two (H, W[, C]) arrays of any of uint8/uint16/float, possibly larger than
    the patch), ``_names()`` and ``_groups()``; this class handles subsets,
    crops, augmentation and conversion.
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

    # -- public
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

    def options(self, **kw) -> PairDataset:
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


# --------------------------------------------------------------------------- folders
def _subdir(folder: Path, name: str) -> Path | None:
    for p in folder.iterdir():
        if p.is_dir() and p.name.lower() == name:
            return p
    return None


def detect_layout(path) -> str | None:
    """``"manifest"``, ``"dpdd"``, ``"lfdof"`` or None (not a pair folder)."""
    p = Path(path)
    if not p.is_dir():
        return None
    if (p / "manifest.csv").is_file():
        return "manifest"
    for b, s in _LFDOF_DIRS:
        if _subdir(p, b) is not None and _subdir(p, s) is not None:
            return "lfdof"
    for b, s in _EQUAL_NAME_DIRS:
        if _subdir(p, b) is not None and _subdir(p, s) is not None:
            return "dpdd"
    return None


_LAYOUT_HELP = (
    "a pair folder has blur/ + sharp/ (or source/ + target/) with equal file names (DPDD), "
    "input/ + ground_truth/ with input/NAME_*.png per ground_truth/NAME.png (LFDOF), "
    "or blur/ + sharp/ + manifest.csv (written by write_pairs)"
)


def _block_means(a: np.ndarray, block: int) -> np.ndarray:
    h, w = a.shape[0] // block * block, a.shape[1] // block * block
    a = a[:h, :w]
    return a.reshape(h // block, block, w // block, block, -1).mean(axis=(1, 3)).reshape(-1, a.shape[-1])


def match_exposure(sharp: np.ndarray, blur: np.ndarray, block: int = 32) -> np.ndarray:
    """``sharp`` with the exposure of ``blur``: per channel, the gain and offset that best map
    sharp onto blur, applied and clipped to the dtype's range.

    The fit compares means of ``block`` x ``block`` blocks, where defocus blur (which keeps
    local means) no longer shows: fitted pixel by pixel, the blur would pass for lower
    contrast and the gain would shrink.  Two-shot pairs differ in exposure as well as in
    focus: on the 60 DPDD pairs here the blurry and the sharp shot's means differ by up to
    7 % of the range, which costs the input up to 5 dB PSNR that no deblurring can win back.
    Training on matched targets teaches deblurring, not a guess at the other shot's exposure.
    """
    if sharp.shape != blur.shape:
        return sharp
    kind = np.dtype(sharp.dtype)
    a, b = sharp.astype(np.float64), blur.astype(np.float64)
    a2, b2 = (a[..., None], b[..., None]) if a.ndim == 2 else (a, b)
    block = max(1, min(block, a2.shape[0] // 4, a2.shape[1] // 4))
    xs, ys = _block_means(a2, block), _block_means(b2, block)
    out = np.empty_like(a2)
    for c in range(a2.shape[-1]):
        x, y = xs[:, c], ys[:, c]
        var = x.var()
        gain = float(((x - x.mean()) * (y - y.mean())).mean() / var) if var > 0 else 1.0
        offset = float(y.mean() - gain * x.mean())
        out[..., c] = a2[..., c] * gain + offset
    out = out.reshape(a.shape)
    hi = float(np.iinfo(kind).max) if kind.kind in "ui" else 1.0
    out = np.clip(out, 0.0, hi)
    return np.rint(out).astype(kind) if kind.kind in "ui" else out.astype(kind)


class FolderPairs(PairDataset):
    """Pairs from a folder on disk (layouts: see the module docstring)."""

    def __init__(self, path, *, layout: str | None = None, patch=None, crop=None, augment=None, seed: int = 0,
                 signed: bool = False, cache: bool | str = "auto", cache_mb: float = 1024,
                 match_exposure: bool = False):
        super().__init__(patch=patch, crop=crop, augment=augment, seed=seed, signed=signed)
        self.path = Path(path).expanduser()
        #: map each sharp image's exposure onto its blurry shot's (see match_exposure)
        self.match_exposure = bool(match_exposure)
        if not self.path.is_dir():
            raise TrainingError(f"pair folder not found: {self.path}" if not self.path.exists()
                                else f"{self.path} is a file; pass the pair folder ({_LAYOUT_HELP})")
        found = detect_layout(self.path)
        layout = layout or found
        if layout is None:
            hint = ""
            subs = sorted(p.name for p in self.path.iterdir() if p.is_dir())
            if any(s.lower().startswith(("train_", "test_", "val_")) for s in subs):
                hint = f" (it holds {', '.join(subs[:6])}: pass one of those folders, e.g. {self.path / subs[0]})"
            raise TrainingError(f"{self.path} is not a pair folder{hint}: {_LAYOUT_HELP}")
        if layout not in ("manifest", "dpdd", "lfdof"):
            raise TrainingError(f"layout must be 'manifest', 'dpdd' or 'lfdof', got {layout!r}")
        self.layout = layout
        entries = {"manifest": self._scan_manifest, "dpdd": self._scan_equal, "lfdof": self._scan_lfdof}[layout]()
        if not entries:
            raise TrainingError(f"{self.path} ({layout} layout) holds no pairs: {_LAYOUT_HELP}")
        self._entries = entries  # (name, blur path, sharp path, group)
        self._cache_on = cache not in (False, None, "none", "off")
        self._cache_limit = math.inf if cache is True else float(cache_mb) * 2**20
        self._cache: dict[str, np.ndarray] = {}
        self._cache_bytes = 0

    # -- scanning
    def _scan_manifest(self):
        out, missing = [], []
        with open(self.path / "manifest.csv", newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                if not r.get("name"):
                    continue
                b, s = self.path / r.get("blur", ""), self.path / r.get("sharp", "")
                gone = [str(p.relative_to(self.path)) for p in (b, s) if not p.is_file()]
                if gone:  # write_pairs lists a pair only once its files are written: these were moved or deleted
                    missing.extend(gone)
                    continue
                out.append((r["name"], b, s, r.get("scene") or r["name"]))
        if missing:
            raise TrainingError(
                f"{self.path / 'manifest.csv'} lists {len(missing)} image file(s) that are not in {self.path} "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): restore them, or delete their "
                "rows from manifest.csv"
            )
        return out

    def _scan_equal(self):
        for bd, sd in _EQUAL_NAME_DIRS:
            b, s = _subdir(self.path, bd), _subdir(self.path, sd)
            if b is not None and s is not None:
                break
        sharp = {}
        for f in image_files(s):
            sharp.setdefault(f.stem, f)
        out, missing = [], []
        for f in image_files(b):
            if f.stem in sharp:
                out.append((f.stem, f, sharp[f.stem], f.stem))
            else:
                missing.append(f.name)
        if missing and out:
            warnings.warn(
                f"{len(missing)} blurred image(s) in {b} have no sharp image of the same name in {s} and are "
                f"skipped (first: {missing[0]})",
                RuntimeWarning,
                stacklevel=3,
            )
        elif missing:
            raise TrainingError(
                f"no blurred image in {b} has a sharp image of the same name in {s} (e.g. {missing[0]}); "
                "pairs are matched by file name (the extension may differ)"
            )
        return out

    def _scan_lfdof(self):
        for bd, sd in _LFDOF_DIRS:
            b, s = _subdir(self.path, bd), _subdir(self.path, sd)
            if b is not None and s is not None:
                break
        gt = {f.stem: f for f in image_files(s)}
        out, missing = [], []
        # flat input/NAME_*.png, or input/NAME/*.png
        candidates = [(f, None) for f in image_files(b)]
        for d in sorted(p for p in b.iterdir() if p.is_dir()):
            candidates += [(f, d.name) for f in image_files(d)]
        for f, sub in candidates:
            group = None
            if sub is not None:
                group = sub if sub in gt else None
            else:
                parts = f.stem.split("_")
                for k in range(len(parts), 0, -1):
                    cand = "_".join(parts[:k])
                    if cand in gt:
                        group = cand
                        break
            if group is None:
                missing.append(f.name)
                continue
            name = f.stem if sub is None else f"{sub}_{f.stem}"
            out.append((name, f, gt[group], group))
        if missing and out:
            warnings.warn(
                f"{len(missing)} input image(s) in {b} match no ground_truth/NAME image and are skipped "
                f"(first: {missing[0]}); inputs must be named NAME_<anything> or sit in input/NAME/",
                RuntimeWarning,
                stacklevel=3,
            )
        elif missing:
            raise TrainingError(
                f"no input image in {b} matches a ground-truth image in {s} (e.g. {missing[0]}); inputs must be "
                "named NAME_<anything>.png for ground_truth/NAME.png, or sit in input/NAME/"
            )
        return out

    # -- items
    def _n_items(self):
        return len(self._entries)

    def _names(self):
        return [e[0] for e in self._entries]

    def _name(self, j):
        return self._entries[j][0]

    def _groups(self):
        return [e[3] for e in self._entries]

    def _cached(self, key: str, make) -> np.ndarray:
        """``make()``, kept in the in-memory cache under ``key`` while it has room."""
        a = self._cache.get(key)
        if a is not None:
            return a
        a = make()
        if self._cache_on and self._cache_bytes + a.nbytes <= self._cache_limit:
            self._cache[key] = a
            self._cache_bytes += a.nbytes
        return a

    def _read(self, path: Path) -> np.ndarray:
        return self._cached(str(path), lambda: read_image(path))

    def _load(self, j, rng, draw):
        _, b, s, _ = self._entries[j]
        blur = self._read(b)
        if self.match_exposure:
            return blur, self._cached(f"{s}|exposure", lambda: match_exposure(self._read(s), blur))
        return blur, self._read(s)

    def describe(self) -> str:
        groups = len(set(self.groups))
        extra = ", sharp exposure matched to the blurry shot" if self.match_exposure else ""
        if self._band is not None:
            side, fraction = self._band
            extra += (f", the last {fraction:.0%} of each image's longer side (held out)" if side == "val"
                      else f", without the last {fraction:.0%} of each image's longer side (held out)")
        return f"pair folder {self.path} ({self.layout} layout, {len(self)} pairs, {groups} scenes{extra})"


# --------------------------------------------------------------------------- light fields
def _lf_name(lf, i: int) -> str:
    m = getattr(lf, "metadata", {}) or {}
    n = m.get("name") or m.get("scene")
    if not n and m.get("source"):
        n = Path(str(m["source"]).rstrip("/\\")).name
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(n)) if n else f"lightfield{i}"


class _LFSampler:
    """Refocus a random patch of one light field (shared by the on-the-fly datasets).

    The views are kept as float32, or as uint8 (``quantize=True``, a quarter
    of the memory: what procedural scenes use); only the cropped part of the
    light field is converted to float32 for refocusing.
    """

    def __init__(self, lf, name: str, focus=None, focus_margin: float = 0.25, quantize: bool = False):
        from ..lightfield.core import LightField

        if not isinstance(lf, LightField):
            raise TrainingError(f"expected a LightField, got {type(lf).__name__}")
        self.name = name
        if focus is None:
            from ..lightfield.disparity import lightfield_disparity_range

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
        self.margin = math.ceil(max(abs(lo), abs(hi)) * self.max_off) + 1

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
        shape = list(self.view_shape)
        shape[axis] = stop - start
        new.view_shape = tuple(shape)
        new.name = name or self.name
        return new

    def _lightfield(self, ys=slice(None), xs=slice(None)):
        from ..lightfield.core import LightField

        d = self.data[:, :, ys, xs]
        if d.dtype == np.uint8:
            d = d.astype(np.float32) * np.float32(1 / 255)
        return LightField(d, view_mask=self.view_mask, metadata={"name": self.name})

    def sample(self, rng, patch: int | None, crop: str, apertures, aperture_shape):
        with _one_thread():
            return self._sample(rng, patch, crop, apertures, aperture_shape)

    def _sample(self, rng, patch, crop, apertures, aperture_shape):
        from ..lightfield.pairs import make_pairs

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
    """Pairs refocused on the fly from light fields in memory (see the module docstring).

    Item ``i`` comes from light field ``i % len(lightfields)``; ``length``
    (default 256 per light field) is the number of items, i.e. how often the
    light fields are sampled relative to other datasets they are mixed with.
    """

    def __init__(self, lightfields, *, length: int | None = None, patch=128, crop=None, augment=None,
                 apertures=(0.3, 1.0), aperture_shape="disk", focus=None, focus_margin: float = 0.25,
                 names: Sequence[str] | None = None, seed: int = 0, signed: bool = False):
        super().__init__(patch=patch, crop=crop, augment=augment, seed=seed, signed=signed)
        from ..lightfield.core import LightField

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

    def describe(self) -> str:
        parts = ", ".join(f"{s.name} {s.grid[0]}x{s.grid[1]} views {s.view_shape[1]}x{s.view_shape[0]}"
                          f" focus {s.focus[0]:+.2f}..{s.focus[1]:+.2f}" for s in self._samplers)
        return f"light-field pairs on the fly ({parts}; apertures {self.apertures[0]:.2f}-{self.apertures[1]:.2f})"


class ProceduralPairs(PairDataset):
    """Pairs from procedural light fields with random seeds, made on the fly.

    Scenes are ``views`` x ``views`` grids of ``size`` px (default: patch +
    96) with 3 to 7 layers (``layers``) at disparities in
    ``disparity_range``; the focus is drawn from that range widened by
    ``focus_margin`` of its width on each side.  Dense grids and small
    disparities keep the synthetic-aperture blur smooth: a focus error of
    ``d`` px per view step puts the views' copies ``d`` px apart (a blur of
    about ``d * (views - 1)`` px), and above ~1.5 px the blur shows discrete
    copies, hence the default 11x11 views and +-1 px.  Scenes are kept as
    uint8 (11x11 views of 224 px: 18 MB each).

    ``images`` (sharp photographs, e.g. from the kind of camera or microscope
    you will deblur) texture the layers instead of the bundled textures: the
    pairs then carry those images' own detail, noise and colours.

    ``length`` is a virtual epoch (the supply is endless).  Training draws
    (keys ``(i, seed, draw)``) pick one of ``pool`` scene slots; a slot gets a
    new scene every ``refresh`` draws (staggered between slots, so one scene
    is rendered every ``refresh / pool`` draws, about 0.3-1 s each on a CPU).
    A plain int key ``i`` gives item ``i`` its own scene and a fixed crop
    (what :meth:`heldout` validation sets use); those items are computed once
    and kept when ``length <= 256``.
    """

    def __init__(self, *, length: int = 100_000, patch=128, crop=None, augment=None, seed: int = 0,
                 views: int = 11, size: int | None = None, disparity_range=(-1.0, 1.0), layers=(3, 7),
                 apertures=(0.3, 1.0), aperture_shape="disk", focus_margin: float = 0.1, pool: int = 8,
                 refresh: int = 256, noise: float = 0.0, images=None, signed: bool = False):
        super().__init__(patch=patch, crop=crop, augment=augment, seed=seed, signed=signed)
        self.length = int(length)
        if images is not None:
            from ..lightfield.synthetic import check_images

            try:
                images = check_images(images)
            except Exception as e:
                raise TrainingError(f"ProceduralPairs: {e}") from e
        self.images = images
        self.views = int(views)
        self.size = int(size) if size is not None else (self.patch or 128) + 96
        self.disparity_range = (float(disparity_range[0]), float(disparity_range[1]))
        self.layers = (int(layers[0]), int(layers[1]))
        self.apertures = _check_apertures(apertures)
        self.aperture_shape = aperture_shape
        self.focus_margin = float(focus_margin)
        self.pool = max(1, int(pool))
        self.refresh = max(1, int(refresh))
        self.noise = float(noise)
        if self.length < 1 or self.views < 3 or not (self.layers[0] >= 1 and self.layers[1] >= self.layers[0]):
            raise TrainingError("ProceduralPairs: length >= 1, views >= 3 and 1 <= layers[0] <= layers[1] needed")
        if self.patch is not None and self.size < self.patch:
            raise TrainingError(f"ProceduralPairs: size ({self.size}) must be at least the patch ({self.patch})")
        self._lf_cache: OrderedDict[int, _LFSampler] = OrderedDict()
        self._items: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _after_options(self) -> None:
        self._items = {}  # fixed items depend on the crop

    def _n_items(self):
        return self.length

    def _name(self, j):
        return f"procedural{self.seed}#{j}"

    def _groups(self):
        return ["procedural"] * self.length

    def scene_seed(self, slot: int, generation: int) -> int:
        """The synthetic_lightfield seed of a pool slot's ``generation``-th scene (slot -1: fixed items)."""
        return int(np.random.SeedSequence([self.seed & 0xFFFFFFFF, 7919, slot + 1, generation]).generate_state(1)[0])

    def _scene(self, lf_seed: int) -> _LFSampler:
        s = self._lf_cache.get(lf_seed)
        if s is not None:
            self._lf_cache.move_to_end(lf_seed)
            return s
        from ..lightfield.synthetic import synthetic_lightfield

        n_layers = int(np.random.default_rng(lf_seed).integers(self.layers[0], self.layers[1] + 1))
        with _one_thread():
            lf = synthetic_lightfield(seed=lf_seed, views=self.views, size=self.size, n_layers=n_layers,
                                      disparity_range=self.disparity_range, noise=self.noise, images=self.images)
        lo, hi = self.disparity_range
        w = hi - lo
        s = _LFSampler(lf, f"procedural_{lf_seed}", focus=(lo - self.focus_margin * w, hi + self.focus_margin * w),
                       quantize=True)
        self._lf_cache[lf_seed] = s
        while len(self._lf_cache) > self.pool + 1:
            self._lf_cache.popitem(last=False)
        return s

    def _load(self, j, rng, draw):
        if draw < 0:  # a plain int key: item j has its own scene and a fixed crop
            hit = self._items.get(j)
            if hit is not None:
                return hit
            out = self._scene(self.scene_seed(-1, j)).sample(rng, self.patch, self.crop, self.apertures,
                                                             self.aperture_shape)
            if self.length <= 256:
                self._items[j] = out
            return out
        slot = int(rng.integers(self.pool))
        gen = (draw + slot * self.refresh // self.pool) // self.refresh
        return self._scene(self.scene_seed(slot, gen)).sample(rng, self.patch, self.crop, self.apertures,
                                                              self.aperture_shape)

    def heldout(self, n: int = 16, **kw) -> ProceduralPairs:
        """``n`` fixed validation items from scenes no training draw uses (another seed stream)."""
        new = copy.copy(self)
        new.length = int(n)
        new.seed = self.seed + 1_000_003
        new._lf_cache = OrderedDict()
        new._items = {}
        new._index = None
        if kw:
            new = new.options(**kw)
        return new

    def describe(self) -> str:
        lo, hi = self.disparity_range
        n = len(self.images) if self.images is not None else 0
        tex = f", textured with {n} of your image{'s' if n != 1 else ''}" if n else ""
        return (f"procedural light fields on the fly ({self.views}x{self.views} views, {self.size}px, disparity "
                f"{lo:+.2f}..{hi:+.2f}, apertures {self.apertures[0]:.2f}-{self.apertures[1]:.2f}{tex}, "
                f"seed {self.seed})")


# --------------------------------------------------------------------------- concatenation
class ConcatPairs(PairDataset):
    """Several pair datasets as one; items are sampled in proportion to their lengths."""

    def __init__(self, datasets: Sequence[PairDataset]):
        datasets = [d for d in datasets]
        if not datasets:
            raise TrainingError("no datasets to combine")
        for d in datasets:
            if not isinstance(d, PairDataset):
                raise TrainingError(f"ConcatPairs combines PairDatasets, got {type(d).__name__}")
        first = datasets[0]
        super().__init__(patch=first.patch, crop=first.crop, augment=first.augment, seed=first.seed,
                         signed=first.signed)
        self.datasets = datasets
        self._offsets = np.cumsum([0] + [len(d) for d in datasets]).tolist()

    def _n_items(self):
        return self._offsets[-1]

    def _names(self):
        return [n for d in self.datasets for n in d.names]

    def _groups(self):
        return [g for d in self.datasets for g in d.groups]

    def options(self, **kw):
        return ConcatPairs([d.options(**kw) for d in self.datasets])

    def subset(self, indices):
        parts: list[list[int]] = [[] for _ in self.datasets]
        for i in indices:
            k = int(np.searchsorted(self._offsets, int(i), side="right")) - 1
            parts[k].append(int(i) - self._offsets[k])
        return ConcatPairs([d.subset(p) for d, p in zip(self.datasets, parts) if p])

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, seed, draw = (int(k) for k in key)
        else:
            index, seed, draw = int(key), None, None
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        k = int(np.searchsorted(self._offsets, index, side="right")) - 1
        local = index - self._offsets[k]
        return self.datasets[k][local if seed is None else (local, seed, draw)]

    def describe(self) -> str:
        return " + ".join(d.describe() for d in self.datasets)


# --------------------------------------------------------------------------- entry points
_PROCEDURAL_NAMES = ("synthetic", "procedural")


def open_pairs(source, *, patch=None, crop=None, augment=None, seed: int = 0, signed: bool = False,
               cache="auto", cache_mb: float = 1024, match_exposure: bool = False,
               **lightfield_options) -> PairDataset:
    """A pair dataset from (almost) anything: see the module docstring.

    ``source``:

    - a pair folder (manifest, DPDD or LFDOF layout, detected);
    - a light-field path (anything :func:`~napari_lfdeblur.read_lightfield`
      reads) or a :class:`~napari_lfdeblur.lightfield.core.LightField`:
      pairs refocused on the fly (:class:`LightFieldPairs`);
    - ``"synthetic"`` (or ``"procedural"``): procedural light fields
      (:class:`ProceduralPairs`);
    - a :class:`PairDataset` (returned, with any options given applied);
    - a list of the above: one dataset (:class:`ConcatPairs`).

    ``patch``/``crop``/``augment``/``seed``/``signed``: see
    :class:`PairDataset` (no patch = full images, for validation);
    ``cache``/``cache_mb``/``match_exposure`` (map each sharp shot onto its
    blurry shot's exposure, for real two-shot pairs: :func:`~napari_lfdeblur.training.match_exposure`):
    folders only; ``lightfield_options`` go to
    :class:`LightFieldPairs` / :class:`ProceduralPairs` (``length``,
    ``apertures``, ``focus``, ``views``, ...).
    """
    from ..lightfield.core import LightField

    common = {"patch": patch, "crop": crop, "augment": augment, "seed": seed, "signed": signed}
    if isinstance(source, PairDataset):
        given = {k: v for k, v in common.items() if v is not None and not (k in ("seed", "signed") and not v)}
        return source.options(**given) if given else source
    if isinstance(source, (list, tuple)):
        if not source:
            raise TrainingError("open_pairs got an empty list")
        def is_folder(s):
            return isinstance(s, (str, Path)) and not (isinstance(s, str) and s.strip().lower() in _PROCEDURAL_NAMES) \
                and detect_layout(Path(s).expanduser()) is not None

        # light-field options go to the light-field parts only
        parts = [open_pairs(s, patch=patch, crop=crop, augment=augment, seed=seed, signed=signed, cache=cache,
                            cache_mb=cache_mb, **({"match_exposure": match_exposure} if is_folder(s)
                                                  else lightfield_options)) for s in source]
        return parts[0] if len(parts) == 1 else ConcatPairs(parts)
    if isinstance(source, LightField):
        return LightFieldPairs([source], **{**common, "patch": patch if patch is not None else 128},
                               **lightfield_options)
    if isinstance(source, str) and source.strip().lower() in _PROCEDURAL_NAMES:
        return ProceduralPairs(**{**common, "patch": patch if patch is not None else 128}, **lightfield_options)
    if isinstance(source, (str, Path)) or hasattr(source, "__fspath__"):
        p = Path(source).expanduser()
        if not p.exists():
            raise TrainingError(f"training data not found: {p}")
        if detect_layout(p) is not None:
            if lightfield_options:
                raise TrainingError(f"options {sorted(lightfield_options)} apply to light fields, not pair folders")
            return FolderPairs(p, cache=cache, cache_mb=cache_mb, match_exposure=match_exposure, **common)
        from ..lightfield.readers import read_lightfield

        try:
            lf = read_lightfield(p)
        except LightFieldError as e:
            raise TrainingError(f"{p} is neither a pair folder ({_LAYOUT_HELP}) nor a light field ({e})") from e
        return LightFieldPairs([lf], **{**common, "patch": patch if patch is not None else 128},
                               **lightfield_options)
    raise TrainingError(
        f"cannot make training pairs from a {type(source).__name__}: give a pair folder, a light field (path or "
        "LightField), 'synthetic', a PairDataset or a list of these"
    )


def split(dataset: PairDataset, val_fraction: float | None = None, val_names: Sequence[str] | None = None, *,
          seed: int = 0, val_patch: int | None = 256, val_crop: str | None = None,
          val_count: int = 16) -> tuple[PairDataset, PairDataset | None]:
    """Split off validation pairs by group (scene), deterministically.

    ``val_names``: the groups (or item names) to hold out; otherwise
    ``val_fraction`` of the groups, drawn with ``seed`` from the sorted group
    names (at least one group, never all).  Procedural data has no scenes to
    hold out: its validation part is ``val_count`` fixed pairs from other
    scenes (:meth:`ProceduralPairs.heldout`).  Data of a single scene (one
    light field, or a pair folder written from one) hold out the last
    ``val_fraction`` of the views' / images' longer side instead (a band of
    pixels training never reads).

    The validation part gets ``crop=val_crop`` (default ``"center"`` with
    ``val_patch``, ``"full"`` when ``val_patch`` is None) and no augmentation.
    Returns ``(train, val)``; ``val`` is None when nothing is held out.
    """
    if not isinstance(dataset, PairDataset):
        raise TrainingError(f"split needs a PairDataset (from open_pairs), got {type(dataset).__name__}")
    if val_names is None and not val_fraction:
        return dataset, None
    if val_fraction is not None and not (0 < float(val_fraction) < 1):
        raise TrainingError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    crop = val_crop or ("center" if val_patch else "full")
    vopts = {"patch": val_patch if crop != "full" else None, "crop": crop, "augment": False}

    if isinstance(dataset, ConcatPairs):
        trains, vals = [], []
        for d in dataset.datasets:
            try:
                t, v = split(d, val_fraction, val_names, seed=seed, val_patch=val_patch, val_crop=val_crop,
                             val_count=val_count)
            except TrainingError:
                if val_names is None:
                    raise
                t, v = d, None  # these names belong to another part
            trains.append(t)
            if v is not None:
                vals.append(v)
        if val_names is not None and not vals:
            raise TrainingError(f"none of the validation names {list(val_names)[:5]} is in the data")
        train = trains[0] if len(trains) == 1 else ConcatPairs(trains)
        val = None if not vals else vals[0] if len(vals) == 1 else ConcatPairs(vals)
        return train, val
    if isinstance(dataset, ProceduralPairs):
        if val_names is not None:
            raise TrainingError("procedural pairs have no named scenes to hold out; use val_fraction")
        return dataset, dataset.heldout(val_count, **vopts)

    groups, names = dataset.groups, dataset.names
    unique = sorted(set(groups))
    if val_names is not None:
        wanted = {str(n) for n in val_names}
        known = set(unique) | set(names)
        unknown = sorted(wanted - known)
        if unknown:
            raise TrainingError(
                f"validation name(s) {unknown[:5]} not in the data (scenes are e.g. {unique[:5]})"
            )
        is_val = [g in wanted or n in wanted for g, n in zip(groups, names)]
    else:
        if len(unique) < 2 and isinstance(dataset, LightFieldPairs):
            return _split_lightfield_region(dataset, float(val_fraction), val_patch)
        if len(unique) < 2 and isinstance(dataset, FolderPairs):
            return _split_folder_band(dataset, float(val_fraction), val_patch)
        if len(unique) < 2:
            raise TrainingError(
                f"cannot hold out a fraction of {dataset.describe()}: it has a single scene ({unique[0]!r}); "
                "give separate validation data"
            )
        n_val = min(len(unique) - 1, max(1, round(float(val_fraction) * len(unique))))
        order = np.random.default_rng(seed).permutation(len(unique))
        chosen = {unique[i] for i in order[:n_val]}
        is_val = [g in chosen for g in groups]
    tr = [i for i, v in enumerate(is_val) if not v]
    va = [i for i, v in enumerate(is_val) if v]
    if not tr:
        raise TrainingError("the validation split leaves no training pairs")
    if isinstance(dataset, LightFieldPairs):
        # on-the-fly data: rebuild with the light fields of each side (lengths kept proportional)
        return _split_lightfields(dataset, {groups[i] for i in va}, vopts)
    return dataset.subset(tr), dataset.subset(va).options(**vopts)


def _split_lightfields(ds: LightFieldPairs, val_groups: set, vopts) -> tuple[PairDataset, PairDataset]:
    keep = [s for s in ds._samplers if s.name not in val_groups]
    held = [s for s in ds._samplers if s.name in val_groups]
    per = ds.length / len(ds._samplers)
    train = _with_samplers(ds, keep, per * len(keep))
    val = _with_samplers(ds, held, 4 * len(held)).options(**vopts)
    return train, val


def _with_samplers(ds: LightFieldPairs, samplers, length) -> LightFieldPairs:
    """A copy of ``ds`` drawing ``length`` items from ``samplers`` (the whole of them, no subset)."""
    new = copy.copy(ds)
    new._samplers = samplers
    new.length = max(1, round(length))
    new._index = None
    return new


def _split_lightfield_region(ds: LightFieldPairs, fraction: float, val_patch: int | None):
    """One light field: hold out a band of pixels instead of a scene.

    The last ``fraction`` of the views' longer side (rows or columns) becomes the validation
    band; training patches are refocused from the rest only, so validation scores pixels the
    network never saw (same scene, same optics: a curve to watch, not a test of generality).
    Validation items are 8 fixed focus / aperture draws over the band (centre ``val_patch``
    crops where the band is wide enough, else the whole band minus the refocus border).
    """
    s = ds._samplers[0]
    Y, X = s.view_shape
    axis = _band_axis(Y, X)
    size, across = (X, Y) if axis else (Y, X)
    m = s.margin
    width = _band_width(size, fraction, m)
    need = (ds.patch or 0) + 2 * m
    if size - width < max(need, 16):
        raise TrainingError(
            f"cannot hold out {fraction:.0%} of the single light field {s.name!r} ({X}x{Y} px views) for "
            f"validation and still cut {ds.patch}-px training patches from the rest: give separate validation "
            "data, a smaller patch, or no validation"
        )
    where = "columns" if axis else "rows"
    train_s = s.band(axis, 0, size - width)
    val_s = s.band(axis, size - width, size, name=f"{s.name} ({where} {size - width}-{size} held out)")
    train = _with_samplers(ds, [train_s], ds.length)
    val = _with_samplers(ds, [val_s], 8)
    return train, val.options(augment=False, **_band_val_options(width, across, val_patch, m))


def _split_folder_band(ds: FolderPairs, fraction: float, val_patch: int | None):
    """Pairs of a single scene (e.g. written from one light field): hold out a band of every image
    (the last ``fraction`` of its longer side) and train on the rest, as for one light field."""
    j = ds._index[0] if ds._index is not None else 0
    h, w = ds._load(j, np.random.default_rng(0), 0)[0].shape[:2]
    size, across = max(h, w), min(h, w)
    width = _band_width(size, fraction)
    if ds.patch is not None and min(size - width, across) < ds.patch:
        raise TrainingError(
            f"cannot hold out {fraction:.0%} of the images of {ds.describe()} (one scene, {w}x{h} px) for "
            f"validation and still cut {ds.patch}-px training patches from the rest: give separate validation "
            "data, a smaller patch, or no validation"
        )
    train, val = copy.copy(ds), copy.copy(ds)
    train._band, val._band = ("train", fraction), ("val", fraction)
    return train, val.options(augment=False, **_band_val_options(width, across, val_patch))
