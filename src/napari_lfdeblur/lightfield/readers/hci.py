"""HCI 4D Light Field Benchmark folders (Honauer et al. 2016): ``input_CamNNN.png`` views numbered row-major
from the top-left, an optional ``parameters.cfg`` and the centre view's ground truth ``gt_disp_lowres.pfm``."""

from __future__ import annotations

import configparser
import itertools
import math
import os
import re
from pathlib import Path

from ...errors import LightFieldError
from ...io.formats import IMAGE_SUFFIXES
from ..core import LightField
from ._views import open_view_grid
from .pfm import read_pfm

_EXT_RE = "|".join(re.escape(s[1:]) for s in IMAGE_SUFFIXES)
CAM_RE = re.compile(rf"^input_Cam(\d+)\.({_EXT_RE})$", re.IGNORECASE)
DISPARITY_FILE = "gt_disp_lowres.pfm"


def is_hci_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding at least two ``input_CamNNN`` images."""
    if not path.is_dir():
        return False
    cams = (p for p in path.iterdir() if CAM_RE.match(p.name))
    return len(list(itertools.islice(cams, 2))) == 2


def _number(text: str):
    try:
        f = float(text)
    except ValueError:
        return text.strip()
    return int(f) if f.is_integer() and re.fullmatch(r"[+-]?\d+", text.strip()) else f


def read_parameters_cfg(path: str | os.PathLike) -> dict:
    """An HCI ``parameters.cfg`` as ``{section: {key: value}}``, numbers as int/float, keys before any section
    header under ``""``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise LightFieldError(f"Could not read {path}: {e}") from e
    cp = configparser.ConfigParser(interpolation=None, strict=False, inline_comment_prefixes=("#", ";"))
    cp.optionxform = str  # type: ignore[assignment,method-assign]  # keep key case
    try:
        cp.read_string("[__top__]\n" + text, source=str(path))
    except configparser.Error as e:
        raise LightFieldError(f"{path} is not a valid INI-style parameters file: {e}") from e
    out = {"" if sec == "__top__" else sec: {k: _number(v) for k, v in cp.items(sec)} for sec in cp.sections()}
    if not out[""]:
        del out[""]
    return out


def _find(params: dict, *keys: str):
    """First value of any of ``keys`` in any section (HCI puts them in [meta]/[extrinsics])."""
    for k in keys:
        for sec in params.values():
            if k in sec:
                return sec[k]
    return None


def read_hci(path: str | os.PathLike, lazy: bool = True) -> LightField:
    """Read an HCI 4D Light Field Benchmark scene folder.

    Parameters
    ----------
    path
        The scene folder (``input_CamNNN.png`` files).
    lazy
        True (default): views are decoded only when used (dask, one chunk per
        view).  False: decode all views now.

    Returns
    -------
    LightField
        (V, U, Y, X, C) float32 in [0, 1]; v = camera row (top first), u =
        camera column (left first).  ``disparity`` from ``gt_disp_lowres.pfm``
        when it has the view size.  Metadata: ``parameters`` (the parsed cfg),
        ``disparity_range`` (cfg ``disp_min``/``disp_max``, else the ground
        truth's min/max), ``angular_spacing`` (cfg ``baseline_mm``, in mm),
        ``focus_distance_m``, ``focal_length_mm`` when the cfg gives them.
    """
    path = Path(path)
    if not path.is_dir():
        raise LightFieldError(f"{path} is not a folder; an HCI scene is a folder of input_CamNNN.png views.")
    cams = _cameras(path)
    cfg = path / "parameters.cfg"
    params = read_parameters_cfg(cfg) if cfg.is_file() else {}
    V, U = _grid_of(path, cams, params)
    files = {(k // U, k % U): p for k, p in cams.items()}
    data, mask, info = open_view_grid(files, (V, U), lazy=lazy)
    meta = {"source": str(path), "format": "hci", **info}
    disparity = _ground_truth(path, tuple(data.shape[2:4]), meta)
    lo, hi = _find(params, "disp_min"), _find(params, "disp_max")
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        meta["disparity_range"] = (float(lo), float(hi))
    elif disparity is not None:
        meta["disparity_range"] = (float(disparity.min()), float(disparity.max()))
        meta["disparity_range_from"] = "ground truth"
    baseline = _find(params, "baseline_mm")
    meta["angular_spacing"] = float(baseline) if isinstance(baseline, (int, float)) else None
    if meta["angular_spacing"] is not None:
        meta["angular_spacing_unit"] = "mm"
    for key in ("focus_distance_m", "focal_length_mm", "sensor_size_mm", "fstop"):
        val = _find(params, key)
        if val is not None:
            meta[key] = val
    if params:
        meta["parameters"] = params
    meta.setdefault("disparity_range", None)
    # decode_view applies the value rule to every view as it is decoded
    return LightField(data=data, view_mask=mask, disparity=disparity, metadata=meta, _checked=True)


def _cameras(path: Path) -> dict[int, Path]:
    cams: dict[int, Path] = {}
    for p in sorted(path.iterdir()):
        m = CAM_RE.match(p.name)
        if m:
            n = int(m.group(1))
            if n in cams:
                raise LightFieldError(f"Two files for camera {n} in {path}: {cams[n].name} and {p.name}.")
            cams[n] = p
    if not cams:
        raise LightFieldError(
            f"No input_CamNNN.png views in {path}: this is not an HCI benchmark folder. For other view "
            "folders use format='grid' (with pattern='...{row}...{col}...' if the names are unusual)."
        )
    return cams


def _grid_of(path: Path, cams: dict[int, Path], params: dict) -> tuple[int, int]:
    """(V, U): the cfg's camera counts, else the square grid of the views (the benchmark's grids are square)."""
    ncx, ncy = _find(params, "num_cams_x"), _find(params, "num_cams_y")
    if isinstance(ncx, int) and isinstance(ncy, int) and ncx > 0 and ncy > 0:
        V, U = ncy, ncx
    else:
        n = math.isqrt(len(cams))
        if n * n != len(cams):
            raise LightFieldError(
                f"{path} has {len(cams)} input_CamNNN views, not a square number, so the grid size is "
                "unknown. Add the missing views, or a parameters.cfg with num_cams_x/num_cams_y."
            )
        V = U = n
    bad = sorted(k for k in cams if k >= V * U)
    if bad:
        raise LightFieldError(f"Camera numbers {bad[:5]} in {path} do not fit a {V}x{U} grid (numbers 0..{V * U - 1}).")
    return V, U


def _ground_truth(path: Path, view_shape: tuple, meta: dict):
    """The centre view's ground-truth disparity when the folder has it at the view size (else None, and a
    note in ``meta``)."""
    f = path / DISPARITY_FILE
    if not f.is_file():
        return None
    d = read_pfm(f)
    if d.ndim == 3:
        d = d[..., 0]
    if d.shape != view_shape:
        meta["disparity_note"] = f"{DISPARITY_FILE} is {d.shape}, not the view size; not loaded"
        return None
    meta["disparity_file"] = DISPARITY_FILE
    return d
