"""PSNR and SSIM (computed by scikit-image, settings in docs/api.md, Evaluation) for validation and evaluation,
and :func:`score_model`: a network scored over a pair dataset, together with the blurry input.

Inputs are images in [0, 1]: torch tensors (N, C, H, W) or (C, H, W), or numpy arrays (H, W) / (H, W, C) /
(N, H, W, C); scores are computed in float64 on the CPU.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..cancel import cancel_check
from ..errors import DeblurInputError
from ..inference.runtime import from_network, to_network

__all__ = ["psnr", "psnr_ssim", "score_model", "ssim", "ssim_window"]

_WIN = 11
_MIN_WIN = 3  # a 1-pixel window has no structure to compare, and windows stay odd (centred)


def _as_nhwc(x) -> np.ndarray:
    """(N, H, W, C) float64 array from a tensor (channels first) or a numpy array (channels last)."""
    if hasattr(x, "detach"):  # a torch tensor: (H, W), (C, H, W) or (N, C, H, W)
        t = x.detach().to("cpu").double()
        t = t[None, None] if t.dim() == 2 else t[None] if t.dim() == 3 else t
        return t.numpy().transpose(0, 2, 3, 1)
    a = np.asarray(x)
    if a.dtype.kind in "ui":
        raise TypeError("metrics expect float images in [0, 1]; divide integer images by their maximum first")
    a = a.astype(np.float64, copy=False)
    while a.ndim > 4 and a.shape[0] == 1:  # a plane of a stack layer, its length-1 axes still on
        a = a[0]
    if a.ndim == 2:
        a = a[None, ..., None]
    elif a.ndim == 3:
        a = a[None]
    if a.ndim != 4:
        raise ValueError(f"expected an image (H, W), (H, W, C) or (N, H, W, C), got shape {a.shape}")
    return a


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    na, nb = _as_nhwc(a), _as_nhwc(b)
    if na.shape != nb.shape:
        raise ValueError(f"images to compare have different shapes: {na.shape[1:]} and {nb.shape[1:]} "
                         "(height, width, channels)")
    return na, nb


def psnr(pred, target, data_range: float = 1.0, reduction: str = "mean"):
    """PSNR in dB (per image; ``reduction="mean"`` averages over the batch,
    ``"none"`` returns a list).  Identical images give ``inf``."""
    from skimage.metrics import peak_signal_noise_ratio

    a, b = _pair(pred, target)
    with np.errstate(divide="ignore"):  # identical images: inf, said by the value
        vals = [float(peak_signal_noise_ratio(t, p, data_range=data_range)) for p, t in zip(a, b)]
    return vals if reduction == "none" else float(np.mean(vals))


def ssim_window(height: int, width: int) -> int:
    """The side of the SSIM window for an image of ``height`` x ``width``: 11, or for smaller images the
    largest odd side that fits; a :class:`~napari_lfdeblur.errors.DeblurInputError` under 3x3."""
    side = min(int(height), int(width))
    if side < _MIN_WIN:
        raise DeblurInputError(
            f"SSIM needs images of at least {_MIN_WIN}x{_MIN_WIN} pixels (its window must fit inside the image), "
            f"got {int(width)}x{int(height)}: score larger images or regions"
        )
    return min(_WIN, side - (1 - side % 2))


def ssim(pred, target, data_range: float = 1.0, reduction: str = "mean"):
    """Mean SSIM (Wang et al. 2004: an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03, over the valid
    region), with a smaller window for images under 11x11 (:func:`ssim_window`); images under 3x3 raise
    :class:`~napari_lfdeblur.errors.DeblurInputError`."""
    from skimage.metrics import structural_similarity

    a, b = _pair(pred, target)
    win = ssim_window(*a.shape[1:3])
    vals = [float(structural_similarity(p, t, win_size=win, data_range=data_range, channel_axis=-1,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False))
            for p, t in zip(a, b)]
    return vals if reduction == "none" else float(np.mean(vals))


def psnr_ssim(pred, target, data_range: float = 1.0) -> tuple[float, float]:
    """Both scores at once: ``(psnr, ssim)``."""
    return psnr(pred, target, data_range), ssim(pred, target, data_range)


def _to_uint8_hwc(t) -> np.ndarray:
    a = t.detach().float().clamp(0, 1).mul(255).add(0.5).to("cpu").numpy().astype(np.uint8)
    return np.ascontiguousarray(a.transpose(1, 2, 0))


def finite_mean(vals) -> float:
    """Mean of the finite values: identical images give inf PSNR, which would swamp every other image
    (inf only when every value is; NaN for none)."""
    finite = [v for v in vals if math.isfinite(v)]
    if not len(vals):
        return math.nan
    return float(np.mean(finite)) if finite else float(vals[0])


def _next_items(data, i: int, batch: int) -> list:
    """The dataset's items from ``i`` on that go through the network together: up to ``batch``, or the first
    alone when their sizes differ."""
    items = [data[j] for j in range(i, min(len(data), i + batch))]
    return items if len({tuple(it[0].shape) for it in items}) == 1 else items[:1]


def _run_network(model, blur):
    """The network's output for ``blur`` in [0, 1], through the network's [-1, 1] scaling and back."""
    out = model(to_network(blur))
    if isinstance(out, tuple):
        out = out[0]
    return from_network(out.float())


def _scores(out, blur, sharp, input_scores: bool) -> list[dict[str, float]]:
    """Per image of the batch: the output's PSNR/SSIM against ``sharp`` and the input's (NaN when not asked)."""
    ps, ss = psnr(out, sharp, reduction="none"), ssim(out, sharp, reduction="none")
    if input_scores:
        ips, iss = psnr(blur, sharp, reduction="none"), ssim(blur, sharp, reduction="none")
    else:
        ips = iss = [math.nan] * len(ps)
    return [{"psnr": p, "ssim": s, "input_psnr": ip, "input_ssim": is_} for p, s, ip, is_ in zip(ps, ss, ips, iss)]


def _summary(per_image: list[dict], windows: list[int], shots: list, seconds: float, stopped: bool) -> dict:
    return {
        **{k: finite_mean([r[k] for r in per_image]) for k in ("psnr", "ssim", "input_psnr", "input_ssim")},
        "n": len(per_image),
        "per_image": per_image,
        "ssim_window": min(windows, default=None),
        "samples": shots,
        "seconds": seconds,
        "stopped": stopped,
    }


def score_model(model, data, *, device=None, batch: int = 1, input_scores: bool = True, samples: int = 0,
                cancel=None) -> dict[str, Any]:
    """Score ``model`` on a pair dataset.

    ``data``: a dataset of (blurred, sharp) tensors (3, H, W) in [0, 1] (e.g. from
    :func:`~napari_lfdeblur.training.datasets.open_pairs` with ``crop="center"`` or ``"full"``), or a path / list
    that ``open_pairs`` reads (full images).  The network's output is mapped back from its [-1, 1] and clipped to
    [0, 1].

    Returns a dict: ``psnr``, ``ssim`` (means over images), ``input_psnr``, ``input_ssim`` (of the blurred input;
    NaN when ``input_scores`` is False), ``n`` (images scored), ``per_image`` (list of dicts with the name when
    the dataset has names), ``ssim_window`` (the smallest SSIM window used: 11, less when an image was under
    11x11, see :func:`ssim_window`; None when no image was scored; images under 3x3 are a
    :class:`~napari_lfdeblur.errors.DeblurInputError`), ``samples`` (the first ``samples`` ``(name, blurred,
    output, sharp)`` uint8 images), ``seconds``, ``stopped`` (True when ``cancel``, a
    :class:`~napari_lfdeblur.CancelToken` or a function returning True, interrupted it).
    """
    stop = cancel_check(cancel, where="score_model")
    import torch

    from .datasets import PairDataset, open_pairs

    if not isinstance(data, torch.utils.data.Dataset):
        data = open_pairs(data, crop="full", augment=False)
    device = torch.device(next(model.parameters()).device if device is None else device)
    names = data.names if isinstance(data, PairDataset) else None
    was_training, t0 = model.training, time.perf_counter()
    model.eval()
    per_image: list[dict] = []
    windows: list[int] = []
    shots: list = []
    i, stopped = 0, False
    try:
        with torch.no_grad():
            while i < len(data) and not (stopped := stop()):
                items = _next_items(data, i, batch)
                blur, sharp = (torch.stack([it[k] for it in items]).to(device) for k in (0, 1))
                windows.append(ssim_window(*sharp.shape[-2:]))  # too small for SSIM: said before the network runs
                out = _run_network(model, blur)
                for k, row in enumerate(_scores(out, blur, sharp, input_scores)):
                    name = names[i + k] if names is not None else str(i + k)
                    per_image.append({"name": name, **row})
                    if len(shots) < samples:
                        shots.append((name, *(_to_uint8_hwc(t[k]) for t in (blur, out, sharp))))
                i += len(items)
    finally:
        model.train(was_training)
    return _summary(per_image, windows, shots, time.perf_counter() - t0, stopped)
