"""The floating-point types a network runs in: deblurring's (:func:`inference_precision`, decided once at load)
and training's mixed precision (:func:`autocast_dtype`), on the device :mod:`napari_lfdeblur.devices` chose.
"""

from __future__ import annotations

import warnings

import torch

from ..errors import ModelError

__all__ = [
    "autocast_dtype",
    "cpu_has_amx",
    "cpu_has_native_bf16",
    "inference_precision",
    "use_channels_last",
]

_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32, "single": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}


def _dtype_key(name) -> str:
    """``"torch.BFloat16 "`` → ``"bfloat16"``: how a dtype name (or a torch.dtype) is looked up in ``_DTYPES``."""
    return str(name).strip().lower().removeprefix("torch.")


def _asked_dtype(dtype) -> torch.dtype | None:
    """The type ``dtype`` names (None for ``None``/``"auto"``), or a ModelError saying what works."""
    if dtype is None:
        return None
    if isinstance(dtype, str):
        key = _dtype_key(dtype)
        if key in ("auto", "default"):
            return None
        if key not in _DTYPES:
            raise ModelError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'float16' or 'bfloat16'")
        dt = _DTYPES[key]
    elif isinstance(dtype, torch.dtype):
        dt = dtype
    else:
        raise ModelError(f"dtype must be None, a string or a torch.dtype, got {type(dtype).__name__}")
    if dt not in (torch.float32, torch.float16, torch.bfloat16):
        raise ModelError(f"dtype {dt} is not supported: use float32, float16 or bfloat16")
    return dt


def inference_precision(dtype, device, weights: torch.dtype | None = None) -> tuple[torch.dtype, torch.dtype | None]:
    """(the weights' type, the ``torch.autocast`` type or None) deblurring computes in on ``device``.

    ``dtype``: ``None``/``"auto"``, ``"float32"``, ``"float16"`` or ``"bfloat16"`` (or a torch.dtype);
    ``weights``: a module's own type, kept when ``dtype`` is ``None``.  GPUs convert the weights and never
    autocast.  On the CPU the weights stay float32 and ``None``/``"auto"`` autocast to bfloat16 where the CPU
    computes it natively (:func:`cpu_has_native_bf16`: about twice as fast as float32, outputs within a level
    or so of 255 of it), ``"bfloat16"`` on any CPU (slower where emulated; it warns), ``"float16"`` falls back
    to float32 with a warning (a device picker on "auto" must not fail without a GPU).  Autocast applies to
    float32 weights only: others carry the precision.
    """
    asked = _asked_dtype(dtype)
    if torch.device(device).type != "cpu":
        return asked or weights or torch.float32, None
    if asked == torch.float16:
        warnings.warn("float16 inference is meant for GPUs; running on the CPU in float32 instead (bfloat16 is "
                      "the CPU's half precision)", RuntimeWarning, stacklevel=3)
        return torch.float32, None
    if asked is None and weights not in (None, torch.float32):
        return weights, None
    if asked is None:
        return torch.float32, _cpu_bfloat16(asked=False)
    if asked == torch.bfloat16:
        return torch.float32, _cpu_bfloat16(asked=True, what="bfloat16 deblurring", off="dtype='float32'")
    return torch.float32, None


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX).

    oneDNN then runs bfloat16 convolutions up to about twice as fast as float32;
    elsewhere they are emulated and slower than float32.
    """
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(cpu, name)()) for name in checks if hasattr(cpu, name))
    except Exception:  # pragma: no cover - a torch build without the probes
        return False


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (Intel Xeon since Sapphire Rapids): matrix units that OpenVINO's
    bfloat16 convolutions use and PyTorch's eager ones gain less from."""
    probe = getattr(getattr(torch, "cpu", None), "_is_amx_tile_supported", None)
    try:
        return bool(probe is not None and probe())
    except Exception:  # a torch build whose probe fails
        return False


def _cpu_bfloat16(asked: bool, what: str = "", off: str = "") -> torch.dtype | None:
    """bfloat16 on the CPU, for training (:func:`autocast_dtype`) and deblurring (:func:`inference_precision`)
    alike: by default only where it is native; asked for by name, anywhere, with a warning where emulated."""
    if not asked:
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if not cpu_has_native_bf16():
        warnings.warn(f"this CPU has no native bfloat16 (AVX512-BF16 or AMX): {what} will be slower than float32 "
                      f"here ({off} turns it off)", RuntimeWarning, stacklevel=4)
    return torch.bfloat16


_AMP_OFF = ("off", "false", "no", "none", "float32", "fp32")


def autocast_dtype(amp, device) -> torch.dtype | None:
    """The ``torch.autocast`` type for a training run's ``amp`` setting on ``device``, or None (float32).

    ``True``/``"auto"``: float16 on CUDA (with gradient scaling), bfloat16 on
    a CPU with native bfloat16 (:func:`cpu_has_native_bf16`), float32
    elsewhere.  ``"bfloat16"``: bfloat16 on CUDA or the CPU.  ``"float16"``:
    CUDA only.  ``False``/``"off"``: float32.  The weights and the optimiser
    stay float32 either way.
    """
    kind = torch.device(device).type
    if amp is None or amp is False:
        return None
    key = "auto" if amp is True else _dtype_key(amp)
    if key in _AMP_OFF:
        return None
    if key == "auto":
        if kind == "cuda":
            return torch.float16
        return _cpu_bfloat16(asked=False) if kind == "cpu" else None
    dt = _DTYPES.get(key)
    if dt not in (torch.float16, torch.bfloat16):
        raise ModelError(f"amp must be True/'auto', False/'off', 'float16' or 'bfloat16', got {amp!r}")
    if kind == "cuda":
        return dt
    if kind == "cpu" and dt == torch.bfloat16:
        return _cpu_bfloat16(asked=True, what="bfloat16 mixed precision", off="amp=False")
    if dt == torch.float16:
        raise ModelError(f"float16 mixed precision needs a CUDA GPU, not {kind}: use amp='bfloat16' on a CPU "
                         "or amp=False")
    raise ModelError(f"mixed precision is not supported on {kind}: use amp=False")


def use_channels_last(device) -> bool:
    """Whether to run convolutions in channels_last memory format.

    CUDA: faster with cuDNN (tensor cores).  CPU: oneDNN works on channels_last
    directly, where NCHW tensors get reordered to blocked layouts and back (extra
    copies: about 20% more peak memory at 1 MP, and slower).  Not on MPS.
    """
    return torch.device(device).type in ("cuda", "cpu")
