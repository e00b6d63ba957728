"""Choosing the device and floating-point type a network runs on.

- :func:`resolve_device` turns ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
  ``"mps"``, ``"xpu"`` or a ``torch.device`` into an available
  ``torch.device``; ``"auto"`` picks CUDA, then Apple MPS, then Intel XPU,
  then the CPU.  Asking for a device that is not there raises
  :class:`~napari_lfdeblur.errors.ModelError` saying what is available.
- :func:`available_devices` lists device strings for a device picker;
  :func:`device_label` describes one (``"cuda:0 (NVIDIA H100, 80 GB)"``).
- :func:`resolve_dtype`: ``None``/``"float32"`` (default), ``"float16"`` or
  ``"bfloat16"``.  Half precision is meant for GPUs: asked for on the CPU it
  falls back to float32 with a ``RuntimeWarning`` (CPU half-precision
  convolutions are slow or missing, and a device picker set to ``"auto"``
  should not fail on a machine without a GPU).
- :func:`autocast_dtype`: the mixed-precision type a *training* run uses for
  its ``amp`` setting: float16 on CUDA, bfloat16 on a CPU that computes it
  natively (AVX512-BF16 or AMX: training steps 1.2-1.7x faster there), else none.
"""

from __future__ import annotations

import warnings

import torch

from ..errors import ModelError

__all__ = [
    "autocast_dtype",
    "available_devices",
    "cpu_has_native_bf16",
    "device_label",
    "resolve_device",
    "resolve_dtype",
    "use_channels_last",
]

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "single": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def _dtype_key(name) -> str:
    """``"torch.BFloat16 "`` → ``"bfloat16"``: how a dtype name (or a torch.dtype) is looked up in ``_DTYPES``."""
    return str(name).strip().lower().removeprefix("torch.")


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
    """Device strings usable here, best first is not implied: ``["cpu", "cuda:0", ...]``."""
    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        out.append("mps")
    if _xpu_available():
        out += [f"xpu:{i}" for i in range(torch.xpu.device_count())]
    return out


def device_label(device) -> str:
    """A human-readable description of a device, for pickers and logs."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        return f"{dev} ({props.name}, {props.total_memory / 2**30:.0f} GB)"
    if dev.type == "mps":
        return "mps (Apple GPU)"
    if dev.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return str(dev)


def resolve_device(device="auto") -> torch.device:
    """An available ``torch.device`` for ``device`` (see the module docstring)."""
    if isinstance(device, torch.device):
        dev = device
    elif device is None:
        dev = None
    elif isinstance(device, str):
        name = device.strip().lower()
        if name in ("", "auto"):
            dev = None
        elif name == "gpu":
            if torch.cuda.is_available():
                dev = torch.device("cuda", torch.cuda.current_device())
            elif _mps_available():
                dev = torch.device("mps")
            elif _xpu_available():
                dev = torch.device("xpu", 0)
            else:
                raise ModelError(
                    "device='gpu' asked for, but no GPU is usable (no CUDA, MPS or XPU device); "
                    f"available: {available_devices()}. Use device='cpu' or 'auto'."
                )
        else:
            try:
                dev = torch.device(name)
            except (RuntimeError, ValueError) as e:
                raise ModelError(
                    f"unknown device {device!r}: use 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or 'xpu' "
                    f"(available here: {available_devices()})"
                ) from e
    else:
        raise ModelError(f"device must be a string or torch.device, got {type(device).__name__}")

    if dev is None:  # auto
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        if _xpu_available():
            return torch.device("xpu", 0)
        return torch.device("cpu")

    if dev.type == "cpu":
        return torch.device("cpu")
    if dev.type == "cuda":
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
    if dev.type == "mps":
        if not _mps_available():
            mps = getattr(torch.backends, "mps", None)
            why = (
                "this PyTorch build has MPS support but macOS reports no usable Metal GPU (macOS 12.3+ needed)"
                if mps is not None and mps.is_built()
                else "MPS (Apple GPU) needs PyTorch on an Apple-silicon Mac"
            )
            raise ModelError(f"device 'mps' is not available: {why}. Available: {available_devices()}")
        return torch.device("mps")
    if dev.type == "xpu":
        if not _xpu_available():
            raise ModelError(f"device {str(device)!r} (Intel GPU) is not available. Available: {available_devices()}")
        return dev if dev.index is not None else torch.device("xpu", 0)
    raise ModelError(
        f"device type {dev.type!r} is not supported for deblurring; use one of {available_devices()} or 'auto'"
    )


def resolve_dtype(dtype, device: torch.device) -> torch.dtype:
    """The weights' floating-point type on ``device``: float32 unless half precision is asked for on a GPU.

    On the CPU the weights always stay float32: ``"bfloat16"`` there runs as autocast
    (see :func:`inference_autocast`), and ``"float16"`` falls back to float32 with a warning.
    """
    if dtype is None:
        return torch.float32
    if isinstance(dtype, str):
        key = _dtype_key(dtype)
        if key in ("auto", "default"):
            return torch.float32
        if key not in _DTYPES:
            raise ModelError(f"unknown dtype {dtype!r}: use 'auto', 'float32', 'float16' or 'bfloat16'")
        dt = _DTYPES[key]
    elif isinstance(dtype, torch.dtype):
        dt = dtype
    else:
        raise ModelError(f"dtype must be None, a string or a torch.dtype, got {type(dtype).__name__}")
    if dt not in (torch.float32, torch.float16, torch.bfloat16):
        raise ModelError(f"dtype {dt} is not supported: use float32, float16 or bfloat16")
    if dt != torch.float32 and torch.device(device).type == "cpu":
        if dt == torch.float16:
            warnings.warn(
                "float16 inference is meant for GPUs; running on the CPU in float32 instead (bfloat16 is the "
                "CPU's half precision)",
                RuntimeWarning,
                stacklevel=3,
            )
        return torch.float32
    return dt


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


def _cpu_bfloat16(asked: bool, what: str = "", off: str = "") -> torch.dtype | None:
    """bfloat16 on the CPU, for training (:func:`autocast_dtype`) and deblurring (:func:`inference_autocast`)
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


def inference_autocast(dtype, device) -> torch.dtype | None:
    """The ``torch.autocast`` type deblurring runs under on ``device``, or None (the weights' own type).

    Only the CPU autocasts (on GPUs the weights themselves are converted, see
    :func:`resolve_dtype`).  There ``None``/``"auto"`` mean bfloat16 where the
    CPU computes it natively (:func:`cpu_has_native_bf16`): about twice as fast
    as float32, with outputs within a level or so of 255 of it; float32 on other
    CPUs.  ``"bfloat16"`` asks for it on any CPU (slower where emulated; it
    warns); ``"float32"`` (or ``"float16"``, which falls back) turns it off.
    """
    if torch.device(device).type != "cpu":
        return None
    key = "auto" if dtype is None else _dtype_key(dtype)
    if key in ("auto", "default"):
        return _cpu_bfloat16(asked=False)
    if _DTYPES.get(key) == torch.bfloat16:
        return _cpu_bfloat16(asked=True, what="bfloat16 deblurring", off="dtype='float32'")
    return None


def use_channels_last(device) -> bool:
    """Whether to run convolutions in channels_last memory format.

    CUDA: faster with cuDNN (tensor cores).  CPU: oneDNN works on channels_last
    directly, where NCHW tensors get reordered to blocked layouts and back (extra
    copies: about 20% more peak memory at 1 MP, and slower).  Not on MPS.
    """
    return torch.device(device).type in ("cuda", "cpu")
