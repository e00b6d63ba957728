"""(blurred, sharp) training pairs made from light fields (as in Ruan et al.'s LFDOF data set), and pair folders
on disk."""

from __future__ import annotations

import csv
import inspect
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cancel import cancel_check, check_function
from ..errors import LightFieldError
from ..io.atomic import atomic_path, link_or_copy, output_error
from ..io.formats import suffix_of
from ..io.write import save_image
from .core import LightField, check_lightfield
from .refocus import Refocuser, check_disparity_reach

__all__ = ["Pair", "iter_pairs", "make_pairs", "read_manifest", "write_pairs"]

DEFAULT_APERTURES = (1 / 3, 2 / 3, 1.0)
MANIFEST = "manifest.csv"
_COLUMNS = [
    "name",
    "blur",
    "sharp",
    "source",
    "scene",
    "kind",
    "aperture",
    "aperture_shape",
    "n_views",
    "focus",
    "focus_index",
    "index",
    "crop",
    "height",
    "width",
    "channels",
    "psnr",
    "format",
]


@dataclass
class Pair:
    """One training pair: ``blurred`` and ``sharp`` are (Y, X, C) float32 in [0, 1];
    ``info`` says where it comes from (``source``, ``scene``, ``aperture``,
    ``aperture_shape``, ``n_views``, ``focus`` disparity, ``focus_index``,
    ``index``, ``crop``, ``psnr`` of blurred against sharp, ``reference_view``)."""

    blurred: np.ndarray
    sharp: np.ndarray
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        i = self.info
        return (
            f"Pair({i.get('scene', '?')} #{i.get('index', '?')}, aperture={i.get('aperture', float('nan')):.2f}, "
            f"focus={i.get('focus', float('nan')):+.2f}, {self.blurred.shape})"
        )


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a - b) ** 2, dtype=np.float64))


def _scene_name(lf: LightField, scene: str | None) -> str:
    if scene is None:
        scene = lf.metadata.get("name") or lf.metadata.get("scene")
    if not scene:
        src = str(lf.metadata.get("source", "") or "")
        scene = Path(src.rstrip("/\\")).stem if src else "lightfield"
    scene = re.sub(r"[^A-Za-z0-9._-]+", "_", str(scene)).strip("._") or "lightfield"
    return scene


def _odd_subgrid(lf: LightField) -> tuple[LightField, tuple[int, int]]:
    """The largest sub-grid with an odd number of views centred on ``center_index()``: an even grid (a 10x10
    Lytro one) has no view at its centre, and the blur must be centred on the sharp view."""
    V, U = lf.grid
    cv, cu = lf.center_index()
    rv, ru = min(cv, V - 1 - cv), min(cu, U - 1 - cu)
    if (cv - rv, cu - ru, 2 * rv + 1, 2 * ru + 1) == (0, 0, V, U):
        return lf, (cv, cu)
    sv, su = slice(cv - rv, cv + rv + 1), slice(cu - ru, cu + ru + 1)
    sub = LightField(
        lf.data[sv, su],
        view_mask=lf.view_mask[sv, su],
        disparity=lf.disparity,
        metadata={**lf.metadata, "subgrid": (sv.start, sv.stop, su.start, su.stop)},
        _checked=True,  # a slice of data that passed the value rule when lf was made
    )
    return sub, (cv, cu)


#: focus planes per light field at most: closer planes give the same blur (duplicates that are skipped anyway)
MAX_FOCUS_PLANES = 256


def _focus_list(lf: LightField, focus) -> list[float]:
    if isinstance(focus, (int, np.integer)) and not isinstance(focus, bool):
        n = int(focus)
        if n < 1:
            raise LightFieldError(f"focus must be a number of planes >= 1 or a list of disparities, got {focus}.")
        if n > MAX_FOCUS_PLANES:
            raise LightFieldError(
                f"focus={n} planes is too many: at most {MAX_FOCUS_PLANES} per light field (planes closer "
                "together give the same blur, which skip_duplicates drops). The default is 5; give a few planes "
                "or a list of focus disparities."
            )
        from .disparity import lightfield_disparity_range

        lo, hi = lightfield_disparity_range(lf)
        return [float(x) for x in (np.linspace(lo, hi, n) if n > 1 else [0.5 * (lo + hi)])]
    try:
        ds = [float(x) for x in np.asarray(focus, dtype=np.float64).ravel()]
    except (TypeError, ValueError) as e:
        raise LightFieldError("focus must be an int (number of planes) or a sequence of disparities.") from e
    if not ds or not all(math.isfinite(x) for x in ds):
        raise LightFieldError("focus disparities must be a non-empty list of finite numbers.")
    check_disparity_reach(lf, ds)
    return ds


def _crop_pixels(crop, focuses: list[float], weights, center, view: tuple[int, int]) -> int:
    """Pixels to remove from each side: ``crop`` checked, ``"auto"`` the border the largest shift leaves
    unreliable (the largest focus disparity times the farthest view any aperture uses)."""
    if crop is None:
        return 0
    if isinstance(crop, str):
        if crop != "auto":
            raise LightFieldError(f"crop must be None, 'auto' or a number of pixels, got {crop!r}.")
        vc, uc = center
        vv, uu = np.nonzero(np.any([w > 0 for w in weights], axis=0))  # the views any aperture uses
        max_off = float(np.max(np.maximum(np.abs(vv - vc), np.abs(uu - uc))))
        c = math.ceil(max(abs(d) for d in focuses) * max_off - 1e-6)
    elif isinstance(crop, (int, np.integer)) and not isinstance(crop, bool) and crop >= 0:
        c = int(crop)
    else:
        raise LightFieldError(f"crop must be None, 'auto' or a number of pixels >= 0, got {crop!r}.")
    Y, X = view
    if 2 * c >= min(Y, X) - 8:
        raise LightFieldError(
            f"cropping {c} px from each side of {Y}x{X} views leaves (almost) nothing; the focus disparities "
            f"({min(focuses):.2f}..{max(focuses):.2f}) are too large for this light field. Pass crop=None or a "
            "smaller crop, or focus disparities closer to 0."
        )
    return c


def iter_pairs(
    lf: LightField,
    apertures: Sequence[float] = DEFAULT_APERTURES,
    focus=5,
    *,
    aperture_shape: Any = "disk",
    crop: int | str | None = "auto",
    skip_duplicates: bool = True,
    duplicate_psnr: float = 40.0,
    duplicate_ratio: float = 0.05,
    scene: str | None = None,
    device=None,
    progress: Callable[[int, int], Any] | None = None,
    cancel=None,
) -> Iterator[Pair]:
    """Generator form of :func:`make_pairs` (same arguments): they are checked, and the light field prepared,
    when it is called; the pairs are made as they are consumed."""
    stop = cancel_check(cancel, where="iter_pairs")
    check_lightfield(lf)
    check_function(progress, "progress", "progress(done, total)", where="make_pairs/iter_pairs",
                   error=LightFieldError)
    try:
        aps = [float(a) for a in np.atleast_1d(np.asarray(apertures, dtype=np.float64))]
    except (TypeError, ValueError) as e:
        raise LightFieldError("apertures must be a sequence of numbers in (0, 1].") from e
    if not aps:
        raise LightFieldError("apertures is empty: give at least one aperture size in (0, 1].")
    sub, ref = _odd_subgrid(lf)
    if not isinstance(aperture_shape, str) and "subgrid" in sub.metadata and np.shape(aperture_shape) == lf.grid:
        v0, v1, u0, u1 = sub.metadata["subgrid"]
        aperture_shape = np.asarray(aperture_shape)[v0:v1, u0:u1]
    focuses = _focus_list(lf, focus)
    rf = Refocuser(sub, device=device)
    weights = [rf.weights(a, aperture_shape) for a in aps]  # validates the apertures too
    Y, X = sub.view_shape
    c = _crop_pixels(crop, focuses, weights, sub.center, (Y, X))

    def cut(img):
        return img[c : Y - c, c : X - c] if c else img

    sharp = np.ascontiguousarray(cut(lf.view(*ref)))
    common = {
        "source": str(lf.metadata.get("source", "")),
        "scene": _scene_name(lf, scene),
        "kind": "lightfield",
        "aperture_shape": aperture_shape if isinstance(aperture_shape, str) else "weights",
        "crop": c,
        "reference_view": ref,
        "grid": lf.grid,
    }
    return _generate(
        rf, sharp, cut, aps, weights, focuses, aperture_shape, common,
        skip_duplicates, duplicate_psnr, duplicate_ratio, progress, stop,
    )  # fmt: skip


def _generate(
    rf, sharp, cut, aps, weights, focuses, aperture_shape, common,
    skip_duplicates, duplicate_psnr, duplicate_ratio, progress, stop,
) -> Iterator[Pair]:  # fmt: skip
    n_total = len(focuses) * len(aps)
    kept: list[tuple[np.ndarray, float]] = []  # (blurred, its MSE to sharp)
    for j, d in enumerate(focuses):
        for i, (a, w) in enumerate(zip(aps, weights)):
            if stop():
                return
            index = j * len(aps) + i
            blurred = np.ascontiguousarray(cut(rf(d, a, aperture_shape)))
            res = _mse(blurred, sharp)
            p = math.inf if res == 0 else 10.0 * math.log10(1.0 / res)
            dup = skip_duplicates and (
                p > duplicate_psnr or any(_mse(blurred, k) <= duplicate_ratio * min(res, rk) for k, rk in kept)
            )
            if progress is not None:
                progress(index + 1, n_total)
            if not dup:
                kept.append((blurred, res))
                info = {"aperture": a, "n_views": int((w > 0).sum()), "focus": float(d), "focus_index": j,
                        "index": index, "psnr": p}
                yield Pair(blurred, sharp, {**common, **info})


def make_pairs(lf: LightField, *args, **kwargs) -> list[Pair]:
    """(blurred, sharp) pairs from one light field.

    The blurred image of a pair is the light field refocused with a wide
    synthetic aperture at some focus disparity, the sharp one the centre view
    (a pinhole: everything in focus), pixel-aligned with it.  A grid with an
    even number of views is first trimmed to the largest odd sub-grid centred
    on the sharp view.

    Parameters
    ----------
    apertures
        Aperture sizes in (0, 1] (see :func:`~napari_lfdeblur.lightfield.refocus.refocus`);
        default three: 1/3, 2/3 and 1 of the largest disk.
    focus
        An int N: N focus disparities evenly spread over the light field's
        disparity range (metadata ``disparity_range``, else the ground-truth
        map's 0.5-99.5 percentiles, else ``estimate_disparity_range``); or a
        sequence of focus disparities.
    aperture_shape
        ``"disk"``, ``"square"`` or (V, U) weights, as in ``refocus``.
    crop
        Pixels removed from every side of both images: ``"auto"`` removes the
        border the shifts leave unreliable, ``ceil(max |focus| * largest view
        offset)``; None keeps the full size; or an int.
    skip_duplicates
        Leave out a pair whose blurred image is nearly the sharp one (PSNR
        above ``duplicate_psnr`` dB: no visible blur) or nearly a previous
        blurred one (their squared difference at most ``duplicate_ratio``
        times the smaller of the two blur residuals ``|blurred - sharp|^2``:
        the same blur, so no new information).
    scene
        Name used in the pairs' info and file names (default: the metadata
        ``name`` or the source folder's name).
    device
        Where refocusing runs (None = CPU, ``"auto"``, ``"cuda"`` ...).
    progress
        ``progress(i, n)`` after each of the n candidate pairs (skipped ones too).
    cancel
        A :class:`~napari_lfdeblur.CancelToken` (or a function returning
        True to stop), checked before each pair: the pairs made so far are
        returned.

    Returns
    -------
    A list of :class:`Pair`, in order focus plane by focus plane, apertures
    ascending; ``info["index"]`` (= focus_index * len(apertures) +
    aperture_index) stays the same when duplicates are skipped, so names made
    from it are stable across runs.
    """
    return list(iter_pairs(lf, *args, **kwargs))


# the parameters are iter_pairs'; help() and the API reference show them here too
make_pairs.__signature__ = inspect.signature(iter_pairs).replace(  # type: ignore[attr-defined]
    return_annotation="list[Pair]")


def read_manifest(folder) -> list[dict]:
    """Rows of ``folder/manifest.csv`` (an empty list when there is none)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [dict(r) for r in csv.DictReader(f) if r.get("name")]


def _write_manifest(folder: Path, rows: list[dict]) -> Path:
    path = folder / MANIFEST
    cols = list(dict.fromkeys([*_COLUMNS, *(k for r in rows for k in r)]))
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _check_pairs(pairs) -> None:
    """Before any folder is made: None, one Pair or a string would fail (or write nothing) half-way."""
    if isinstance(pairs, Pair):
        raise LightFieldError("write_pairs takes a list (or iterator) of Pair objects, got one Pair; pass [pair].")
    if isinstance(pairs, (str, bytes, dict)) or not isinstance(pairs, Iterable):
        raise LightFieldError(
            f"write_pairs takes a list (or iterator) of Pair objects, e.g. from make_pairs(lf) or iter_pairs(lf), "
            f"got {type(pairs).__name__}."
        )


def _pair_format(format) -> tuple[str, str]:
    """(``"png"`` or ``"tiff16"``, the files' suffix) from ``format``."""
    fmt = str(format).lower()
    if fmt in ("tif", "tiff", "tiff16", "tif16"):
        fmt = "tiff16"
    if fmt not in ("png", "tiff16"):
        raise LightFieldError(f"format must be 'png' or 'tiff16', got {format!r}.")
    return fmt, suffix_of("png" if fmt == "png" else "tif")


def _pair_folder(folder) -> Path:
    """``folder`` with its ``blur/`` and ``sharp/`` sub-folders, made when missing."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LightFieldError(f"{folder} exists and is not a folder.")
    try:
        (folder / "blur").mkdir(parents=True, exist_ok=True)
        (folder / "sharp").mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a read-only or full disk, a file where a folder should be
        raise output_error(folder, e, "the pair folder") from e
    return folder


def _pair_stem(pair, k: int, name: str | None, seen: set[str]) -> str:
    """The file name (without suffix) of the ``k``-th pair, ``{scene}_{index:03d}_a{aperture}_f{focus}``, added to
    ``seen``; two pairs of one name are an error."""
    if not isinstance(pair, Pair):
        raise LightFieldError(f"write_pairs expects Pair objects, got {type(pair).__name__}.")
    info = pair.info
    scene = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)) if name else str(info.get("scene") or "pair")
    stem = f"{scene}_{int(info.get('index', k)):03d}"
    if "aperture" in info and "focus" in info:
        stem += f"_a{float(info['aperture']):.2f}_f{float(info['focus']):+.2f}"
    if stem in seen:
        raise LightFieldError(
            f"two pairs would both be written as {stem!r}; give each light field its own scene name "
            "(make_pairs(scene=...)) or leave name=None."
        )
    seen.add(stem)
    return stem


@dataclass
class _PairFiles:
    """Writes pairs' images into a pair folder: a sharp image equal to the previous one is linked to its file."""

    folder: Path
    fmt: str
    ext: str
    last_sharp: tuple[np.ndarray, Path] | None = None

    def write(self, stem: str, pair: Pair) -> dict:
        """Write ``pair`` as ``stem``; its manifest row."""
        if pair.blurred.shape != pair.sharp.shape:
            raise LightFieldError(
                f"pair {stem}: blurred {pair.blurred.shape} and sharp {pair.sharp.shape} differ in shape."
            )
        blur_rel, sharp_rel = f"blur/{stem}{self.ext}", f"sharp/{stem}{self.ext}"
        save_image(self.folder / blur_rel, pair.blurred)
        last = self.last_sharp
        if last is not None and last[1].is_file() and (last[0] is pair.sharp or np.array_equal(last[0], pair.sharp)):
            link_or_copy(last[1], self.folder / sharp_rel)
        else:
            save_image(self.folder / sharp_rel, pair.sharp)
            self.last_sharp = (pair.sharp, self.folder / sharp_rel)
        shape = pair.blurred.shape
        row = {"name": stem, "blur": blur_rel, "sharp": sharp_rel, "height": shape[0], "width": shape[1],
               "channels": shape[2] if len(shape) == 3 else 1, "format": self.fmt}
        for key in ("source", "scene", "kind", "aperture", "aperture_shape", "n_views", "focus", "focus_index",
                    "index", "crop", "psnr"):
            if key in pair.info:
                row[key] = _fmt(pair.info[key])
        return row


def write_pairs(pairs: Iterable[Pair], folder, format: str = "png", name: str | None = None, *,
                progress: Callable[[int, int | None], Any] | None = None, cancel=None) -> Path:
    """Write pairs into a pair folder and return the manifest's path.

    The folder holds ``blur/NAME.png`` and ``sharp/NAME.png`` (``.tif`` for
    16 bit), as the two-shot folders (DPDD) the trainer also reads, and
    ``manifest.csv``, one row per pair.  A light field's sharp image is
    encoded once, the other pairs' ``sharp/NAME`` hard-linked to it (copied
    where the file system cannot link).  Files and manifest are moved into
    place when complete, so an interrupted run leaves no half-written file;
    pairs listed with both files present are skipped, so running again
    resumes.  One process per folder at a time.

    Parameters
    ----------
    pairs
        Pairs, e.g. from :func:`make_pairs`, or the :func:`iter_pairs`
        generator (written as they are made, so memory stays bounded).
    folder
        Created if needed; an existing pair folder is appended to.
    format
        ``"png"`` (8-bit) or ``"tiff16"`` (16-bit TIFF, ``.tif``).
    name
        Replaces the scene name in file names
        (``{scene}_{index:03d}_a{aperture:.2f}_f{focus:+.2f}``).
    progress
        ``progress(i, n)`` after each pair (n is None for a generator).
    cancel
        A :class:`~napari_lfdeblur.CancelToken` (or a function returning
        True to stop), checked before each pair: writing stops and the
        manifest keeps what was finished.
    """
    stop = cancel_check(cancel, where="write_pairs")
    check_function(progress, "progress", "progress(done, total)", where="write_pairs", error=LightFieldError)
    _check_pairs(pairs)
    fmt, ext = _pair_format(format)
    folder = _pair_folder(folder)
    rows = [r for r in read_manifest(folder)
            if (folder / r.get("blur", "")).is_file() and (folder / r.get("sharp", "")).is_file()]
    done = {r["name"] for r in rows}
    seen: set[str] = set()
    n = len(pairs) if isinstance(pairs, Sized) else None
    files, last_save = _PairFiles(folder, fmt, ext), time.monotonic()
    try:
        for k, pair in enumerate(pairs):
            if stop():
                break
            stem = _pair_stem(pair, k, name, seen)
            if stem not in done:
                rows = [r for r in rows if r["name"] != stem] + [files.write(stem, pair)]
                done.add(stem)
                if time.monotonic() - last_save > 2.0:
                    _write_manifest(folder, rows)
                    last_save = time.monotonic()
            if progress is not None:
                progress(k + 1, n)
    finally:
        path = _write_manifest(folder, rows)
    return path
