"""Training losses, each called ``loss(pred, target, intermediates)`` on images in [0, 1] (so a value reads as an
image difference: an L1 of 0.01 is an average error of 2.55 grey levels), ``intermediates`` being DRBNet's
coarser estimates ``[1/8, 1/4, 1/2]`` or None.

Phase 1 (light-field pairs, pixel-aligned): :class:`PixelLoss`.  With multi-scale supervision each coarser
estimate counts half as much as the next finer one (weights 1, 0.5, 0.25, 0.125): it only needs to be good enough
to start the next DRB from, and the extra weights' sum, 0.875, keeps the full-resolution output the main goal.

Phase 2 (real two-shot pairs, slightly misaligned): :class:`VGGLoss`, the paper's, compares pooled deep VGG19
features, which change little under a shift of a few pixels; :class:`ShiftTolerantL1` needs no download.  Why
the latter rather than a contextual (CoBi) loss on RGB patches: it keeps the plain L1's meaning and scale (zero
exactly when the output is the target up to a small shift, the L1 itself when the pair is aligned), costs
(2k+1)² cheap subtractions rather than an all-pairs patch distance matrix, and cannot be lowered by rearranging
texture, as a bag-of-patches loss can.  Its coarse scales box-filter both images with stride 1 rather than
downsample them: such a filter commutes with integer shifts, whereas downsampled by 4 a 2 px shift is half a pixel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TrainingError
from .config import DEFAULT_LOSS, DEFAULT_MULTISCALE, PHASES

__all__ = [
    "DEFAULT_SCALE_WEIGHTS",
    "LOSS_NAMES",
    "CombinedLoss",
    "PixelLoss",
    "ShiftTolerantL1",
    "VGGLoss",
    "charbonnier",
    "make_loss",
]

#: weights of the full-resolution output and the 1/2, 1/4, 1/8 estimates
DEFAULT_SCALE_WEIGHTS = (1.0, 0.5, 0.25, 0.125)
LOSS_NAMES = ("l1", "charbonnier", "mse", "shift_l1", "vgg")


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """mean(sqrt((pred - target)^2 + eps^2)): a smooth L1 (minus about eps at 0)."""
    d = pred - target
    return torch.sqrt(d * d + eps * eps).mean()


def _downsample(t: torch.Tensor, size) -> torch.Tensor:
    if tuple(t.shape[-2:]) == tuple(size):
        return t
    h, w = t.shape[-2:]
    if h % size[0] == 0 and w % size[1] == 0 and h // size[0] == w // size[1]:
        return F.avg_pool2d(t, h // size[0])
    return F.interpolate(t, size=tuple(size), mode="area")


class PixelLoss(nn.Module):
    """L1 / Charbonnier / MSE with optional multi-scale supervision.

    ``scale_weights``: weights of the full-resolution output and of the 1/2,
    1/4 and 1/8 estimates (used when intermediates are given and
    ``multiscale`` is True); targets are area-downsampled to each estimate's
    size.
    """

    def __init__(self, kind: str = "l1", *, multiscale: bool = True,
                 scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS, eps: float = 1e-3):
        super().__init__()
        if kind not in ("l1", "charbonnier", "mse"):
            raise TrainingError(f"pixel loss kind must be 'l1', 'charbonnier' or 'mse', got {kind!r}")
        if len(scale_weights) != 4:
            raise TrainingError("scale_weights are 4 numbers: full resolution, 1/2, 1/4, 1/8")
        self.kind = kind
        self.multiscale = bool(multiscale)
        self.scale_weights = tuple(float(w) for w in scale_weights)
        self.eps = float(eps)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if self.kind == "l1":
            return (a - b).abs().mean()
        if self.kind == "mse":
            return F.mse_loss(a, b)
        return charbonnier(a, b, self.eps)

    def forward(self, pred, target, intermediates=None):
        loss = self.scale_weights[0] * self.distance(pred, target)
        if self.multiscale and intermediates:
            # intermediates come coarse to fine: 1/8, 1/4, 1/2
            for est, w in zip(intermediates, self.scale_weights[:0:-1]):
                if w:
                    loss = loss + w * self.distance(est, _downsample(target, est.shape[-2:]))
        return loss

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, multiscale={self.multiscale}, scale_weights={self.scale_weights}"


def _shift_min_l1(p: torch.Tensor, t: torch.Tensor, k: int, tile: int) -> torch.Tensor:
    """Per tile, the smallest mean |p - shift(t)| over integer shifts in [-k, k]^2."""
    h, w = p.shape[-2:]
    if k <= 0 or h <= 2 * k or w <= 2 * k:
        return (p - t).abs().mean()
    h2, w2 = h - 2 * k, w - 2 * k
    pc = p[..., k : k + h2, k : k + w2]
    th, tw = min(tile, h2), min(tile, w2)
    errs = []
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            d = (pc - t[..., k + dy : k + dy + h2, k + dx : k + dx + w2]).abs().mean(1, keepdim=True)
            errs.append(F.avg_pool2d(d, (th, tw), ceil_mode=True))
    return torch.stack(errs, 0).amin(0).mean()


class ShiftTolerantL1(nn.Module):
    """L1 after the best integer shift of the target within +-``max_shift`` px, chosen per ``tile`` x ``tile`` tile
    (following a misalignment that varies over the frame, e.g. focus breathing between the two shots), at several
    scales (see the module docstring).  The minimum is hard: its gradient flows through each tile's best shift.

    ``scales``: box-filter sizes (1 = the images themselves); ``weights``: one per scale (default 1, 1/2, 1/4,
    ...).  With ``max_shift=0`` and ``scales=(1,)`` it is the plain L1.
    """

    def __init__(self, max_shift: int = 3, tile: int = 32, scales: Sequence[int] = (1, 2, 4),
                 weights: Sequence[float] | None = None):
        super().__init__()
        if max_shift < 0 or tile < 1:
            raise TrainingError(f"max_shift must be >= 0 and tile >= 1, got {max_shift}, {tile}")
        self.max_shift = int(max_shift)
        self.tile = int(tile)
        self.scales = tuple(int(s) for s in scales)
        if not self.scales or any(s < 1 for s in self.scales):
            raise TrainingError(f"scales must be positive integers, got {scales}")
        self.weights = tuple(float(w) for w in (weights if weights is not None else [0.5**i for i in
                                                                                      range(len(self.scales))]))
        if len(self.weights) != len(self.scales):
            raise TrainingError("ShiftTolerantL1 needs one weight per scale")

    def forward(self, pred, target, intermediates=None):
        if pred.shape != target.shape:
            raise TrainingError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        loss = pred.new_zeros(())
        for s, w in zip(self.scales, self.weights):
            if s == 1:
                p, t = pred, target
            else:
                if min(pred.shape[-2:]) < 2 * s + 2 * self.max_shift + 1:
                    continue
                p, t = F.avg_pool2d(pred, s, stride=1), F.avg_pool2d(target, s, stride=1)
            loss = loss + w * _shift_min_l1(p, t, self.max_shift, self.tile)
        return loss

    def extra_repr(self) -> str:
        return f"max_shift={self.max_shift}, tile={self.tile}, scales={self.scales}, weights={self.weights}"


#: pix2pixHD's choice of VGG19 layers and weights (deeper layers count more)
DEFAULT_VGG_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_VGG_WEIGHTS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)


class VGGLoss(nn.Module):
    """Weighted L1 distances between VGG19 features of prediction and target.

    ``weights``: path of torchvision's ``vgg19-dcbb9e9d.pth`` (default: torch's
    hub cache), or an already built :class:`~.vgg.VGG19Features`;
    ``download``: fetch the file when it is missing.  Raises a TrainingError
    saying how to get the weights when they cannot be found.
    """

    def __init__(self, weights=None, layers: Sequence = DEFAULT_VGG_LAYERS,
                 layer_weights: Sequence[float] = DEFAULT_VGG_WEIGHTS, download: bool = False):
        super().__init__()
        from .vgg import VGG19Features, load_vgg19

        if len(layers) != len(layer_weights):
            raise TrainingError("VGGLoss needs one weight per layer")
        self.vgg = weights if isinstance(weights, VGG19Features) else load_vgg19(weights, layers, download)
        self.layer_weights = tuple(float(w) for w in layer_weights)

    def forward(self, pred, target, intermediates=None):
        fp = self.vgg(pred)
        with torch.no_grad():
            ft = self.vgg(target)
        loss = pred.new_zeros(())
        for a, b, w in zip(fp, ft, self.layer_weights):
            loss = loss + w * (a - b).abs().mean()
        return loss


class CombinedLoss(nn.Module):
    """A weighted sum of named losses; ``.terms`` holds each term's last value."""

    def __init__(self, parts: Sequence[tuple[str, float, nn.Module]], spec: str = ""):
        super().__init__()
        if not parts:
            raise TrainingError("a loss needs at least one term")
        self.names = [p[0] for p in parts]
        self.weights = [float(p[1]) for p in parts]
        self.parts = nn.ModuleList([p[2] for p in parts])
        self.spec = spec or "+".join(n if w == 1 else f"{w:g}*{n}" for n, w, _ in parts)
        self.terms: dict[str, float] = {}

    def forward(self, pred, target, intermediates=None):
        pred, target = pred.float(), target.float()
        if intermediates is not None:
            intermediates = [e.float() for e in intermediates]
        total = None
        terms = {}
        for name, w, fn in zip(self.names, self.weights, self.parts):
            v = fn(pred, target, intermediates)
            terms[name] = float(v.detach())
            total = w * v if total is None else total + w * v
        self.terms = terms
        return total

    def __str__(self) -> str:
        return self.spec


_TERM = re.compile(r"^\s*(?:(\d*\.?\d+(?:e-?\d+)?)\s*\*\s*)?([a-z0-9_]+)\s*$")


def make_loss(spec: str | nn.Module | None = None, phase: str = "pixel", *, multiscale: bool | None = None,
              scale_weights: Sequence[float] = DEFAULT_SCALE_WEIGHTS, max_shift: int = 3, tile: int = 32,
              vgg_weights=None, vgg_download: bool = False, vgg_layers: Sequence = DEFAULT_VGG_LAYERS,
              vgg_layer_weights: Sequence[float] = DEFAULT_VGG_WEIGHTS) -> CombinedLoss:
    """A loss from a spec: ``"l1"``, ``"charbonnier"``, ``"mse"``, ``"shift_l1"``, ``"vgg"`` or a weighted sum such
    as ``"vgg+0.1*shift_l1"`` (:class:`CombinedLoss` keeps each term's last value in ``.terms``, for logs).

    ``spec`` None: ``"l1"`` for phase ``"pixel"``, ``"vgg"`` for phase ``"feature"``.  ``multiscale`` (pixel terms
    only) defaults to True in the pixel phase and False in the feature phase.  An ``nn.Module`` is wrapped as is
    (it is called ``loss(pred, target, intermediates)``).
    """
    if phase not in PHASES:
        raise TrainingError(f"phase must be 'pixel' or 'feature', got {phase!r}")
    if isinstance(spec, CombinedLoss):
        return spec
    if isinstance(spec, nn.Module):
        return CombinedLoss([(type(spec).__name__, 1.0, spec)])
    if spec is None:
        spec = DEFAULT_LOSS[phase]
    if not isinstance(spec, str):
        raise TrainingError(f"loss must be a string such as 'l1', 'vgg' or 'vgg+0.1*shift_l1', got {spec!r}")
    ms = DEFAULT_MULTISCALE[phase] if multiscale is None else bool(multiscale)
    parts = []
    for term in spec.lower().split("+"):
        m = _TERM.match(term)
        if not m or m.group(2) not in LOSS_NAMES:
            raise TrainingError(f"unknown loss term {term.strip()!r} in {spec!r}; terms are {', '.join(LOSS_NAMES)}, "
                                "optionally weighted and summed: 'vgg+0.1*shift_l1'")
        w = float(m.group(1)) if m.group(1) else 1.0
        name = m.group(2)
        fn: nn.Module
        if name in ("l1", "charbonnier", "mse"):
            fn = PixelLoss(name, multiscale=ms, scale_weights=scale_weights)
        elif name == "shift_l1":
            fn = ShiftTolerantL1(max_shift=max_shift, tile=tile)
        else:
            fn = VGGLoss(vgg_weights, vgg_layers, vgg_layer_weights, download=vgg_download)
        parts.append((name, w, fn))
    return CombinedLoss(parts, spec=spec.lower().replace(" ", ""))
