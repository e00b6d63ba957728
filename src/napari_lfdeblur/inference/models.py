"""The network side of deblurring: models loaded once, and one call of the network on RGB arrays.

- :func:`cached_model`: :func:`~napari_lfdeblur.load_model`, loaded once per name, path or module and cached per
  (checkpoint file, device, dtype) so that repeated calls do not reload it;
- :func:`run_network`: float RGB in [0, 1], (H, W, 3) or a batch
  (N, H, W, 3), through the network and back, as float32 numpy.

torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import DeblurInputError, ModelError, OutOfMemoryError

__all__ = ["cached_model", "run_network", "clear_model_cache", "precision_of", "torch_module"]

_CACHE_SIZE = 2
_model_cache: OrderedDict[tuple, object] = OrderedDict()


def torch_module(net):
    """The network inside ``net`` (``picklable_model`` wraps one in ``.net``), else ``net`` itself."""
    inner = getattr(net, "net", None)
    return inner if inner is not None and hasattr(inner, "state_dict") else net


def is_drbnet(net) -> bool:
    """Whether ``net`` (or the network inside it) is a DRBNet, not a module of the user's."""
    from ..network.drbnet import DRBNet

    return isinstance(torch_module(net), DRBNet)


def clear_model_cache() -> None:
    """Forget the networks :func:`cached_model` keeps (frees their memory)."""
    _model_cache.clear()


def _cache_key(model, device, dtype):
    from ..network.checkpoint import default_model_path
    from ..network.devices import resolve_device

    if isinstance(model, str) and model.strip().lower() == "default":
        path = default_model_path()
    elif isinstance(model, str) and model.strip().lower() == "authors":
        from ..network.authors import authors_checkpoint_path

        path = authors_checkpoint_path()  # absent: no key, and load_model fetches it
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model).expanduser()
    else:
        return None
    try:
        st = path.resolve().stat()
    except OSError:
        return None  # let load_model raise its message
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, str(resolve_device(device)), str(dtype))


def cached_model(model="default", device="auto", dtype=None):
    """A network ready for inference (see ``load_model``); checkpoint files are loaded once and cached."""
    from ..network.checkpoint import load_model

    key = _cache_key(model, device, dtype)
    if key is not None and key in _model_cache:
        _model_cache.move_to_end(key)
        return _model_cache[key]
    net = load_model(model, device=device, dtype=dtype)
    if key is None:
        key = _cache_key(model, device, dtype)  # a file load_model just fetched ("authors") exists now
    if key is not None:
        _model_cache[key] = net
        while len(_model_cache) > _CACHE_SIZE:
            _model_cache.popitem(last=False)
    return net


def _device_dtype(model):
    import torch

    p = next(iter(model.parameters()), None)
    if p is None:
        from ..network.record import record_of

        return record_of(model).device, torch.float32
    return p.device, p.dtype


def _autocast_of(model, weights_dtype):
    """The autocast type ``run_network`` uses: the model's ``compute_dtype`` (set by ``load_model``:
    bfloat16 on CPUs that have it) over float32 weights; None when the weights carry the precision."""
    import torch

    from ..network.record import record_of

    compute = record_of(model).compute_dtype
    return compute if compute is not None and weights_dtype == torch.float32 else None


def precision_of(model) -> str:
    """What ``run_network`` computes ``model`` in: ``"bfloat16"`` (autocast or weights), ``"float16"``, ``"float32"``."""
    _, dtype = _device_dtype(model)
    return str(_autocast_of(model, dtype) or dtype).removeprefix("torch.")


_IMAGE_NETWORK = ("deblur runs DRBNet networks (load_model), or modules mapping (N, 3, H, W) in [-1, 1] to the "
                  "same shape")


def run_network(rgb: np.ndarray, model) -> np.ndarray:
    """Run ``model`` on float RGB in [0, 1], (H, W, 3) or (N, H, W, 3); returns float32 in [0, 1], same shape.

    No input checks beyond the shape (callers validate); runs under
    ``torch.inference_mode``.  Out-of-memory becomes ``OutOfMemoryError``.
    """
    import torch

    from ..network.record import record_of

    convention = record_of(model).input_convention
    if convention != "rgb_minus1_1":
        raise ModelError(f"this model expects inputs as {convention!r}; only 'rgb_minus1_1' is supported")
    single = rgb.ndim == 3
    batch = rgb[None] if single else rgb
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise DeblurInputError(f"expected (H, W, 3) or (N, H, W, 3) RGB, got shape {rgb.shape}")
    device, dtype = _device_dtype(model)
    channels_last = device.type == "cuda"
    compute = _autocast_of(model, dtype)
    autocast = torch.autocast(device.type, dtype=compute) if compute is not None else contextlib.nullcontext()

    try:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2)
            x = x.to(device=device, dtype=dtype)
            x = (x * 2 - 1).contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            with autocast:
                y = model(x)
            if not (isinstance(y, torch.Tensor) and y.shape == x.shape):
                raise ModelError(
                    f"the model {type(torch_module(model)).__name__} returned "
                    f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__} for an image of shape "
                    f"{tuple(x.shape)}: {_IMAGE_NETWORK}"
                )
            del x
            y = y.float().add_(1).mul_(0.5).clamp_(0.0, 1.0)
            out = y.permute(0, 2, 3, 1).to("cpu").contiguous().numpy()
    except torch.cuda.OutOfMemoryError as e:  # CUDA (torch.OutOfMemoryError in torch >= 2.5)
        raise OutOfMemoryError(
            f"the {device} device ran out of memory on a {batch.shape[1]}x{batch.shape[2]} image: "
            "deblur in tiles, use a lighter model, or device='cpu'"
        ) from e
    except RuntimeError as e:
        if "can't allocate memory" in str(e) or "not enough memory" in str(e):
            raise OutOfMemoryError(
                f"not enough RAM to deblur a {batch.shape[1]}x{batch.shape[2]} image at once: "
                "deblur in tiles or use a lighter model"
            ) from e
        if not is_drbnet(model):  # a module of the user's that cannot take an image
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ModelError(f"the model {type(torch_module(model)).__name__} could not run on an image of shape "
                             f"(N, 3, H, W) ({reason}): {_IMAGE_NETWORK}") from e
        raise
    return out[0] if single else out
