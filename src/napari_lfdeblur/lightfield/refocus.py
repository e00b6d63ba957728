"""Synthetic-aperture refocusing: shift every view by its parallax and average.

Refocusing at disparity ``d`` shifts view ``(v, u)`` by ``s = d * (v - vc, u - uc)`` (``out(y) = in(y - s)``,
the sign of :class:`~napari_lfdeblur.lightfield.core.LightField`), which brings everything at ``d`` back onto its
centre-view position; content at other disparities is blurred by a copy of the aperture scaled by the
disparity difference.

Why it is fast on a CPU: for one disparity every view gets a constant shift, all views of a grid row share
their vertical shift, and bilinear interpolation is separable, so::

    out = sum_v shift_y( sum_u w[v, u] * shift_x(view[v, u], d*(u-uc)), d*(v-vc) )

and a shift by ``k + f`` pixels is two integer shifts, each a slice ``add_`` plus the edge column repeated
(:mod:`.shifts`): no index arrays, no padded copy.  A per-pixel disparity map uses ``grid_sample`` over chunks
of views instead.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..cancel import cancel_check, check_function
from ..errors import LightFieldError
from .core import LightField, check_lightfield
from .disparity import lightfield_disparity_range
from .shifts import cpu_threads, resolve_device, shift_add

__all__ = ["Refocuser", "aperture_weights", "clear_cache", "focal_stack", "refocus", "resolve_device"]

_APERTURE_SHAPES = ("disk", "square")


def aperture_weights(lf: LightField, aperture: float = 1.0, aperture_shape: Any = "disk") -> np.ndarray:
    """(V, U) float32 weights of the views a synthetic aperture uses (``aperture`` and ``aperture_shape`` as in
    :func:`refocus`), summing to 1 over the present views; missing views get 0."""
    check_lightfield(lf)
    return _aperture_weights(lf.grid, lf.view_mask, lf.center, aperture, aperture_shape)


def _aperture_weights(grid, mask, center, aperture, aperture_shape) -> np.ndarray:
    mask = np.asarray(mask, dtype=bool)
    if isinstance(aperture, bool) or not isinstance(aperture, (int, float, np.integer, np.floating)):
        raise LightFieldError(f"aperture must be a number in (0, 1], got {aperture!r}.")
    aperture = float(aperture)
    if not (0.0 < aperture <= 1.0) or not math.isfinite(aperture):
        raise LightFieldError(
            f"aperture must be in (0, 1] (a fraction of the largest aperture the view grid allows), got {aperture}."
        )
    if isinstance(aperture_shape, str):
        w = _shaped_aperture(aperture_shape, mask, center, aperture)
    else:
        w = _given_weights(aperture_shape, mask, tuple(grid))
    return (w / w.sum()).astype(np.float32)


def _shaped_aperture(aperture_shape: str, mask: np.ndarray, center, aperture: float) -> np.ndarray:
    """(V, U) 0/1 weights of the present views inside a ``"disk"`` or ``"square"`` aperture."""
    shape = aperture_shape.lower()
    if shape not in _APERTURE_SHAPES:
        raise LightFieldError(
            f"aperture_shape must be one of {_APERTURE_SHAPES} or a (V, U) array of weights, "
            f"got {aperture_shape!r}."
        )
    V, U = mask.shape
    vc, uc = center
    vv, uu = np.meshgrid(np.arange(V) - vc, np.arange(U) - uc, indexing="ij")
    if shape == "disk":
        r = np.hypot(vv, uu)
        rmax = math.hypot(vc, uc)
        sel = r <= aperture * rmax + 1e-6
    else:
        nv = np.abs(vv) / vc if vc > 0 else np.zeros_like(vv)
        nu = np.abs(uu) / uc if uc > 0 else np.zeros_like(uu)
        r = np.maximum(nv, nu)
        sel = r <= aperture + 1e-6
    sel &= mask
    if not sel.any():  # tiny aperture: keep the present view(s) nearest the centre
        dist = np.where(mask, np.hypot(vv, uu), np.inf)
        sel = mask & (dist <= dist.min() + 1e-6)
    return sel.astype(np.float64)


def _given_weights(aperture_shape, mask: np.ndarray, grid: tuple) -> np.ndarray:
    """(V, U) weights given as an array, checked, zero at the missing views."""
    try:
        w = np.asarray(aperture_shape, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise LightFieldError("aperture_shape must be 'disk', 'square' or a (V, U) array of weights.") from e
    if w.shape != grid:
        raise LightFieldError(f"aperture weights must have the view-grid shape {grid}, got {w.shape}.")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        raise LightFieldError("aperture weights must be finite and non-negative.")
    w = np.where(mask, w, 0.0)
    if w.sum() <= 0:
        raise LightFieldError(
            "aperture weights select no present view: give a positive weight to at least one view."
        )
    return w


def _check_disparity(disparity, view_shape):
    if isinstance(disparity, (int, float, np.integer, np.floating)) and not isinstance(disparity, bool):
        d = float(disparity)
        if not math.isfinite(d):
            raise LightFieldError(f"disparity must be finite, got {disparity}.")
        return d
    try:
        arr = np.asarray(disparity, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise LightFieldError(
            f"disparity must be a number (pixels per view step) or a (Y, X) map, got {type(disparity).__name__}."
        ) from e
    if arr.ndim == 0:
        return _check_disparity(float(arr), view_shape)
    if arr.shape != tuple(view_shape):
        raise LightFieldError(f"a disparity map must have the view shape {tuple(view_shape)}, got {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise LightFieldError("the disparity map contains NaN or infinite values; fill them first.")
    return arr


def check_disparity_reach(lf: LightField, disparity) -> None:
    """Refuse focus disparities (a number, a sequence of them or a (Y, X) map) that shift the outer views of
    ``lf`` off the image: a flat, meaningless result, or a search over planes that takes forever."""
    d = np.abs(np.asarray(disparity, dtype=np.float64))
    if d.size == 0 or not np.all(np.isfinite(d)):
        return  # the callers' own checks name these
    worst = float(d.max())
    V, U = lf.grid
    Y, X = lf.view_shape
    reach_v, reach_u = (V - 1) / 2.0, (U - 1) / 2.0
    limits = [n / r for n, r in ((Y, reach_v), (X, reach_u)) if r > 0]
    if not limits or worst <= min(limits):
        return
    raise LightFieldError(
        f"disparity {worst:g} px per view step shifts the outer views of this {V}x{U} light field by "
        f"{worst * max(reach_v, reach_u):.4g} px, beyond its {Y}x{X}-pixel views: refocusing there gives a flat "
        f"image. Focus disparities are a few pixels per view step; here |disparity| must be at most "
        f"{min(limits):.3g} (lfdeblur info shows the light field's disparity range, when known)."
    )


class Refocuser:
    """A light field prepared for repeated refocusing (a focus slider, a focal stack,
    training pairs).

    The views are held as a torch tensor on ``device``: a zero-copy view of a
    float32 numpy light field on the CPU, a single ``compute()`` of a lazy dask
    light field, one transfer to a GPU.  Calling it refocuses::

        rf = Refocuser(lf)
        img = rf(0.5, aperture=0.7)          # (Y, X, C) float32 numpy
        stack = rf.stack([-1, 0, 1])         # (N, Y, X, C)
    """

    def __init__(self, lf: LightField, device=None):
        import torch

        check_lightfield(lf)
        # no reference to ``lf`` itself: a cached Refocuser must not keep it alive
        self.grid = lf.grid
        self.device = resolve_device(device)
        data = np.asarray(lf.compute().data, dtype=np.float32)
        if any(s < 0 for s in data.strides):  # torch.from_numpy refuses them
            data = np.ascontiguousarray(data)
        self.views = torch.from_numpy(data).to(self.device)  # (V, U, Y, X, C)
        self.mask = np.asarray(lf.view_mask, dtype=bool)
        self.center = lf.center
        self.shape = tuple(int(s) for s in data.shape[2:])  # (Y, X, C)

    def weights(self, aperture: float = 1.0, aperture_shape: Any = "disk") -> np.ndarray:
        """(V, U) view weights; see :func:`aperture_weights`."""
        return _aperture_weights(self.grid, self.mask, self.center, aperture, aperture_shape)

    def _refocus(self, d, w: np.ndarray):
        """One slice at a checked disparity ``d`` (a number or a map), as a (Y, X, C) tensor."""
        with cpu_threads(self.device):
            return self._refocus_scalar(d, w) if isinstance(d, float) else self._refocus_map(d, w)

    def _refocus_scalar(self, d: float, w: np.ndarray):
        import torch

        Y, X, C = self.shape
        vc, uc = self.center
        out = torch.zeros((Y, X, C), dtype=torch.float32, device=self.views.device)
        row = torch.empty_like(out)
        for v in range(w.shape[0]):
            us = np.nonzero(w[v] > 0)[0]
            if us.size == 0:
                continue
            row.zero_()
            for u in us:
                shift_add(row, self.views[v, u], d * (u - uc), float(w[v, u]), axis=1)
            shift_add(out, row, d * (v - vc), 1.0, axis=0)
        return out

    def _refocus_map(self, dmap: np.ndarray, w: np.ndarray, chunk: int = 8):
        import torch
        import torch.nn.functional as F

        Y, X, C = self.shape
        vc, uc = self.center
        dev = self.views.device
        d = torch.from_numpy(dmap).to(dev)
        ys = torch.arange(Y, dtype=torch.float32, device=dev)[:, None]
        xs = torch.arange(X, dtype=torch.float32, device=dev)[None, :]
        out = torch.zeros((C, Y, X), dtype=torch.float32, device=dev)
        idx = [(v, u) for v, u in zip(*np.nonzero(w > 0))]
        for i in range(0, len(idx), chunk):
            part = idx[i : i + chunk]
            src = torch.stack([self.views[v, u] for v, u in part]).permute(0, 3, 1, 2)  # n, C, Y, X
            dv = torch.tensor([v - vc for v, _ in part], dtype=torch.float32, device=dev)[:, None, None]
            du = torch.tensor([u - uc for _, u in part], dtype=torch.float32, device=dev)[:, None, None]
            gy = (ys - d * dv) * (2.0 / max(Y - 1, 1)) - 1.0
            gx = (xs - d * du) * (2.0 / max(X - 1, 1)) - 1.0
            grid = torch.stack((gx, gy), dim=-1)  # n, Y, X, 2
            s = F.grid_sample(src, grid, mode="bilinear", padding_mode="border", align_corners=True)
            wt = torch.tensor([float(w[v, u]) for v, u in part], dtype=torch.float32, device=dev)
            out += (s * wt[:, None, None, None]).sum(0)
        return out.permute(1, 2, 0)

    def refocus_tensor(self, disparity, aperture: float = 1.0, aperture_shape: Any = "disk"):
        """Like ``__call__`` but returns a (Y, X, C) torch tensor on the device."""
        w = self.weights(aperture, aperture_shape)
        return self._refocus(_check_disparity(disparity, self.shape[:2]), w)

    def __call__(self, disparity, aperture: float = 1.0, aperture_shape: Any = "disk") -> np.ndarray:
        out = self.refocus_tensor(disparity, aperture, aperture_shape)
        return np.ascontiguousarray(out.cpu().numpy(), dtype=np.float32)

    def stack(
        self,
        disparities: Sequence[float],
        aperture: float = 1.0,
        aperture_shape: Any = "disk",
        progress: Callable[[int, int], Any] | None = None,
        cancel=None,
    ) -> np.ndarray:
        """(N, Y, X, C) float32 focal stack; see :func:`focal_stack`."""
        stop = cancel_check(cancel, where="focal_stack")
        check_function(progress, "progress", "progress(done, total)", where="focal_stack", error=LightFieldError)
        ds = [_check_disparity(d, self.shape[:2]) for d in disparities]
        w = self.weights(aperture, aperture_shape)
        out = np.empty((len(ds), *self.shape), dtype=np.float32)
        n = len(ds)
        for i, d in enumerate(ds):
            if stop():
                return out[:i]
            out[i] = self._refocus(d, w).cpu().numpy()
            if progress is not None:
                progress(i + 1, n)
        return out


# One prepared light field is remembered between calls, so that a slider calling
# ``refocus`` repeatedly on a lazy (dask) or GPU light field decodes / uploads it
# once.  A float32 numpy light field on the CPU is used zero-copy and not cached.
_CACHE: dict = {}


def clear_cache() -> None:
    """Forget the light field prepared by the last ``refocus``/``focal_stack`` call."""
    _CACHE.clear()


def _get_refocuser(lf: LightField, device) -> Refocuser:
    dev = resolve_device(device)
    cheap = (not lf.is_lazy) and dev.type == "cpu" and getattr(lf.data, "dtype", None) == np.float32
    if cheap:
        return Refocuser(lf, dev)
    entry = _CACHE.get("last")
    if entry is not None:
        ref, data_id, dev_key, rf = entry
        if ref() is lf and data_id == id(lf.data) and dev_key == str(dev):
            return rf
    rf = Refocuser(lf, dev)
    _CACHE.clear()
    _CACHE["last"] = (weakref.ref(lf), id(lf.data), str(dev), rf)
    weakref.finalize(lf, _CACHE.clear)
    return rf


def refocus(lf: LightField, disparity, aperture: float = 1.0, aperture_shape: Any = "disk", device=None) -> np.ndarray:
    """Refocus a light field at ``disparity`` with a synthetic aperture.

    Parameters
    ----------
    lf
        The light field.
    disparity
        Focus disparity in pixels per view step (what is at this disparity
        ends up sharp and aligned with the centre view), or a (Y, X) map of
        per-pixel disparities (an all-in-focus rendering when it is the scene's
        disparity).
    aperture
        Fraction (0, 1] of the largest aperture.  ``"disk"`` keeps the views
        with ``hypot(v - vc, u - uc) <= aperture * hypot(vc, uc)`` (1: every
        view; 0.71 on a square grid: the inscribed disk), ``"square"`` those
        with ``max(|v - vc| / vc, |u - uc| / uc) <= aperture``.  However small
        the aperture, the view(s) nearest the grid centre are kept.
    aperture_shape
        ``"disk"``, ``"square"`` or a (V, U) array of non-negative view
        weights (``aperture`` is then ignored).  Missing views are skipped and
        the weights of the others renormalised.
    device
        None (CPU), ``"auto"`` or a torch device name.

    Returns
    -------
    (Y, X, C) float32 numpy array.
    """
    check_lightfield(lf)
    check_disparity_reach(lf, _check_disparity(disparity, lf.view_shape))
    return _get_refocuser(lf, device)(disparity, aperture, aperture_shape)


def focal_stack(
    lf: LightField,
    disparities,
    aperture: float = 1.0,
    aperture_shape: Any = "disk",
    device=None,
    progress: Callable[[int, int], Any] | None = None,
    cancel=None,
) -> np.ndarray:
    """Refocus at each of ``disparities``: a (N, Y, X, C) float32 focal stack.

    ``disparities`` is a sequence of disparities (pixels per view step), or an
    int N for N planes evenly spread over the light field's disparity range
    (its metadata ``disparity_range``, else its ground truth, else
    :func:`~napari_lfdeblur.lightfield.disparity.estimate_disparity_range`).

    The light field is prepared once (dask decoded once, uploaded once) and
    the slices are computed one after the other: memory is one output slice
    plus one row buffer on the device, plus the (N, Y, X, C) result on the
    host.  ``progress(i, n)`` is called after each slice; when ``cancel`` (a
    :class:`~napari_lfdeblur.CancelToken` or a function returning True; see
    :mod:`napari_lfdeblur.cancel`) asks to stop, the slices computed so far are
    returned.
    """
    check_lightfield(lf)
    check_function(progress, "progress", "progress(done, total)", where="focal_stack", error=LightFieldError)
    if isinstance(disparities, (int, np.integer)) and not isinstance(disparities, bool):
        if disparities < 1:
            raise LightFieldError(f"the number of focal planes must be at least 1, got {disparities}.")
        lo, hi = lightfield_disparity_range(lf)
        disparities = np.linspace(lo, hi, int(disparities)) if disparities > 1 else [0.5 * (lo + hi)]
    try:
        ds = [float(d) for d in np.asarray(disparities, dtype=np.float64).ravel()]
    except (TypeError, ValueError) as e:
        raise LightFieldError("disparities must be a sequence of numbers or an int number of planes.") from e
    if not ds:
        raise LightFieldError("disparities is empty: give at least one focus disparity.")
    stop = cancel_check(cancel, where="focal_stack")
    check_disparity_reach(lf, ds)
    rf = _get_refocuser(lf, device)
    return rf.stack(ds, aperture, aperture_shape, progress=progress, cancel=stop)
