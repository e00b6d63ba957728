"""Image quality scores used for validation (and by an evaluation command).

- :func:`psnr`: peak signal-to-noise ratio in dB, ``10 log10(range² / MSE)``,
  per image, then averaged over the batch.
- :func:`ssim`: structural similarity with the usual constants (Wang et al.
  2004): an 11x11 Gaussian window of sigma 1.5, K1 = 0.01, K2 = 0.03,
  computed per channel and averaged over channels and pixels, over the
  *valid* region (5 pixels are lost at each border).  This equals
  ``skimage.metrics.structural_similarity(a, b, data_range=1,
  channel_axis=-1, gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False)``, the setting most deblurring papers use.
  Images under 11 pixels on a side use the largest odd window that fits
  (:func:`ssim_window`: the same Gaussian, cut to 3x3 ... 9x9), so they
  still get a score, though not one comparable with 11x11 scores; images
  under 3x3 have no SSIM (:class:`~napari_lfdeblur.errors.DeblurInputError`).
- :func:`score_model`: run a network over a pair dataset and score it against
  the sharp images, together with the blurry input itself.

Inputs are images in [0, 1] (``data_range=1``): torch tensors (N, C, H, W)
or (C, H, W), or numpy arrays (H, W) / (H, W, C) / (N, H, W, C).  Scores are
computed in float64 on the CPU for numpy input, in float32 on the tensor's
device otherwise.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from ..cancel import cancel_check
from ..errors import DeblurInputError

__all__ = ["psnr", "psnr_ssim", "score_model", "ssim", "ssim_window"]

_WIN = 11
_MIN_WIN = 3  # a 1-pixel window has no structure to compare, and windows stay odd (centred)
_SIGMA = 1.5
_K1, _K2 = 0.01, 0.03


def _as_nchw(x):
    """(N, C, H, W) torch tensor from a tensor or a numpy array (channels last)."""
    import torch

    if isinstance(x, torch.Tensor):
        t = x
        if t.dim() == 2:
            t = t[None, None]
        elif t.dim() == 3:
            t = t[None]
        return t.float() if not t.is_floating_point() or t.dtype == torch.float16 or t.dtype == torch.bfloat16 else t
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
    return torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))


def _pair(a, b):
    ta, tb = _as_nchw(a), _as_nchw(b)
    if ta.shape != tb.shape:
        raise ValueError(f"images to compare have different shapes: {tuple(ta.shape)} and {tuple(tb.shape)}")
    if tb.dtype != ta.dtype:
        tb = tb.to(ta.dtype)
    return ta, tb.to(ta.device)


def psnr(pred, target, data_range: float = 1.0, reduction: str = "mean"):
    """PSNR in dB (per image; ``reduction="mean"`` averages over the batch,
    ``"none"`` returns a list).  Identical images give ``inf``."""
    a, b = _pair(pred, target)
    mse = ((a - b) ** 2).flatten(1).mean(1).double()
    vals = [math.inf if m == 0 else 10.0 * math.log10(data_range**2 / m) for m in mse.tolist()]
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


def _gauss_window(device, dtype, win: int = _WIN):
    import torch

    # the same sigma for every window: a smaller window cuts the Gaussian's tails rather than narrowing it,
    # so small images are compared over neighbourhoods of the same scale
    r = win // 2
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    g = torch.exp(-(x**2) / (2 * _SIGMA**2))
    g = (g / g.sum()).to(device=device, dtype=dtype)
    return g


def _filter(x, g):
    """Separable valid Gaussian filtering of (N, C, H, W), channel by channel."""
    import torch.nn.functional as F

    n, c, h, w = x.shape
    x = x.reshape(n * c, 1, h, w)
    x = F.conv2d(x, g.view(1, 1, -1, 1))
    x = F.conv2d(x, g.view(1, 1, 1, -1))
    return x.reshape(n, c, x.shape[-2], x.shape[-1])


def ssim(pred, target, data_range: float = 1.0, reduction: str = "mean"):
    """Mean SSIM (see the module docstring): an 11x11 window, smaller for images under 11x11
    (:func:`ssim_window`); images under 3x3 raise :class:`~napari_lfdeblur.errors.DeblurInputError`."""
    a, b = _pair(pred, target)
    g = _gauss_window(a.device, a.dtype, ssim_window(*a.shape[-2:]))
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    mu_a, mu_b = _filter(a, g), _filter(b, g)
    s_aa = _filter(a * a, g) - mu_a * mu_a
    s_bb = _filter(b * b, g) - mu_b * mu_b
    s_ab = _filter(a * b, g) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * s_ab + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (s_aa + s_bb + c2)
    vals = (num / den).flatten(1).mean(1).double().tolist()
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


def score_model(
    model,
    data,
    *,
    device=None,
    batch: int = 1,
    input_scores: bool = True,
    samples: int = 0,
    cancel=None,
    should_stop=None,
) -> dict[str, Any]:
    """Score ``model`` on a pair dataset.

    ``data``: a dataset of (blurred, sharp) tensors (3, H, W) in [0, 1] (e.g.
    from :func:`~napari_lfdeblur.training.datasets.open_pairs` with
    ``crop="center"`` or ``"full"``), or a path / list that ``open_pairs``
    reads (full images).  The network gets ``2 * blurred - 1`` and its output
    is mapped back with ``(out + 1) / 2`` and clipped to [0, 1].

    Returns a dict: ``psnr``, ``ssim`` (means over images), ``input_psnr``,
    ``input_ssim`` (of the blurred input; NaN when ``input_scores`` is
    False), ``n`` (images scored), ``per_image`` (list of dicts with the
    name when the dataset has names), ``ssim_window`` (the smallest SSIM
    window used: 11, less when an image was under 11x11, see
    :func:`ssim_window`; None when no image was scored; images under 3x3 are
    a :class:`~napari_lfdeblur.errors.DeblurInputError`), ``samples`` (the first ``samples``
    ``(name, blurred, output, sharp)`` uint8 triples), ``seconds``,
    ``stopped`` (True when ``cancel``, a :class:`~napari_lfdeblur.CancelToken` or a function
    returning True, interrupted it; ``should_stop`` is its deprecated name).
    """
    stop = cancel_check(cancel, should_stop, where="score_model")
    import torch

    from .datasets import PairDataset, open_pairs

    if not isinstance(data, torch.utils.data.Dataset):
        data = open_pairs(data, crop="full", augment=False)
    if device is None:
        device = next(model.parameters()).device
    device = torch.device(device)
    names = data.names if isinstance(data, PairDataset) else None
    was_training = model.training
    model.eval()
    t0 = time.perf_counter()
    per_image: list[dict] = []
    windows: list[int] = []
    shots: list = []
    stopped = False
    n = len(data)
    try:
        with torch.no_grad():
            i = 0
            while i < n:
                if stop():
                    stopped = True
                    break
                items = [data[j] for j in range(i, min(n, i + batch))]
                shapes = {tuple(it[0].shape) for it in items}
                if len(shapes) > 1:  # different sizes: one at a time
                    items = items[:1]
                blur = torch.stack([it[0] for it in items]).to(device)
                sharp = torch.stack([it[1] for it in items]).to(device)
                windows.append(ssim_window(*sharp.shape[-2:]))  # too small for SSIM: said before the network runs
                out = model(blur * 2 - 1)
                if isinstance(out, tuple):
                    out = out[0]
                out = ((out.float() + 1) * 0.5).clamp_(0, 1)
                ps, ss = psnr(out, sharp, reduction="none"), ssim(out, sharp, reduction="none")
                if input_scores:
                    ips, iss = psnr(blur, sharp, reduction="none"), ssim(blur, sharp, reduction="none")
                else:
                    ips = iss = [math.nan] * len(items)
                for k in range(len(items)):
                    name = names[i + k] if names is not None else str(i + k)
                    per_image.append(
                        {"name": name, "psnr": ps[k], "ssim": ss[k], "input_psnr": ips[k], "input_ssim": iss[k]}
                    )
                    if len(shots) < samples:
                        shots.append((name, _to_uint8_hwc(blur[k]), _to_uint8_hwc(out[k]), _to_uint8_hwc(sharp[k])))
                i += len(items)
    finally:
        model.train(was_training)

    def mean(key):
        return finite_mean([r[key] for r in per_image])

    return {
        "psnr": mean("psnr"),
        "ssim": mean("ssim"),
        "input_psnr": mean("input_psnr"),
        "input_ssim": mean("input_ssim"),
        "n": len(per_image),
        "per_image": per_image,
        "ssim_window": min(windows, default=None),
        "samples": shots,
        "seconds": time.perf_counter() - t0,
        "stopped": stopped,
    }
