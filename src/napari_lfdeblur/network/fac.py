"""Filter adaptive convolution (FAC): a different 7x7 filter at every pixel.

Given an image ``I`` (N, C, H, W) and per-pixel kernels ``K`` (N, 49, H, W), with ``I`` replicate-padded and the
same 49 weights for every channel,

    out(y, x) = sum_{dy, dx in 0..6} K[dy * 7 + dx](y, x) * I(y + dy - 3, x + dx - 3)

:func:`fac` sums over the 49 shifted views of the padded image, never building the (N, C * 49, H, W) "unfolded"
tensor that :func:`fac_unfold`, the reference for tests and benchmarks, does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["KERNEL_SIZE", "fac", "fac_unfold"]

KERNEL_SIZE = 7


def _check(image: torch.Tensor, kernels: torch.Tensor, k: int) -> None:
    if image.dim() != 4 or kernels.dim() != 4:
        raise ValueError(
            f"fac expects a (N, C, H, W) image and (N, {k * k}, H, W) kernels, "
            f"got {tuple(image.shape)} and {tuple(kernels.shape)}"
        )
    n, _, h, w = image.shape
    if kernels.shape != (n, k * k, h, w):
        raise ValueError(
            f"fac kernels must have shape (N, {k * k}, H, W) = {(n, k * k, h, w)} for an image of shape "
            f"{tuple(image.shape)}, got {tuple(kernels.shape)}"
        )


def fac(image: torch.Tensor, kernels: torch.Tensor, kernel_size: int = KERNEL_SIZE) -> torch.Tensor:
    """Apply per-pixel ``kernel_size``² filters to ``image`` (replicate padding), shift by shift: memory for the
    padded image and the output only.  Differentiable (autograd records the in-place sums)."""
    k = int(kernel_size)
    _check(image, kernels, k)
    _, _, h, w = image.shape
    r = k // 2
    # one kernel plane at a time is read: NCHW layout keeps those reads contiguous
    # (DRBNet produces NCHW kernels; other callers with channels_last kernels pay a copy)
    image = image.contiguous()
    kernels = kernels.contiguous()
    padded = F.pad(image, (r, r, r, r), mode="replicate")
    out = torch.zeros_like(image, dtype=torch.result_type(image, kernels))
    for dy in range(k):
        rows = padded[:, :, dy : dy + h]
        for dx in range(k):
            i = dy * k + dx
            # (N, C, H, W) view of the padded image times (N, 1, H, W) weights, summed into out
            out.addcmul_(rows[:, :, :, dx : dx + w], kernels[:, i : i + 1])
    return out


def fac_unfold(image: torch.Tensor, kernels: torch.Tensor, kernel_size: int = KERNEL_SIZE) -> torch.Tensor:
    """Reference FAC with ``unfold``: materialises (N, C * k², H * W); for tests and benchmarks only."""
    k = int(kernel_size)
    _check(image, kernels, k)
    n, c, h, w = image.shape
    r = k // 2
    padded = F.pad(image, (r, r, r, r), mode="replicate")
    cols = F.unfold(padded, kernel_size=k)  # (N, C * k*k, H*W), channel-major then dy, dx
    cols = cols.view(n, c, k * k, h, w)
    return (cols * kernels.unsqueeze(1)).sum(dim=2)
