"""DRBNet: the defocus deblurring network of Ruan et al. (CVPR 2022), written from its description
(``shared/spec/drbnet.md``).

An encoder (4 levels), a bottleneck, and a decoder that refines an image estimate coarse to fine (1/8, 1/4, 1/2,
1/1) with a *dynamic residual block* (DRB) per scale: new estimate = I + FAC(I, K) + R, the per-pixel 7x7
kernels K and the residual R predicted from the decoder features and features of the current estimate I.
``DRBNet()`` has the authors' state-dict names and shapes (11,689,616 parameters), so their checkpoint loads
strictly.  Memory: intermediates are freed as soon as used, activations and additions run in place (each on a
fresh convolution output, safe for autograd), and FAC never builds the unfolded tensor.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import DeblurInputError, ModelError
from .fac import KERNEL_SIZE, fac, fac_unfold

__all__ = ["FULL_BASE", "INPUT_CONVENTION", "DRBNet", "pad_to_multiple"]

INPUT_CONVENTION = "rgb_minus1_1"
FULL_BASE = 32
#: the widest and deepest networks built (base 256: 64 times the paper's weights, about 3 GB)
MAX_BASE = 256
MAX_RES_BLOCKS = 64
PAPER_PARAMETERS = 11_689_616
NEG_SLOPE = 0.1
MULTIPLE = 8
N_KERNEL = KERNEL_SIZE * KERNEL_SIZE  # 49
N_IMG = 3

_FAC_IMPLS = {"shift": fac, "unfold": fac_unfold}


def _act() -> nn.Module:
    return nn.LeakyReLU(NEG_SLOPE, inplace=True)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (bias) + LeakyReLU(0.1); state-dict names ``.0.weight``/``.0.bias``."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=True), _act())


class ResBlock(nn.Module):
    """x + conv(LeakyReLU(conv(x))), no activation after the sum; names ``stem.0.0`` and ``stem.0.2``."""

    def __init__(self, channels: int):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Sequential(
                nn.Conv2d(channels, channels, 3, padding=1, bias=True),
                _act(),
                nn.Conv2d(channels, channels, 3, padding=1, bias=True),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        # in place on the fresh conv output: conv's backward does not need its own output
        return out.add_(x)


def upconv(cin: int, cout: int) -> nn.Sequential:
    """ConvTranspose2d(4, stride 2, padding 1) + LeakyReLU: doubles H and W."""
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=True), _act())


def image_branch(widths: tuple[int, int, int]) -> nn.Sequential:
    a, b, c = widths
    return nn.Sequential(conv(N_IMG, a), conv(a, b), conv(b, c))


def kernel_head(cin: int, mid1: int, mid2: int) -> nn.Sequential:
    """conv, conv, 1x1 conv to 49 channels with no activation."""
    return nn.Sequential(conv(cin, mid1), conv(mid1, mid2), nn.Conv2d(mid2, N_KERNEL, 1, bias=True))


def residual_head(cin: int, mid1: int, mid2: int) -> nn.Sequential:
    """conv, conv, 1x1 conv to 3 channels that keeps its LeakyReLU."""
    return nn.Sequential(conv(cin, mid1), conv(mid1, mid2), nn.Sequential(nn.Conv2d(mid2, N_IMG, 1, bias=True), _act()))


def _add_skip(up: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """up + skip; in place when no gradient is recorded (``up`` ends with an in-place
    LeakyReLU whose backward needs its output unmodified)."""
    if torch.is_grad_enabled() and (up.requires_grad or skip.requires_grad):
        return up + skip
    return up.add_(skip)


def _pointwise_nchw(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution whose output is NCHW-contiguous, as FAC needs its kernels.  On channels_last features
    it is, per image, weight (K, C) x pixels (C, HW) (a transposed view of their memory) written straight into
    a (K, HW) block: no transposing copy, no temporary beyond the output.
    """
    if not (x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)) \
            or torch.jit.is_tracing():  # OpenVINO's import of a trace drops out= writes (wrong outputs)
        return conv(x).contiguous()
    n, c, h, w = x.shape
    cout = conv.out_channels
    # in the features' dtype: under autocast x is bfloat16/float16 while the weights stay float32, and the
    # out= products below are not autocast
    weight = conv.weight.view(cout, c).to(x.dtype)
    bias = None if conv.bias is None else conv.bias.view(cout, 1).to(x.dtype)
    pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view of the channels_last memory

    def product(i, out=None):
        kw = {} if out is None else {"out": out}
        if bias is None:
            return torch.mm(weight, pixels[i].t(), **kw)
        return torch.addmm(bias, weight, pixels[i].t(), **kw)

    if torch.is_grad_enabled() and (x.requires_grad or conv.weight.requires_grad):
        # out= is not differentiable: one product per image, then stack
        planes = [product(i) for i in range(n)]
        out = planes[0].unsqueeze(0) if n == 1 else torch.stack(planes)
    else:
        out = torch.empty((n, cout, h * w), dtype=x.dtype, device=x.device)
        for i in range(n):
            product(i, out=out[i])
    return out.view(n, cout, h, w)


def pad_to_multiple(x: torch.Tensor, multiple: int = MULTIPLE) -> tuple[torch.Tensor, int, int]:
    """Pad (N, C, H, W) at the bottom and right to multiples of ``multiple``: reflection where the pad is smaller
    than the side, else replication.  Returns the padded tensor and the original H, W."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, h, w
    mode = "reflect" if (ph < h and pw < w) else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), h, w


def _check_size(base, res_blocks) -> None:
    """A ModelError for a width or depth that is not a whole number, or is too large to allocate."""
    if isinstance(base, bool) or not isinstance(base, int) or base < 1:
        raise ModelError(f"DRBNet base width must be a positive integer (32 = the paper's network), got {base!r}")
    if isinstance(res_blocks, bool) or not isinstance(res_blocks, int) or res_blocks < 0:
        raise ModelError(f"DRBNet res_blocks must be a non-negative integer (2 = the paper), got {res_blocks!r}")
    # refuse before allocating: the weights grow with base**2 (base 1e5: tens of terabytes)
    if base > MAX_BASE:
        n = PAPER_PARAMETERS * (base / FULL_BASE) ** 2
        raise ModelError(
            f"DRBNet base width {base} is unreasonably wide: about {n:.2g} weights ({4 * n / 1e9:.3g} GB); "
            f"use at most {MAX_BASE} (32 = the paper's network, 16 or 8 for lighter ones)"
        )
    if res_blocks > MAX_RES_BLOCKS:
        raise ModelError(f"DRBNet res_blocks={res_blocks} is unreasonably deep: use at most {MAX_RES_BLOCKS} "
                         "(2 = the paper)")


class DRBNet(nn.Module):
    """The DRBNet deblurring network; ``DRBNet()`` is the authors' configuration.

    Parameters
    ----------
    base:
        Width of the first encoder level; every width is ``paper width * base / 32``.
        32 is the paper's network (11.7 M parameters); 16 has about 1/4 and
        8 about 1/16 of the parameters.
    res_blocks:
        Residual blocks in the bottleneck and after each decoder up-sampling (2 in the paper).
    fac_impl:
        ``"shift"`` (default, memory-lean) or ``"unfold"`` (the direct formulation,
        for comparison).  Not part of the architecture: weights are the same.
    """

    input_convention = INPUT_CONVENTION

    def __init__(self, base: int = FULL_BASE, res_blocks: int = 2, *, input_detail: bool = False,
                 fac_impl: str = "shift"):
        super().__init__()
        _check_size(base, res_blocks)
        self.base = base
        self.res_blocks = res_blocks
        #: re-inject the input's own detail band into each upsampled estimate (see ``forward``); off for the paper
        self.input_detail = bool(input_detail)
        self.fac_impl = fac_impl
        #: clamp the full-resolution output to [-1, 1] (the paper's output); a trainer may turn it off
        self.clip_output = True
        # registration order follows the authors' state dict
        self._add_encoder()
        self._add_decoder()
        if self.input_detail:
            self.zero_init_heads()  # an untrained input-detail network starts as the identity

    def _width(self, width: int) -> int:
        """A width of the paper's network, scaled to this one's ``base``."""
        return width * self.base // FULL_BASE

    def _add_encoder(self) -> None:
        e1, e2, e3, e4 = (self._width(w) for w in (32, 64, 128, 256))
        self.conv1_1 = conv(N_IMG, e1)
        self.conv1_2 = conv(e1, e1)
        self.conv1_3 = conv(e1, e1)
        self.conv2_1 = conv(e1, e2, stride=2)
        self.conv2_2 = conv(e2, e2)
        self.conv2_3 = conv(e2, e2)
        self.conv3_1 = conv(e2, e3, stride=2)
        self.conv3_2 = conv(e3, e3)
        self.conv3_3 = conv(e3, e3)
        self.conv4_1 = conv(e3, e4, stride=2)
        self.conv4_2 = conv(e4, e4)
        self.conv4_3 = conv(e4, e4)
        self.conv4_4 = nn.Sequential(conv(e4, e4), *[ResBlock(e4) for _ in range(self.res_blocks)], conv(e4, e4))

    def _add_decoder(self) -> None:
        s = self._width
        e1, e2, e3, e4 = s(32), s(64), s(128), s(256)
        # 1/8 -> 1/4 decoder, and the DRB at 1/8
        self._add_upsampling(3, e4, e3)
        self.img_d8_feature = image_branch((s(64), s(128), s(256)))
        self.upconv3_kernel = kernel_head(e4 + s(256), s(256), s(128))
        self.upconv3_res = residual_head(e4 + s(256), s(256), s(64))
        # 1/4 -> 1/2 decoder, and the DRB at 1/4
        self._add_upsampling(2, e3, e2)
        self.img_d4_feature = image_branch((s(64), s(128), s(128)))
        self.upconv2_kernel = kernel_head(e3 + s(128), s(128), s(128))
        self.upconv2_res = residual_head(e3 + s(128), s(128), s(64))
        # DRB at 1/2; 1/2 -> 1/1 decoder; the heads of the DRBs at 1/2 and 1/1
        self.img_d2_feature = image_branch((s(64), s(64), s(64)))
        self._add_upsampling(1, e2, e1)
        self.img_d1_feature = image_branch((s(64), s(64), s(32)))
        self.upconv1_kernel = kernel_head(e2 + s(64), s(64), s(64))
        self.upconv1_res = residual_head(e2 + s(64), s(64), s(64))
        self.upconv0_kernel = kernel_head(e1 + s(32), s(64), s(64))
        self.upconv0_res = residual_head(e1 + s(32), s(64), s(64))

    def _add_upsampling(self, k: int, cin: int, cout: int) -> None:
        """``upconv{k}_u`` (doubles H and W) and its residual blocks ``upconv{k}_1``, ``upconv{k}_2``, ..."""
        setattr(self, f"upconv{k}_u", upconv(cin, cout))
        for i in range(self.res_blocks):
            setattr(self, f"upconv{k}_{i + 1}", ResBlock(cout))

    # ------------------------------------------------------------------ config
    @property
    def config(self) -> dict[str, Any]:
        """The architecture, enough to rebuild the network: ``DRBNet.from_config(model.config)``."""
        cfg = {"arch": "DRBNet", "base": self.base, "res_blocks": self.res_blocks}
        if self.input_detail:  # absent for the paper's network, so its config stays the authors'
            cfg["input_detail"] = True
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], **kwargs) -> DRBNet:
        if not isinstance(config, dict):
            raise ModelError(f"a DRBNet config must be a dict, got {type(config).__name__}")
        cfg = dict(config)
        arch = cfg.pop("arch", "DRBNet")
        if arch != "DRBNet":
            raise ModelError(f"checkpoint is for architecture {arch!r}, not DRBNet; this version cannot build it")
        unknown = set(cfg) - {"base", "res_blocks", "input_detail"}
        if unknown:
            raise ModelError(
                f"unknown DRBNet config keys {sorted(unknown)} (known: base, res_blocks, input_detail); "
                "the checkpoint may come from a newer napari-lfdeblur: upgrade the package"
            )
        return cls(**cfg, **kwargs)

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    @property
    def fac_impl(self) -> str:
        return self._fac_impl

    @fac_impl.setter
    def fac_impl(self, value: str) -> None:
        if value not in _FAC_IMPLS:
            raise ModelError(f"fac_impl must be one of {sorted(_FAC_IMPLS)}, got {value!r}")
        self._fac_impl = value
        self._fac = _FAC_IMPLS[value]

    def extra_repr(self) -> str:
        extra = ", input_detail=True" if self.input_detail else ""
        return f"base={self.base}, res_blocks={self.res_blocks}{extra}, fac_impl={self.fac_impl!r}"

    def zero_init_heads(self) -> DRBNet:
        """Zero the last layer of every kernel and residual head: each block then
        adds nothing, and with ``input_detail`` the untrained network is exactly
        the identity, a starting point no worse than the blurry input.  Gradients
        still reach those layers (they depend on the layers' inputs, not weights)."""
        for name in ("upconv3", "upconv2", "upconv1", "upconv0"):
            for head in (getattr(self, f"{name}_kernel")[-1], getattr(self, f"{name}_res")[-1][0]):
                nn.init.zeros_(head.weight)
                nn.init.zeros_(head.bias)
        return self

    # ----------------------------------------------------------------- forward
    @staticmethod
    def _upsample(est: torch.Tensor, pyramid: list | None, level: int) -> torch.Tensor:
        """The estimate x2 (nearest = mode="area" for an exact x2), plus the
        input's detail band at pyramid ``level`` when ``input_detail`` is on."""
        up = F.interpolate(est, scale_factor=2, mode="nearest")
        if pyramid is None:
            return up
        fine = pyramid[level]
        coarse = F.interpolate(pyramid[level + 1], scale_factor=2, mode="nearest")
        return up.add_(fine).sub_(coarse)

    def _drb(self, holder: list, est: torch.Tensor, img_branch, kernel_head, residual_head) -> torch.Tensor:
        """One dynamic residual block: est + FAC(est, K) + R.

        ``holder``: a one-element list with the decoder features, popped so that they are freed once
        concatenated (when the caller keeps no other reference).  For the peak memory, the residual head (tiny
        output) runs first, then the kernel head, after whose first conv the concatenation is dropped.
        """
        cat = torch.cat((holder.pop(), img_branch(est)), dim=1)
        res = residual_head(cat)
        k = kernel_head[0](cat)
        del cat
        for layer in kernel_head[1:-1]:
            k = layer(k)
        k = _pointwise_nchw(kernel_head[-1], k)
        out = self._fac(est, k)
        del k
        return out.add_(est).add_(res)

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor):
            raise DeblurInputError(f"DRBNet expects a torch.Tensor of shape (N, 3, H, W), got {type(x).__name__}")
        if x.dim() != 4:
            raise DeblurInputError(
                f"DRBNet expects a 4-D tensor (N, 3, H, W), got shape {tuple(x.shape)}; "
                "add a batch axis with x[None] for a single image"
            )
        if x.shape[1] != N_IMG:
            raise DeblurInputError(
                f"DRBNet expects 3 (RGB) channels in axis 1 of (N, 3, H, W), got shape {tuple(x.shape)}; "
                "repeat a greyscale channel three times, drop an alpha channel, or permute (N, H, W, 3) to (N, 3, H, W)"
            )
        if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
            raise DeblurInputError(f"DRBNet got an empty tensor of shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise DeblurInputError(f"DRBNet expects a floating-point tensor in [-1, 1], got dtype {x.dtype}")

    def forward(self, x: torch.Tensor, return_intermediate: bool = False):
        """Deblur ``x`` (N, 3, H, W) in [-1, 1] (``x * 2 - 1`` for images in [0, 1]), any H and W: padded to
        multiples of 8 (:func:`pad_to_multiple`) and cropped back.

        Returns the full-resolution estimate clamped to [-1, 1] (when
        ``clip_output``), and with ``return_intermediate=True`` a tuple
        ``(output, [est_1/8, est_1/4, est_1/2])``: the coarser estimates,
        *not* clamped, each cropped to ``ceil(H / s)`` x ``ceil(W / s)``.
        """
        self._check_input(x)
        if x.dtype != self.dtype:
            x = x.to(self.dtype)
        x, h, w = pad_to_multiple(x, MULTIPLE)

        est = F.avg_pool2d(x, MULTIPLE)  # the input at 1/8: the first estimate
        # With input_detail, the estimate entering each finer block is the coarser one upsampled plus the input's
        # detail at that scale (the input there minus the coarser input upsampled): an identity coarser estimate
        # hands on the input itself, not a blocky copy, so the blocks only learn the correction.
        pyramid = [x, F.avg_pool2d(x, 2), F.avg_pool2d(x, 4), est] if self.input_detail else None
        f1 = self.conv1_3(self.conv1_2(self.conv1_1(x)))
        del x
        f2 = self.conv2_3(self.conv2_2(self.conv2_1(f1)))
        f3 = self.conv3_3(self.conv3_2(self.conv3_1(f2)))
        holder = [self.conv4_4(self.conv4_3(self.conv4_2(self.conv4_1(f3))))]
        skips = [f1, f2, f3]
        del f1, f2, f3  # the decoder frees each once it is added
        intermediates: list | None = [] if return_intermediate else None
        out = self._decode(holder, skips, est, pyramid, intermediates)
        if out.shape[-2] != h or out.shape[-1] != w:
            out = out[..., :h, :w]
        if self.clip_output:
            out = out.clamp(-1.0, 1.0)
        if intermediates is None:
            return out
        return out, [e[..., : math.ceil(h / s), : math.ceil(w / s)] for e, s in zip(intermediates, (8, 4, 2))]

    def _decode(self, holder: list, skips: list, est: torch.Tensor, pyramid: list | None,
                intermediates: list | None) -> torch.Tensor:
        """The decoder, coarse to fine: at 1/8, 1/4 and 1/2 a DRB refines the estimate, then the features are
        upsampled and added to the encoder's (``skips``, popped finest last); at 1/1 the last DRB.

        ``holder`` holds the 1/8 features, popped so that they are freed once upsampled; the coarser
        estimates are appended to ``intermediates`` unless it is None.
        """
        d = holder.pop()
        for k, branch in ((3, self.img_d8_feature), (2, self.img_d4_feature), (1, self.img_d2_feature)):
            if k < 3:
                est = self._upsample(est, pyramid, k)
            est = self._drb([d], est, branch, getattr(self, f"upconv{k}_kernel"), getattr(self, f"upconv{k}_res"))
            if intermediates is not None:
                intermediates.append(est)
            d = _add_skip(getattr(self, f"upconv{k}_u")(d), skips.pop())
            for i in range(self.res_blocks):
                d = getattr(self, f"upconv{k}_{i + 1}")(d)
        est = self._upsample(est, pyramid, 0)
        if pyramid is not None:
            pyramid.clear()  # the input and its downsampled copies, needed no more
        last = [d]
        del d  # the block frees the full-resolution decoder features once concatenated
        return self._drb(last, est, self.img_d1_feature, self.upconv0_kernel, self.upconv0_res)
