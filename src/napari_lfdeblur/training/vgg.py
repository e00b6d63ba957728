"""VGG19 convolutional features for the feature (perceptual) loss, without torchvision.

:class:`VGG19Features` is laid out exactly like torchvision's ``vgg19().features`` (configuration "E": 16 3x3
convolutions with ReLU, 5 max-pools; layers named as in :data:`LAYER_INDEX`), so that torchvision's ImageNet
file ``vgg19-dcbb9e9d.pth`` loads into it with ``torch.load(..., weights_only=True)``.  Only the layers up to the
deepest one asked for are built; widths are read from the state dict, so a narrow VGG of the same layout (used
in tests) loads too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from ..errors import TrainingError

__all__ = [
    "LAYER_INDEX",
    "VGG19_FILENAME",
    "VGG19_URL",
    "VGG19Features",
    "default_vgg19_path",
    "find_vgg19_weights",
    "load_vgg19",
    "vgg19_state_dict_keys",
]

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
# configuration "E" (Simonyan & Zisserman): output widths, "M" = max-pool
_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _layer_names() -> dict[str, int]:
    names: dict[str, int] = {}
    block, conv, i = 1, 1, 0
    for v in _CFG:
        if v == "M":
            names[f"pool{block}"] = i
            i += 1
            block, conv = block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = i
            names[f"relu{block}_{conv}"] = i + 1
            i += 2
            conv += 1
    return names


#: layer name (``relu3_4``, ``conv2_1``, ``pool1``) -> index in ``features``
LAYER_INDEX = _layer_names()
_CONV_INDICES = [i for n, i in LAYER_INDEX.items() if n.startswith("conv")]


def vgg19_state_dict_keys(upto: int = 36) -> list[str]:
    """The ``features.N.weight/bias`` keys torchvision's vgg19 has up to layer ``upto``."""
    return [f"features.{i}.{p}" for i in _CONV_INDICES if i <= upto for p in ("weight", "bias")]


def _layer_index(layer) -> int:
    if isinstance(layer, int):
        if not 0 <= layer <= 36:
            raise TrainingError(f"VGG19 feature layers are numbered 0 to 36, got {layer}")
        return layer
    if layer in LAYER_INDEX:
        return LAYER_INDEX[layer]
    raise TrainingError(f"unknown VGG19 layer {layer!r}; use names like 'relu2_2', 'relu3_4' or indices 0-36")


class VGG19Features(nn.Module):
    """VGG19's convolutional part, returning the activations of ``layers``.

    Input: (N, 3, H, W) RGB in [0, 1]; it is normalised with the ImageNet mean
    and standard deviation inside.  Output: a list of feature maps, one per
    layer in ``layers`` (in the order given).  Frozen (no gradients for the
    weights; gradients do flow to the input), always in eval mode.
    """

    def __init__(self, layers: Sequence = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"),
                 widths: Sequence[int] | None = None):
        super().__init__()
        self.layer_indices = [_layer_index(layer) for layer in layers]
        if not self.layer_indices:
            raise TrainingError("VGG19Features needs at least one layer")
        last = max(self.layer_indices)
        convs = [v for v in _CFG if v != "M"]
        width = [int(w) for w in (widths if widths is not None else convs)]
        if len(width) != len(convs):
            raise TrainingError(f"VGG19 has {len(convs)} convolutions; got {len(width)} widths")
        seq: list[nn.Module] = []
        cin, k = 3, 0
        for v in _CFG:
            if len(seq) > last:
                break
            if v == "M":
                seq.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                seq.append(nn.Conv2d(cin, width[k], kernel_size=3, padding=1))
                seq.append(nn.ReLU(inplace=False))
                cin = width[k]
                k += 1
        self.features = nn.Sequential(*seq[: last + 1])
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):  # always in eval mode (no dropout/BN here, but be explicit)
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        found: dict[int, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.layer_indices:
                found[i] = x
        return [found[i] for i in self.layer_indices]

    @classmethod
    def from_state_dict(cls, state_dict, layers=("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"),
                        source: str = "the state dict") -> VGG19Features:
        """Build (widths from the shapes) and load torchvision-layout weights."""
        sd = {k.removeprefix("module."): v for k, v in state_dict.items()}
        if not any(k.startswith("features.") for k in sd):
            sd = {f"features.{k}": v for k, v in sd.items()}  # a bare `features` state dict ("0.weight", ...)
        idx = [_layer_index(layer) for layer in layers]
        need = vgg19_state_dict_keys(max(idx))
        missing = [k for k in need if k not in sd]
        if missing:
            raise TrainingError(
                f"{source} is not a torchvision VGG19 state dict: missing {', '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''} (expected keys like 'features.0.weight'; get the ImageNet "
                f"weights from {VGG19_URL})"
            )
        widths = [len(sd.get(f"features.{i}.weight", ())) for i in _CONV_INDICES]
        # layers past the last needed one may be absent: give them any width
        last_known = max(k for k, w in enumerate(widths) if w) if any(widths) else 0
        widths = [w if w else widths[last_known] for w in widths]
        model = cls(layers, widths=widths)
        own = model.state_dict()
        sub = {k: sd[k] for k in own}
        for k, v in sub.items():
            if tuple(v.shape) != tuple(own[k].shape):
                raise TrainingError(
                    f"{source}: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)} for a VGG19; "
                    f"is it another network? (ImageNet weights: {VGG19_URL})"
                )
        model.load_state_dict(sub, strict=True)
        return model


def default_vgg19_path() -> Path:
    """Where torch's hub keeps torchvision's VGG19 file (it may not exist)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILENAME


def _missing_message(tried: list[Path]) -> str:
    where = default_vgg19_path()
    return (
        "the feature (VGG) loss needs the ImageNet VGG19 weights, which are not here "
        f"(looked in: {', '.join(str(p) for p in tried)}). Either download {VGG19_URL} and put it at {where} "
        f"(e.g. `mkdir -p {where.parent} && curl -L -o {where} {VGG19_URL}`), or pass its path with "
        "vgg_weights=PATH, or allow the download with vgg_download=True, or use the misalignment-tolerant loss "
        "that needs no download (loss='shift_l1')."
    )


def find_vgg19_weights(weights=None, download: bool = False) -> Path:
    """The path of the VGG19 weights file: ``weights``, else torch's hub cache (:func:`default_vgg19_path`, where
    torchvision puts it), downloaded there only when ``download``; a TrainingError saying how to get it."""
    if weights is not None:
        p = Path(os.fspath(weights)).expanduser()
        if not p.is_file():
            raise TrainingError(_missing_message([p]))
        return p
    p = default_vgg19_path()
    if p.is_file():
        return p
    if download:
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(VGG19_URL, str(p), hash_prefix="dcbb9e9d", progress=False)
        except Exception as e:
            raise TrainingError(f"downloading the VGG19 weights failed ({type(e).__name__}: {e}). "
                                + _missing_message([p])) from e
        return p
    raise TrainingError(_missing_message([p]))


def load_vgg19(weights=None, layers=("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4"),
               download: bool = False) -> VGG19Features:
    """VGG19 features with ImageNet weights (torchvision's file), loaded safely."""
    path = find_vgg19_weights(weights, download)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise TrainingError(
            f"could not read {path} as VGG19 weights ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''});"
            f" it may be truncated: download {VGG19_URL} again"
        ) from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise TrainingError(f"{path} holds a {type(sd).__name__}, not a VGG19 state dict ({VGG19_URL})")
    return VGG19Features.from_state_dict(sd, layers, source=str(path))
