"""Disparity of the centre view, estimated from the light field itself: a plane sweep with occlusion-aware costs
and semi-global smoothing (accuracy and speed: docs/performance.md, "Light fields").

1. Views: the "star" on the eight rays from the reference (centre) view, the grid's row, column and both
   diagonals (32 of 81 views of a 9x9 grid; a lazy light field decodes only these).
2. For each candidate ``d`` every star view is shifted back by ``d * (v - vr, u - ur)`` with cubic convolution
   (the blur of bilinear interpolation, strongest at half-pixel shifts, would bias the sweep towards whole-pixel
   shifts) and compared with the reference: mean absolute colour difference per ray.
3. Occlusion: near an occluding edge only the views on one side see the background, so costs are averaged over
   four wedges of three adjacent rays, each guided-filtered by the reference's luminance, and the minimum over
   the wedges is kept.
4. Semi-global aggregation along the four image axes (``P1`` for a one-step change, ``P2``, lowered across
   image edges, for a jump) fills weakly textured regions.
5. Winner-takes-all, refined between candidates by an equiangular line fit (the model for absolute differences).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from ..cancel import cancel_check
from ..errors import LightFieldError
from .core import LightField, check_lightfield
from .shifts import cpu_threads, resolve_device, shift

__all__ = ["estimate_disparity", "estimate_disparity_range", "lightfield_disparity_range"]

# the eight rays (dv, du), and four wedges of three adjacent rays each
_RAYS = ((0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1))
_WEDGES = ((7, 0, 1), (1, 2, 3), (3, 4, 5), (5, 6, 7))  # E, S, W, N

# tuned on HCI antinous (costs are mean absolute differences of [0, 1] values)
_P1 = 0.01
_P2 = 0.1
_EDGE = 0.02  # luminance step at which P2 is halved
_GF_RADIUS = 1
_GF_EPS = 1e-4
_DEFAULT_STEP = 0.1
_ORDER = 3  # cubic warps (step 2 above)


def _star(lf: LightField, ref: tuple[int, int]):
    """[(ray index, v, u)] of the present views on the eight rays from ``ref``."""
    V, U = lf.grid
    vr, ur = ref
    out = []
    for r, (dv, du) in enumerate(_RAYS):
        k = 1
        while 0 <= vr + k * dv < V and 0 <= ur + k * du < U:
            v, u = vr + k * dv, ur + k * du
            if lf.view_mask[v, u]:
                out.append((r, v, u))
            k += 1
    if not out:
        raise LightFieldError(
            "Disparity needs at least one view besides the centre one on a row, column or diagonal of the grid; "
            "this light field has none."
        )
    return out


def _box(x, r: int):
    """Mean over a (2r+1)^2 window with replicated borders; x (..., Y, X)."""
    import torch.nn.functional as F

    if r <= 0:
        return x
    shp = x.shape
    Y, X = shp[-2:]
    xp = F.pad(x.reshape(-1, 1, Y, X), (r, r, r, r), mode="replicate")[:, 0]
    s = xp[:, :, 0:X].clone()
    for i in range(1, 2 * r + 1):
        s += xp[:, :, i : i + X]
    t = s[:, 0:Y].clone()
    for i in range(1, 2 * r + 1):
        t += s[:, i : i + Y]
    return (t / float((2 * r + 1) ** 2)).reshape(shp)


def _guided(guide, p, r: int, eps: float, guide_stats=None):
    """He et al.'s guided filter of ``p`` (..., Y, X) by a grey ``guide`` (Y, X)."""
    mI, vI = guide_stats if guide_stats is not None else (_box(guide, r), _box(guide * guide, r) - _box(guide, r) ** 2)
    mp = _box(p, r)
    cov = _box(guide * p, r) - mI * mp
    a = cov / (vI + eps)
    b = mp - a * mI
    return _box(a, r) * guide + _box(b, r)


def _sum_channels(x):
    """Sum over the last axis, as slice additions (faster than ``sum(-1)`` for a few channels)."""
    out = x[..., 0].clone()
    for c in range(1, x.shape[-1]):
        out += x[..., c]
    return out


def _luminance(img):
    if img.shape[-1] == 3:
        return 0.299 * img[..., 0] + 0.587 * img[..., 1] + 0.114 * img[..., 2]
    return _sum_channels(img) / img.shape[-1]


def _sgm(C, P1: float, P2):
    """Semi-global aggregation of a (N, Y, X) cost volume along the 4 image axes.

    ``P2`` is a (Y, X) tensor (penalty for entering each pixel with a jump)."""
    import torch

    _, Y, X = C.shape
    S = torch.zeros_like(C)

    def passes(Cl, Sl, P2l):  # Cl, Sl: (L, N, W); P2l: (L, W)
        L = Cl.shape[0]
        for order in (range(L), range(L - 1, -1, -1)):
            prev = None
            for i in order:
                if prev is None:
                    cur = Cl[i].clone()
                else:
                    m = prev.min(0, keepdim=True).values
                    t = torch.minimum(prev, m + P2l[i])
                    t[:-1] = torch.minimum(t[:-1], prev[1:] + P1)
                    t[1:] = torch.minimum(t[1:], prev[:-1] + P1)
                    cur = Cl[i] + t - m
                Sl[i] += cur
                prev = cur

    # vertical recursions: slices C[:, y, :] are (N, X) with a contiguous inner axis
    passes(C.permute(1, 0, 2), S.permute(1, 0, 2), P2[:, None, :].expand(Y, 1, X))
    # horizontal ones on a transposed copy
    Ch = C.permute(2, 0, 1).contiguous()
    Sh = torch.zeros_like(Ch)
    passes(Ch, Sh, P2.t()[:, None, :].contiguous())
    S += Sh.permute(1, 2, 0)
    return S


def _subcandidate(S, cands):
    """Winner-takes-all over a (N, Y, X) volume with equiangular sub-step refinement."""
    import torch

    N = S.shape[0]
    i = S.argmin(0)
    c = torch.as_tensor(cands, dtype=torch.float32, device=S.device)
    d = c[i]
    if N < 3:
        return d
    il = (i - 1).clamp(0, N - 1)
    ir = (i + 1).clamp(0, N - 1)
    cb = S.gather(0, i[None])[0]
    cl = S.gather(0, il[None])[0]
    cr = S.gather(0, ir[None])[0]
    den = 2.0 * (torch.maximum(cl, cr) - cb)
    inner = (i > 0) & (i < N - 1) & (den > 1e-12)
    off = torch.where(inner, (cl - cr) / den.clamp_min(1e-12), torch.zeros((), device=S.device)).clamp(-0.5, 0.5)
    step_r = c[ir] - d
    step_l = d - c[il]
    return d + torch.where(off > 0, off * step_r, off * step_l)


def _cost_volume(ref, views, cands, progress=None, stop=None):
    """(N, Y, X) occlusion-aware matching costs.  ``views``: [(ray, dv, du, tensor)]."""
    import torch

    Y, X, C = ref.shape
    dev = ref.device
    grey = _luminance(ref)
    mI = _box(grey, _GF_RADIUS)
    vI = _box(grey * grey, _GF_RADIUS) - mI * mI
    counts = Counter(r for r, *_ in views)
    wedges = [tuple(r for r in w if r in counts) for w in _WEDGES]
    wedges = [w for w in wedges if w]
    wedge_n = [sum(counts[r] for r in w) * C for w in wedges]
    vol = torch.empty((len(cands), Y, X), dtype=torch.float32, device=dev)
    shifted = torch.empty_like(ref)
    tmp = torch.empty_like(ref)
    # per-ray sums keep the channel axis: a reduction over a short innermost axis
    # is slow, so channels are summed once per wedge and candidate instead of per view
    ray_cost = torch.empty((len(_RAYS), Y, X, C), dtype=torch.float32, device=dev)
    for n, d in enumerate(cands):
        if stop is not None and stop():
            return None
        ray_cost.zero_()
        for r, dv, du, src in views:
            shift(shifted, src, float(d) * dv, float(d) * du, tmp, order=_ORDER)
            shifted.sub_(ref).abs_()
            ray_cost[r] += shifted
        g = torch.stack([sum(ray_cost[r] for r in w) / k for w, k in zip(wedges, wedge_n)])
        g = _sum_channels(g)
        g = _guided(grey, g, _GF_RADIUS, _GF_EPS, (mI, vI))
        vol[n] = g.min(0).values
        if progress is not None:
            progress(n + 1, len(cands))
    return vol


def _penalties(ref, smoothness: float):
    import torch

    grey = _luminance(ref)
    g = torch.zeros_like(grey)
    g[1:] = (grey[1:] - grey[:-1]).abs()
    g[:, 1:] = torch.maximum(g[:, 1:], (grey[:, 1:] - grey[:, :-1]).abs())
    return _P1 * smoothness, (_P2 * smoothness) / (1.0 + g / _EDGE)


def _load_star(lf, ref, device, scale: int = 1, max_offset: int | None = None):
    """Reference view and star views as tensors on ``device``, area-downsampled by ``scale``."""
    import torch
    import torch.nn.functional as F

    def get(v, u):
        t = torch.from_numpy(np.ascontiguousarray(lf.view(v, u), dtype=np.float32)).to(device)
        if not torch.isfinite(t).all():
            raise LightFieldError(f"view ({v}, {u}) contains NaN or infinite values.")
        if scale > 1:
            Y, X, _ = t.shape
            Yc, Xc = (Y // scale) * scale, (X // scale) * scale
            t = F.avg_pool2d(t[:Yc, :Xc].permute(2, 0, 1)[None], scale)[0].permute(1, 2, 0).contiguous()
        return t

    vr, ur = ref
    views = []
    for r, v, u in _star(lf, ref):
        if max_offset is not None and max(abs(v - vr), abs(u - ur)) > max_offset:
            continue
        views.append((r, v - vr, u - ur, get(v, u)))
    return get(vr, ur), views


def _candidates(candidates, lo_hi, step=_DEFAULT_STEP, n_min=8, n_max=128):
    if candidates is None or (isinstance(candidates, (int, np.integer)) and not isinstance(candidates, bool)):
        lo, hi = lo_hi
        if candidates is None:
            n = int(np.clip(math.ceil((hi - lo) / step) + 1, n_min, n_max))
        else:
            n = int(candidates)
            if n < 2:
                raise LightFieldError(f"need at least 2 candidate disparities, got {n}.")
        return np.linspace(lo, hi, n)
    try:
        c = np.asarray(candidates, dtype=np.float64).ravel()
    except (TypeError, ValueError) as e:
        raise LightFieldError("candidates must be None, an int or a sequence of disparities.") from e
    if c.size < 2 or not np.all(np.isfinite(c)):
        raise LightFieldError("candidates must hold at least 2 finite disparities.")
    c = np.unique(c)
    if c.size < 2:
        raise LightFieldError("candidates must hold at least 2 different disparities.")
    return c


def estimate_disparity(
    lf: LightField,
    candidates=None,
    *,
    disparity_range: tuple[float, float] | None = None,
    smoothness: float = 1.0,
    device=None,
    progress: Callable[[int, int], Any] | None = None,
    cancel=None,
) -> np.ndarray | None:
    """Disparity (pixels per view step) of the centre view, (Y, X) float32.

    Parameters
    ----------
    candidates
        Disparities to test: None (steps of about 0.1 over ``disparity_range``,
        8 to 128 of them), an int (that many, evenly spread over the range) or a
        sequence.  The result is refined between candidates.
    disparity_range
        (lo, hi) to search when ``candidates`` is None or an int; default: the
        light field's metadata ``disparity_range`` if given (a reader may take
        it from the source's parameters), else :func:`estimate_disparity_range`.
        The ground-truth map ``lf.disparity`` is never used.
    smoothness
        Scale of the semi-global smoothness penalties; 0 gives the raw
        per-pixel (guided-filtered) estimate.
    device
        None (CPU), ``"auto"`` or a torch device name.
    progress, cancel
        ``progress(i, n)`` after each candidate; when ``cancel`` (a
        :class:`~napari_lfdeblur.CancelToken` or a function returning True)
        asks to stop, the estimation stops and None is returned.
    """
    import torch

    stop = cancel_check(cancel, where="estimate_disparity")
    check_lightfield(lf)
    if not (isinstance(smoothness, (int, float)) and smoothness >= 0 and math.isfinite(smoothness)):
        raise LightFieldError(f"smoothness must be a number >= 0, got {smoothness!r}.")
    dev = resolve_device(device)
    if candidates is not None and not isinstance(candidates, (int, np.integer)):
        cands = _candidates(candidates, None)
    else:
        if disparity_range is None:
            disparity_range = lf.metadata.get("disparity_range")
        if disparity_range is None:
            disparity_range = estimate_disparity_range(lf, device=device)
        cands = _candidates(candidates, _check_range(disparity_range))
    with torch.no_grad(), cpu_threads(dev):
        ref, views = _load_star(lf, lf.center_index(), dev)
        vol = _cost_volume(ref, views, cands, progress, stop)
        if vol is None:
            return None
        if smoothness > 0:
            P1, P2 = _penalties(ref, float(smoothness))
            vol = _sgm(vol, P1, P2)
        d = _subcandidate(vol, cands)
    return np.ascontiguousarray(d.cpu().numpy(), dtype=np.float32)


def _check_range(rng) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in rng)
    except (TypeError, ValueError) as e:
        raise LightFieldError(f"disparity_range must be a pair (lo, hi), got {rng!r}.") from e
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise LightFieldError(f"disparity_range must be finite, got {rng!r}.")
    if hi < lo:
        lo, hi = hi, lo
    if hi - lo < 1e-3:
        lo, hi = lo - 0.5, hi + 0.5
    return lo, hi


def estimate_disparity_range(
    lf: LightField,
    *,
    max_disparity: float | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    device=None,
) -> tuple[float, float]:
    """(lo, hi) disparity range of the scene, estimated from the views.

    A coarse :func:`estimate_disparity` on views area-downsampled to about
    128 px, searching ``[-max_disparity, max_disparity]`` (default: an eighth
    of the view size divided by the largest view offset, i.e. up to an eighth
    of the image of parallax between the centre and the outermost views, at
    least 4 px per view step).  The ``percentiles`` of the disparity over
    textured pixels are returned, widened by 5 % of the span plus half a coarse
    candidate step on each side.
    """
    import torch

    check_lightfield(lf)
    dev = resolve_device(device)
    Y, X = lf.view_shape
    ref_idx = lf.center_index()
    star = _star(lf, ref_idx)
    vr, ur = ref_idx
    max_off = max(max(abs(v - vr), abs(u - ur)) for _, v, u in star)
    scale = max(1, round(min(Y, X) / 128))
    if min(Y, X) // scale < 16:
        raise LightFieldError(f"views of {Y}x{X} pixels are too small to estimate a disparity range.")
    if max_disparity is None:
        max_disparity = max(4.0, min(Y, X) / 8.0 / max_off)
    max_disparity = float(max_disparity)
    if not (max_disparity > 0 and math.isfinite(max_disparity)):
        raise LightFieldError(f"max_disparity must be a positive number, got {max_disparity!r}.")
    p_lo, p_hi = percentiles
    if not (0 <= p_lo < p_hi <= 100):
        raise LightFieldError(f"percentiles must be (lo, hi) with 0 <= lo < hi <= 100, got {percentiles!r}.")
    # coarse candidates: 0.1 px per view step at the coarse scale
    coarse_max = max_disparity / scale
    n = int(np.clip(math.ceil(2 * coarse_max / 0.1) + 1, 9, 161))
    cands = np.linspace(-coarse_max, coarse_max, n)
    with torch.no_grad(), cpu_threads(dev):
        ref, views = _load_star(lf, ref_idx, dev, scale=scale)
        vol = _cost_volume(ref, views, cands)
        P1, P2 = _penalties(ref, 1.0)
        d = _subcandidate(_sgm(vol, P1, P2), cands).cpu().numpy() * scale
        grey = _luminance(ref).cpu().numpy()
    gy, gx = np.gradient(grey)
    g = np.hypot(gy, gx)
    b = max(1, round(0.03 * min(g.shape)))
    inner = np.zeros_like(g, dtype=bool)
    inner[b:-b, b:-b] = True
    textured = inner & (g >= np.percentile(g[inner], 50))
    vals = d[textured] if textured.sum() > 20 else d[inner]
    lo, hi = np.percentile(vals, [p_lo, p_hi])
    margin = 0.05 * (hi - lo) + 0.5 * (cands[1] - cands[0]) * scale
    return float(lo - margin), float(hi + margin)


def lightfield_disparity_range(lf: LightField) -> tuple[float, float]:
    """The disparity range to work in: the metadata ``disparity_range`` when the
    source gives one, else the 0.5-99.5 percentiles of the ground-truth map,
    else :func:`estimate_disparity_range`."""
    check_lightfield(lf)
    rng = lf.metadata.get("disparity_range")
    if rng is not None:
        return _check_range(rng)
    if lf.disparity is not None and np.isfinite(lf.disparity).any():
        lo, hi = np.nanpercentile(lf.disparity, [0.5, 99.5])
        return _check_range((lo, hi))
    return estimate_disparity_range(lf)
