"""Raw plenoptic (lenslet) images decoded with a microlens-centre table: demosaic, fit a regular hexagonal grid
to the centres (tables such as Tao et al.'s hold rounded integers: the fit removes that +-0.5 px jitter), sample
each view under every lens, then resample the odd lens rows, which sit half a lens to the side.

Microlens pixel order is used directly (as in the Light Field Toolbox and ESLF files): a pixel right of the lens
centre belongs to a view further right.  The samples stay anisotropic (vertical lens pitch ~ sqrt(3)/2 of the
horizontal one, in ``metadata["sample_spacing_px"]``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ...errors import LightFieldError
from ..core import LightField, to_float01
from ._common import views_pair
from ._views import read_view_image

BAYER_PATTERNS = ("rggb", "bggr", "grbg", "gbrg")

# bilinear demosaic kernels (a normalised convolution: correct weights at the image border too)
_K_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
_K_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4


def demosaic_bilinear(mosaic: np.ndarray, pattern: str = "bggr") -> np.ndarray:
    """(Y, X, 3) float32 RGB from a (Y, X) Bayer mosaic whose top-left 2 x 2 block is ``pattern`` (``"bggr"`` =
    B G / G R); the measured samples are kept unchanged."""
    from scipy.ndimage import convolve

    pattern = str(pattern).lower()
    if pattern not in BAYER_PATTERNS:
        raise LightFieldError(f"bayer={pattern!r}: use one of {', '.join(BAYER_PATTERNS)} (or None for colour images).")
    m = np.asarray(mosaic, dtype=np.float32)
    if m.ndim != 2:
        raise LightFieldError(f"A Bayer mosaic is one channel (Y, X); got shape {m.shape}.")
    out = np.empty(m.shape + (3,), np.float32)
    for ci, colour in enumerate("rgb"):
        mask = np.zeros(m.shape, np.float32)
        for k, ch in enumerate(pattern):
            if ch == colour:
                mask[k // 2 :: 2, k % 2 :: 2] = 1.0
        kernel = _K_G if colour == "g" else _K_RB
        num = convolve(m * mask, kernel, mode="constant")
        den = convolve(mask, kernel, mode="constant")
        out[..., ci] = num / den
        # measured samples bit-exact (the division can round them)
        sel = mask.astype(bool)
        out[..., ci][sel] = m[sel]
    return out


def _table_from_array(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 2:
        return a.astype(np.float64)
    if a.ndim == 2 and a.shape[1] == 4:
        # one lens per line: lens row, lens column, y, x
        r, c = a[:, 0].astype(int), a[:, 1].astype(int)
        if r.min() < 0 or c.min() < 0:
            raise LightFieldError(f"{what}: negative lens row/column indices.")
        t = np.full((r.max() + 1, c.max() + 1, 2), np.nan)
        t[r, c] = a[:, 2:4]
        if np.isnan(t).any():
            raise LightFieldError(f"{what}: the (row, col, y, x) table does not cover a full lens grid.")
        return t
    raise LightFieldError(
        f"{what} has shape {a.shape}; a microlens-centre table is (rows, cols, 2) holding [y, x], "
        "or (N, 4) lines of [lens_row, lens_col, y, x]."
    )


def _mat_table(p: Path, key: str | None) -> tuple[np.ndarray, str | None]:
    """(the table, its variable name) in a MATLAB file: ``key``, or its one (rows, cols, 2) variable."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(p)
    except NotImplementedError:
        raise LightFieldError(f"{p} is a MATLAB v7.3 (HDF5) file; save it with save(..., '-v7') or as .npy.") from None
    variables = {k: v for k, v in mat.items() if not k.startswith("__")}
    cands = {k: v for k, v in variables.items() if getattr(v, "ndim", 0) == 3 and v.shape[2] == 2}
    if key is not None:
        if key not in variables:
            raise LightFieldError(f"No variable {key!r} in {p}; it has {', '.join(variables)}.")
        return variables[key], key
    if len(cands) == 1:
        ((key, arr),) = cands.items()
        return arr, key
    raise LightFieldError(
        f"{p} holds {len(cands)} (rows, cols, 2) tables ({', '.join(cands) or 'none'}); "
        "choose one with centers_key='NAME'."
    )


def _centers_file(p: Path, key: str | None) -> tuple[np.ndarray, bool, str]:
    """(the table as stored, whether its file type counts from 1, its description) of a table file."""
    if not p.is_file():
        raise LightFieldError(f"The microlens-centre table {p} does not exist or is not a file.")
    suffix = p.suffix.lower()
    if suffix == ".mat":
        arr, key = _mat_table(p, key)
        return arr, True, f"{p}:{key}"
    if suffix == ".npy":
        return np.load(p, allow_pickle=False), False, str(p)
    if suffix in (".csv", ".txt"):
        try:
            arr = np.loadtxt(p, delimiter=",", ndmin=2)
        except ValueError:
            arr = np.loadtxt(p, delimiter=",", ndmin=2, skiprows=1)  # a header line
        return arr, False, str(p)
    raise LightFieldError(f"Unknown centre-table file type {suffix!r}; use .mat, .npy or .csv.")


def load_centers(centers, one_based: bool | None = None, key: str | None = None) -> tuple[np.ndarray, str]:
    """(microlens centres as a float (rows, cols, 2) [y, x] 0-based array, a description) of an array or a
    ``.mat``, ``.npy`` or ``.csv``/``.txt`` file (lines ``lens_row, lens_col, y, x``); ``one_based`` None: True
    for ``.mat`` files only; ``key``: the variable of a ``.mat`` file that holds several tables."""
    if isinstance(centers, (str, os.PathLike)):
        arr, default_one, desc = _centers_file(Path(centers), key)
    else:
        arr, default_one, desc = np.asarray(centers), False, "<array>"
    table = _table_from_array(arr, f"The centre table {desc}")
    if one_based is None:
        one_based = default_one
    if one_based:
        table = table - 1.0
    if not np.isfinite(table).all():
        raise LightFieldError(f"The centre table {desc} has non-finite entries.")
    return table, desc


def fit_hex_grid(table: np.ndarray) -> tuple[np.ndarray, dict]:
    """(the least-squares fit of ``y, x = a + b*row + c*col + d*(row odd)`` to a centre table, its lens pitch,
    hex offset and RMS residual in pixels)."""
    R, C, _ = table.shape
    r, c = np.mgrid[:R, :C]
    A = np.stack([np.ones(R * C), r.ravel(), c.ravel(), (r % 2).ravel()], 1).astype(np.float64)
    fitted = np.empty_like(table, dtype=np.float64)
    coefs = []
    for i in range(2):
        coef, *_ = np.linalg.lstsq(A, table[..., i].ravel(), rcond=None)
        fitted[..., i] = (A @ coef).reshape(R, C)
        coefs.append(coef)
    res = np.sqrt(((fitted - table) ** 2).sum(-1).mean())
    cy, cx = coefs
    info = {
        "pitch_y_px": float(np.hypot(cy[1], cx[1])),  # distance between lens rows
        "pitch_x_px": float(np.hypot(cy[2], cx[2])),  # distance between lenses in a row
        "hex_offset_px": float(cx[3]),  # x shift of odd lens rows
        "rms_residual_px": float(res),
    }
    return fitted, info


def _hex_align(views: np.ndarray, frac: float) -> np.ndarray:
    """The odd rows of every view shifted by ``frac`` samples along x (linear interpolation, the nearest sample
    repeated at the ends)."""
    if abs(frac) < 1e-3:
        return views
    out = views.copy()
    odd = views[:, :, 1::2]  # (V, U, R_odd, C, ch)
    n = odd.shape[3]
    # odd-row sample j lies at even-row column j + frac, so output column k is at k - frac in the odd row
    pos = np.clip(np.arange(n) - frac, 0.0, n - 1)
    i0 = np.floor(pos).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = (pos - i0).astype(np.float32)[:, None]
    out[:, :, 1::2] = odd[:, :, :, i0] * (1 - w) + odd[:, :, :, i1] * w
    return out


def read_lenslet(path: str | os.PathLike, centers=None, bayer: str | None = "bggr", views=None,
                 pitch_step: float = 1.0, one_based: bool | None = None, centers_key: str | None = None,
                 refine_centers: bool = True, hex_align: bool = True, devignette: bool = False,
                 lazy: bool = True) -> LightField:
    """Decode a raw lenslet image into sub-aperture views.

    Parameters
    ----------
    path
        The raw image: a one-channel Bayer mosaic (or an RGB image with ``bayer=None``).
    centers
        Microlens centres, (rows, cols, 2) [y, x] array or a ``.mat`` / ``.npy`` / ``.csv`` file (see
        ``load_centers``).
    bayer
        Mosaic colour order (``"bggr"``, ``"rggb"``, ``"grbg"``, ``"gbrg"``) or None for an image that is already
        colour or greyscale.
    views
        ``n`` or ``(V, U)`` views.  None: an odd count covering ~80 % of the lens diameter (7 for the Lytro 1st
        generation at pitch_step 1).
    pitch_step
        Sensor pixels between neighbouring views under one microlens.
    one_based, centers_key
        See ``load_centers`` (``one_based`` defaults to True for ``.mat``).
    refine_centers
        Fit a regular hexagonal grid to the table (used when it fits within 0.75 px RMS, else the table is kept
        as is).
    hex_align
        Resample odd lens rows onto the even rows' columns, so that each view is a rectangular image.
    devignette
        Equalise each view's mean brightness to the centre view's.
    lazy
        Ignored: the image is decoded at once.

    Returns
    -------
    LightField
        (V, U, rows, cols, C) float32 in [0, 1].
    """
    path = Path(path)
    if centers is None:
        raise LightFieldError(f"Decoding the raw lenslet image {path.name} needs the microlens centres: pass "
                              "centers='image_cords.mat' (or a .npy/.csv table, or an array of shape "
                              "(rows, cols, 2)).")
    table, centers_desc = load_centers(centers, one_based=one_based, key=centers_key)
    raw, img = _raw_image(path, bayer)
    cen, grid_info, use_fit = _lens_centres(table, refine_centers)
    V, U = _view_count(views, pitch_step, grid_info["pitch_x_px"])
    _check_inside(cen, img.shape[:2], centers_desc)
    out = _sample_views(img, cen, (V, U), pitch_step)
    if hex_align:
        out = _hex_align(out, grid_info["hex_offset_px"] / grid_info["pitch_x_px"])
    if devignette:
        out = _devignette(out)
    return LightField(data=out, metadata={
        "source": str(path), "format": "lenslet", "centers": centers_desc, "bayer": bayer, "views": (V, U),
        "pitch_step": float(pitch_step), "angular_spacing": float(pitch_step),
        "angular_spacing_unit": "sensor px under a microlens", "disparity_range": None,
        "source_dtype": str(raw.dtype), "lens_grid": grid_info, "centers_refined": bool(use_fit),
        "hex_aligned": bool(hex_align), "devignetted": bool(devignette),
        "sample_spacing_px": (grid_info["pitch_y_px"], grid_info["pitch_x_px"])})


def _devignette(out: np.ndarray) -> np.ndarray:
    """Each view scaled so that its mean (per channel) matches the centre view's."""
    V, U = out.shape[:2]
    ref = np.nanmean(out[V // 2, U // 2], axis=(0, 1))
    gains = ref / np.maximum(np.nanmean(out, axis=(2, 3)), 1e-6)
    return np.clip(out * gains[:, :, None, None, :], 0.0, 1.0).astype(np.float32)


def _lens_centres(table: np.ndarray, refine: bool) -> tuple[np.ndarray, dict, bool]:
    """(the centres used, the fitted grid's pitch and offset, whether the fit is used: when ``refine`` and it
    fits within 0.75 px RMS)."""
    fitted, grid_info = fit_hex_grid(table)
    use_fit = refine and grid_info["rms_residual_px"] <= 0.75
    return (fitted if use_fit else table), grid_info, use_fit


def _raw_image(path: Path, bayer: str | None) -> tuple[np.ndarray, np.ndarray]:
    """(the stored samples, the image as float (Y, X, C) in [0, 1], demosaiced when ``bayer`` is given)."""
    raw = read_view_image(path)
    img = to_float01(raw, f"raw lenslet image {path}")
    if bayer is not None:
        if img.shape[2] != 1:
            raise LightFieldError(
                f"{path.name} has {img.shape[2]} channels, but a Bayer mosaic has one; pass bayer=None for an "
                "image that is already colour."
            )
        img = demosaic_bilinear(img[..., 0], bayer)
    return raw, img


def _view_count(views, pitch_step: float, pitch_x: float) -> tuple[int, int]:
    """(V, U) from ``views`` (None: an odd count covering ~80 % of the lens), checked to stay under the lens."""
    try:  # checked before it divides, below
        ok = math.isfinite(float(pitch_step)) and float(pitch_step) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise LightFieldError(f"pitch_step={pitch_step!r} must be a positive number of pixels (default 1).")
    if views is None:
        half = int(np.floor(0.4 * pitch_x / float(pitch_step)))
        views = 2 * max(half, 1) + 1
    V, U = views_pair(views, "a number such as 7 or a pair (V, U)")
    reach = max(V - 1, U - 1) / 2 * pitch_step
    if reach > 0.75 * pitch_x:
        raise LightFieldError(
            f"views={views!r} with pitch_step={pitch_step} reaches {reach:.1f} px from the lens centres, beyond "
            f"the microlens images (pitch {pitch_x:.1f} px); use fewer views or a smaller step."
        )
    return V, U


def _check_inside(cen: np.ndarray, size: tuple[int, int], desc: str) -> None:
    H, W = size
    if cen[..., 0].min() < 0 or cen[..., 1].min() < 0 or cen[..., 0].max() > H - 1 or cen[..., 1].max() > W - 1:
        raise LightFieldError(
            f"The microlens centres ({desc}) fall outside the {H}x{W} image; check the table, "
            "its [y, x] order and one_based=."
        )


def _sample_views(img: np.ndarray, cen: np.ndarray, grid: tuple[int, int], pitch_step: float) -> np.ndarray:
    """(V, U, rows, cols, C): view (v, u) samples every lens at ``centre + (v - vc, u - uc) * pitch_step``."""
    from scipy.ndimage import map_coordinates

    V, U = grid
    R, Cn = cen.shape[:2]
    vc, uc = (V - 1) / 2, (U - 1) / 2
    out = np.empty((V, U, R, Cn, img.shape[2]), np.float32)
    for v in range(V):
        for u in range(U):
            coords = np.stack([cen[..., 0] + (v - vc) * pitch_step, cen[..., 1] + (u - uc) * pitch_step])
            for ch in range(img.shape[2]):
                # outside the sensor -> NaN: no invented pixels
                out[v, u, :, :, ch] = map_coordinates(img[..., ch], coords, order=1, mode="constant", cval=np.nan)
    return out
