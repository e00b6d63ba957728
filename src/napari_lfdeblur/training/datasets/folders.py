"""Pair folders on disk (:class:`FolderPairs`): their layouts, how a folder's layout is detected, and exposure
matching of two-shot pairs.  Images are decoded when an item is asked for and cropped in their stored integer type
before they become float: the cache holds uint8/uint16 images, never float ones."""

from __future__ import annotations

import csv
import hashlib
import math
import warnings
from pathlib import Path

import numpy as np

from ...errors import TrainingError
from ...io.formats import image_files
from ...io.levels import block_mean
from ...io.read import read_image
from .base import PairDataset

__all__ = ["FolderPairs", "detect_layout", "match_exposure"]

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


# --------------------------------------------------------------------------- layouts
def _subdir(folder: Path, name: str) -> Path | None:
    for p in folder.iterdir():
        if p.is_dir() and p.name.lower() == name:
            return p
    return None


def _pair_dirs(folder: Path, candidates) -> tuple[Path, Path] | None:
    """The first (blurred, sharp) sub-folders of ``candidates`` that ``folder`` holds, or None."""
    for b, s in candidates:
        bd = _subdir(folder, b)
        sd = _subdir(folder, s) if bd is not None else None
        if bd is not None and sd is not None:
            return bd, sd
    return None


def detect_layout(path) -> str | None:
    """``"manifest"``, ``"dpdd"``, ``"lfdof"`` or None (not a pair folder)."""
    p = Path(path)
    if not p.is_dir():
        return None
    if (p / "manifest.csv").is_file():
        return "manifest"
    if _pair_dirs(p, _LFDOF_DIRS) is not None:
        return "lfdof"
    if _pair_dirs(p, _EQUAL_NAME_DIRS) is not None:
        return "dpdd"
    return None


_LAYOUT_HELP = (
    "a pair folder has blur/ + sharp/ (or source/ + target/) with equal file names (DPDD), "
    "input/ + ground_truth/ with input/NAME_*.png per ground_truth/NAME.png (LFDOF), "
    "or blur/ + sharp/ + manifest.csv (written by write_pairs)"
)


# --------------------------------------------------------------------------- exposure matching
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
    xs, ys = (block_mean(x, block, 0).reshape(-1, x.shape[-1]) for x in (a2, b2))
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


def _unmatched(pairs: list, skipped: str, none: str) -> None:
    """Images without a partner: a warning (``skipped``) when some pairs were found, else an error (``none``)."""
    if not pairs:
        raise TrainingError(none)
    # stacklevel: this function, the folder scan, FolderPairs(), then its caller
    warnings.warn(skipped, RuntimeWarning, stacklevel=4)


# --------------------------------------------------------------------------- pair folders
class FolderPairs(PairDataset):
    """Pairs from a folder on disk, in any of these layouts (detected by ``detect_layout``):

    * ``manifest.csv`` + ``blur/`` + ``sharp/``, written by :func:`~napari_lfdeblur.lightfield.pairs.write_pairs`:
      the manifest's ``blur`` and ``sharp`` columns give the files, ``scene`` the group used for validation
      splits (all pairs of one light field stay on one side);
    * DPDD: ``source/`` + ``target/`` (the DPDD release), or ``blur/`` + ``sharp/`` (``input/`` + ``target/``,
      ``blurred/`` + ``sharp/``), files paired by equal names (the extension may differ);
    * LFDOF: ``input/`` + ``ground_truth/``, several blurred inputs ``input/NAME_<anything>.png`` (or
      ``input/NAME/*.png``) per all-in-focus ``ground_truth/NAME.png``; ``NAME`` is the group.

    Decoded images are kept up to ``cache_mb`` megabytes (``cache=False`` keeps nothing).
    """

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
        self._sizes: dict[int, tuple[int, int]] = {}  # shared by copies, like the cache

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

    def _dirs(self, candidates) -> tuple[Path, Path]:
        found = _pair_dirs(self.path, candidates)
        if found is None:
            raise TrainingError(f"{self.path} has no {self.layout} layout folders: {_LAYOUT_HELP}")
        return found

    def _scan_equal(self):
        b, s = self._dirs(_EQUAL_NAME_DIRS)
        sharp = {}
        for f in image_files(s):
            sharp.setdefault(f.stem, f)
        out, missing = [], []
        for f in image_files(b):
            if f.stem in sharp:
                out.append((f.stem, f, sharp[f.stem], f.stem))
            else:
                missing.append(f.name)
        if missing:
            _unmatched(out, f"{len(missing)} blurred image(s) in {b} have no sharp image of the same name in {s} "
                            f"and are skipped (first: {missing[0]})",
                       f"no blurred image in {b} has a sharp image of the same name in {s} (e.g. {missing[0]}); "
                       "pairs are matched by file name (the extension may differ)")
        return out

    def _scan_lfdof(self):
        b, s = self._dirs(_LFDOF_DIRS)
        gt = {f.stem: f for f in image_files(s)}
        out, missing = [], []
        # flat input/NAME_*.png, or input/NAME/*.png
        candidates = [(f, None) for f in image_files(b)]
        for d in sorted(p for p in b.iterdir() if p.is_dir()):
            candidates += [(f, d.name) for f in image_files(d)]
        for f, sub in candidates:
            parts = f.stem.split("_")  # input/NAME_<anything>: the longest NAME with a ground truth
            groups = [sub] if sub is not None else ["_".join(parts[:k]) for k in range(len(parts), 0, -1)]
            group = next((g for g in groups if g in gt), None)
            if group is None:
                missing.append(f.name)
                continue
            name = f.stem if sub is None else f"{sub}_{f.stem}"
            out.append((name, f, gt[group], group))
        if missing:
            _unmatched(out, f"{len(missing)} input image(s) in {b} match no ground_truth/NAME image and are skipped "
                            f"(first: {missing[0]}); inputs must be named NAME_<anything> or sit in input/NAME/",
                       f"no input image in {b} matches a ground-truth image in {s} (e.g. {missing[0]}); inputs must "
                       "be named NAME_<anything>.png for ground_truth/NAME.png, or sit in input/NAME/")
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

    def _item_size(self, j):
        hw = self._sizes.get(j)
        if hw is None:  # the header only: sizing a folder of large pairs decodes nothing
            from ...io.read import image_header

            hw = self._sizes[j] = image_header(self._entries[j][1]).size
        return hw

    def _item_source(self, j):
        return str(self._entries[j][1])

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
            # keyed by the pair, not the sharp file: LFDOF inputs share one ground truth, and a target
            # matched to whichever input came first would depend on the data order (a resumed run's differs)
            return blur, self._cached(f"{s}|exposure|{b}", lambda: match_exposure(self._read(s), blur))
        return blur, self._read(s)

    def describe(self) -> str:
        groups = len(set(self.groups))
        extra = ", sharp exposure matched to the blurry shot" if self.match_exposure else ""
        if self._band is not None:
            side, fraction = self._band
            extra += (f", the last {fraction:.0%} of each image's longer side (held out)" if side == "val"
                      else f", without the last {fraction:.0%} of each image's longer side (held out)")
        return f"pair folder {self.path} ({self.layout} layout, {len(self)} pairs, {groups} scenes{extra})"

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for j in (range(len(self._entries)) if self._index is None else self._index):
            name, b, s, group = self._entries[j]
            for f in (b, s):
                h.update(f"{f.relative_to(self.path).as_posix()}\0{f.stat().st_size}\0".encode())
            h.update(f"{name}\0{group}\n".encode())
        return self.describe().replace(f"pair folder {self.path} ", f"pair folder <{h.hexdigest()[:16]}> ", 1)
