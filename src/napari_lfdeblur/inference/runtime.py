"""What runs the network in one ``deblur`` call, decided once: :class:`Runtime` (the network, its device,
precision, backend and tiles).  :func:`to_network` and :func:`from_network` are the one place images are scaled
to the network's [-1, 1] and back.  How the backend is chosen: docs/performance.md, "CPU runtimes and tiles".

A runtime loaded from a checkpoint name or path pickles as the arguments it was resolved from: dask.distributed
workers load the network once each, from the same path, instead of receiving its weights with every task.
"""

from __future__ import annotations

import contextlib
import logging
import math
import numbers
import os
import threading
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DeblurInputError, ModelError, OutOfMemoryError
from .models import cached_model, is_drbnet
from .openvino_backend import OpenVINONetwork, openvino_available
from .tile_plan import DEFAULT_OVERLAP
from .tiling import ALIGN

__all__ = ["BACKENDS", "Runtime", "from_network", "resolve_runtime", "to_network"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "openvino")
BACKEND_ENV = "LFDEBLUR_BACKEND"
_fallback_lock = threading.Lock()
_IMAGE_NETWORK = ("deblur runs DRBNet networks (load_model), or modules mapping (N, 3, H, W) in [-1, 1] to the "
                  "same shape")


def to_network(unit):
    """Images in [0, 1] (numpy or torch) as the network takes them: [-1, 1] (``"rgb_minus1_1"``)."""
    return unit * 2 - 1


def from_network(out, clip: bool = True):
    """The network's [-1, 1] output (numpy or torch) as images in [0, 1], clipped (``clip=False`` for a
    training loss, whose gradient must not stop at the range's ends)."""
    unit = (out + 1) * 0.5
    return unit.clip(0, 1) if clip else unit


@dataclass(frozen=True)
class Runtime:
    """The network of one ``deblur`` call and how it runs: call it on float RGB in [0, 1], (H, W, 3) or
    (N, H, W, 3), to get float32 RGB in [0, 1] of the same shape."""

    net: Any  # the torch module
    device: Any  # torch.device
    weights: Any  # torch.dtype of the weights
    autocast: Any  # torch.dtype computed in under torch.autocast, or None
    backend: str  # "torch" or "openvino"
    tile: int | None  # the tile side asked for (None: tile_plan.tile_for decides)
    halo: int  # context each tile gets beyond what is kept, a multiple of 8
    batch: int  # tiles per network call
    openvino: OpenVINONetwork | None = None
    required: bool = False  # OpenVINO asked for by name: its failures raise
    source: tuple | None = None  # resolve_runtime's arguments, when the network came from a checkpoint

    @property
    def precision(self) -> str:
        """What the network computes in: ``"float32"``, ``"bfloat16"`` or ``"float16"``."""
        return str(self.autocast or self.weights).removeprefix("torch.")

    def __reduce_ex__(self, protocol):
        if self.source is not None:
            return resolve_runtime, self.source
        return super().__reduce_ex__(protocol)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        single = rgb.ndim == 3
        batch = rgb[None] if single else rgb
        if batch.ndim != 4 or batch.shape[-1] != 3:
            raise DeblurInputError(f"expected (H, W, 3) or (N, H, W, 3) RGB, got shape {rgb.shape}")
        out = self._through_openvino(batch) if self.openvino is not None else None
        if out is None:
            out = run_torch(batch, self)
        return out[0] if single else out

    def _through_openvino(self, batch: np.ndarray) -> np.ndarray | None:
        """OpenVINO's result, or None once it failed (warned once; PyTorch from then on)."""
        ov = self.openvino
        if ov is None or ov.failed:
            return None
        try:
            return from_network(ov(to_network(np.asarray(batch, dtype=np.float32))))
        except MemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure of the optional runtime: fall back to torch
            if self.required:
                raise ModelError(f"OpenVINO could not run the network: {e}") from e
            with _fallback_lock:
                if not ov.failed:
                    ov.failed = True
                    msg = f"OpenVINO could not run the network ({type(e).__name__}: {e}); using PyTorch"
                    warnings.warn(msg, RuntimeWarning, stacklevel=3)
                    log.warning(msg)
        return None


def run_torch(batch: np.ndarray, runtime: Runtime) -> np.ndarray:
    """(N, H, W, 3) float RGB in [0, 1] through ``runtime``'s PyTorch network; float32 in [0, 1] back.
    Out-of-memory becomes ``OutOfMemoryError``."""
    import torch

    device = runtime.device
    autocast = (torch.autocast(device.type, dtype=runtime.autocast) if runtime.autocast is not None
                else contextlib.nullcontext())
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    try:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2)
            x = to_network(x.to(device=device, dtype=runtime.weights)).contiguous(memory_format=layout)
            with autocast:
                y = runtime.net(x)
            _check_output(y, x, runtime.net)
            del x
            return from_network(y.float()).permute(0, 2, 3, 1).to("cpu").contiguous().numpy()
    except torch.cuda.OutOfMemoryError as e:  # CUDA (torch.OutOfMemoryError in torch >= 2.5)
        raise OutOfMemoryError(f"the {device} device ran out of memory on a {batch.shape[1]}x{batch.shape[2]} "
                               "image: deblur in tiles, use a lighter model, or device='cpu'") from e
    except RuntimeError as e:
        if "can't allocate memory" in str(e) or "not enough memory" in str(e):
            raise OutOfMemoryError(f"not enough RAM to deblur a {batch.shape[1]}x{batch.shape[2]} image at once: "
                                   "deblur in tiles or use a lighter model") from e
        if not is_drbnet(runtime.net):  # a module of the user's that cannot take an image
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"the model {type(runtime.net).__name__} could not run on an image of shape "
                             f"(N, 3, H, W) ({reason}): {_IMAGE_NETWORK}") from e
        raise


def _check_output(y, x, net) -> None:
    import torch

    if not (isinstance(y, torch.Tensor) and y.shape == x.shape):
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ModelError(f"the model {type(net).__name__} returned {got} for an image of shape {tuple(x.shape)}: "
                         f"{_IMAGE_NETWORK}")


def _env_preference() -> str:
    """``$LFDEBLUR_BACKEND``, lower-cased ("" when unset); a value that names no backend is an error, so that a
    typo does not silently run the other runtime."""
    raw = os.environ.get(BACKEND_ENV, "")
    preference = raw.strip().lower()
    if preference not in ("", *BACKENDS):
        raise ModelError(
            f"${BACKEND_ENV} is {raw!r}, which is not a backend: set it to {', '.join(BACKENDS[:-1])} or "
            f"{BACKENDS[-1]}, or unset it"
        )
    return preference


def choose_backend(backend, on_cpu: bool, drbnet: bool) -> str:
    """``"torch"`` or ``"openvino"``: what ``backend`` means for a network (a DRBNet or not) on this machine."""
    choice = str(backend or "auto").strip().lower()
    if choice not in BACKENDS:
        raise ModelError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if choice == "openvino":
        if not on_cpu:
            raise ModelError("the OpenVINO backend runs on the CPU; use device='cpu' or backend='torch'")
        if not openvino_available():
            raise ModelError("backend='openvino' needs the openvino package: pip install 'napari-lfdeblur[openvino]'")
        if not drbnet:
            raise ModelError("the OpenVINO backend runs DRBNet networks; use backend='torch' for other modules")
        return "openvino"
    if choice == "auto":
        preference = _env_preference()
        if preference == "torch" or not (on_cpu and drbnet and openvino_available()):
            return "torch"
        from ..network.precision import cpu_has_amx

        if preference == "openvino" or cpu_has_amx():
            return "openvino"
    return "torch"


def whole_number(name: str, value, minimum: int, hint: str, unit: str = "pixels") -> int | None:
    """``value`` as an int >= ``minimum`` (None stays None), or a DeblurInputError that says what works."""
    if value is None:
        return None
    whole = isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
    if isinstance(value, bool) or not whole:
        raise DeblurInputError(f"{name} must be a whole number of {unit}; got {value!r} ({hint}).")
    if int(value) < minimum:
        raise DeblurInputError(f"{name}={value} is too small: {hint}.")
    return int(value)


def _tiles(tile, overlap, batch) -> tuple[int | None, int, int | None]:
    """(tile, halo, batch) checked: whole numbers, the halo on the network's 8-px grid, tiles wider than it."""
    tile = whole_number("tile", tile, 16, "use at least 128 (default 512 on a GPU)")
    halo = whole_number("overlap", overlap, 0, f"give 0 or more pixels (default {DEFAULT_OVERLAP})")
    batch = whole_number("batch", batch, 1, "the number of tiles per network call, 1 or more", unit="tiles")
    halo = -(-(DEFAULT_OVERLAP if halo is None else halo) // ALIGN) * ALIGN
    if tile is not None and tile < 2 * halo + ALIGN:
        raise DeblurInputError(f"tile ({tile}) must exceed twice the overlap ({2 * halo}) by at least {ALIGN} "
                               "pixels: the part of each tile that is kept")
    return tile, halo, batch


def _source(model, device, dtype, backend, tile, overlap, batch) -> tuple | None:
    """The arguments a runtime of a checkpoint name or path is resolved again from (paths made absolute)."""
    if not isinstance(model, (str, os.PathLike)):
        return None
    from ..network.checkpoint import NAMED_MODELS

    name = str(model).strip().lower()
    spec = name if name == "default" or name in NAMED_MODELS else str(Path(model).expanduser().resolve())
    return spec, device, dtype, backend, tile, overlap, batch


def resolve_runtime(model="default", device="auto", dtype=None, backend="auto", tile=None, overlap=None,
                    batch=None) -> Runtime:
    """The :class:`Runtime` of ``deblur``'s arguments of the same names: the tiles' size, halo (``overlap``)
    and batch checked, the network loaded (and cached), its device, precision and backend read once."""
    import torch

    from ..network.record import record_of

    tile_side, halo, batch_size = _tiles(tile, overlap, batch)
    net = cached_model(model, device=device, dtype=dtype)
    record = record_of(net)
    if record.input_convention != "rgb_minus1_1":
        raise ModelError(f"this model expects inputs as {record.input_convention!r}; only 'rgb_minus1_1' is "
                         "supported")
    p = next(iter(net.parameters()), None)
    runtime = Runtime(
        net, record.device, weights=torch.float32 if p is None else p.dtype,
        autocast=record.compute_dtype,  # load_model's decision (network.precision.inference_precision)
        backend=choose_backend(backend, record.device.type == "cpu", is_drbnet(net)),
        tile=tile_side, halo=halo, batch=batch_size or (4 if record.device.type == "cuda" else 1),
        source=_source(model, device, dtype, backend, tile, overlap, batch),
    )
    if runtime.backend == "openvino":
        runtime = replace(runtime, openvino=OpenVINONetwork(net, runtime.precision),
                          required=str(backend).strip().lower() == "openvino")
    return runtime
