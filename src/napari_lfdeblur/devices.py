"""Choosing the device torch work runs on: networks (:mod:`.network`, :mod:`.inference`, :mod:`.training`) and
light-field refocusing (:mod:`.lightfield`) alike, so neither imports the other for it."""

from __future__ import annotations

import torch

from .errors import ModelError

__all__ = ["available_devices", "device_label", "resolve_device"]


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _xpu_available() -> bool:
    xpu = getattr(torch, "xpu", None)
    try:
        return bool(xpu is not None and xpu.is_available())
    except Exception:  # pragma: no cover - broken driver stacks
        return False


def _cuda_unavailable_reason() -> str:
    if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
        return (
            f"this PyTorch build ({torch.__version__}) has no CUDA support; install a CUDA build of "
            "PyTorch (see https://pytorch.org/get-started/locally/)"
        )
    return "PyTorch has CUDA support but finds no usable GPU (check the NVIDIA driver and CUDA_VISIBLE_DEVICES)"


def available_devices() -> list[str]:
    """Device strings usable here, for a device picker (not best first): ``["cpu", "cuda:0", ...]``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    if _xpu_available():
        out += [f"xpu:{i}" for i in range(torch.xpu.device_count())]
    return out


def device_label(device) -> str:
    """A human-readable description of a device, for pickers and logs: ``"cuda:0 (NVIDIA H100, 80 GB)"``."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        return f"{dev} ({props.name}, {props.total_memory / 2**30:.0f} GB)"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(dev)


def _gpu() -> torch.device | None:
    """The first GPU torch can use: CUDA, then Apple MPS, then Intel XPU; None without one."""
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    if _mps_available():
        return torch.device("mps")
    if _xpu_available():
        return torch.device("xpu", 0)
    return None


def _asked_device(device) -> torch.device | None:
    """The device ``device`` names (None: ``"auto"``), not yet checked to be there."""
    if device is None or isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise ModelError(f"device must be a string or torch.device, got {type(device).__name__}")
    name = device.strip().lower()
    if name in ("", "auto"):
        return None
    if name == "gpu":
        gpu = _gpu()
        if gpu is None:
            raise ModelError(
                "device='gpu' asked for, but no GPU is usable (no CUDA, MPS or XPU device); "
                f"available: {available_devices()}. Use device='cpu' or 'auto'."
            )
        return gpu
    try:
        return torch.device(name)
    except (RuntimeError, ValueError) as e:
        raise ModelError(
            f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'xpu' "
            f"(available here: {available_devices()})"
        ) from e


def _cuda_device(dev: torch.device, device) -> torch.device:
    if not torch.cuda.is_available():
        raise ModelError(
            f"device {str(device)!r} is not available: {_cuda_unavailable_reason()}. Use device='cpu' or 'auto'."
        )
    n = torch.cuda.device_count()
    index = torch.cuda.current_device() if dev.index is None else dev.index
    if index >= n:
        raise ModelError(
            f"device {str(device)!r} is not available: this machine has {n} CUDA device(s) "
            f"(cuda:0 to cuda:{n - 1}). Available: {available_devices()}"
        )
    return torch.device("cuda", index)


def _mps_device() -> torch.device:
    if not _mps_available():
        mps = getattr(torch.backends, "mps", None)
        why = (
            "this PyTorch build has MPS support but macOS reports no usable Metal GPU (macOS 12.3+ needed)"
            if mps is not None and mps.is_built()
            else "MPS (Apple GPU) needs PyTorch on an Apple-silicon Mac"
        )
        raise ModelError(f"device 'mps' is not available: {why}. Available: {available_devices()}")
    return torch.device("mps")


def resolve_device(device="auto") -> torch.device:
    """An available ``torch.device`` for ``"auto"``, ``"gpu"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``,
    ``"xpu"`` or a ``torch.device``; ``"auto"`` picks CUDA, then Apple MPS, then Intel XPU, then the CPU.

    Raises :class:`~napari_lfdeblur.errors.ModelError`, saying what is available, for a device that is not there.
    """
    dev = _asked_device(device)
    if dev is None:  # auto
        return _gpu() or torch.device("cpu")
    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
        return _cuda_device(dev, device)
    if dev.type == "mps":
        return _mps_device()
    if dev.type == "xpu":
        if not _xpu_available():
            raise ModelError(f"device {str(device)!r} (Intel GPU) is not available. Available: {available_devices()}")
        return dev if dev.index is not None else torch.device("xpu", 0)
    raise ModelError(
        f"device type {dev.type!r} is not supported for deblurring; use one of {available_devices()} or 'auto'"
    )
