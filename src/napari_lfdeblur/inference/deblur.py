"""Deblurring an image with a network: the user-facing :func:`deblur`.

This is the whole-image version: one forward pass over the full image (the
network pads any size to multiples of 8 itself).  The reusable pieces are

- :func:`get_model`: a ready network from a name, path or module, cached per
  (checkpoint file, device, dtype) so that repeated calls do not reload it;
- :func:`_deblur_array`: float RGB in [0, 1], (H, W, 3) or a batch
  (N, H, W, 3), through the network and back, as float32 numpy;
- :func:`check_rgb_image`: the input checks, raising ``DeblurInputError``.

torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import DeblurInputError, ModelError, OutOfMemoryError

__all__ = ["check_rgb_image", "clear_model_cache", "deblur", "get_model"]

_RANGE_TOL = 1e-5
_CACHE_SIZE = 2
_model_cache: OrderedDict[tuple, object] = OrderedDict()


def check_rgb_image(image) -> np.ndarray:
    """Validate a float RGB (H, W, 3) image in [0, 1]; returns it as float32 (a view when possible)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        if arr.ndim == 2:
            hint = "this looks like a greyscale image: stack it, np.stack([img] * 3, axis=-1)"
        elif arr.ndim == 3 and arr.shape[-1] == 4:
            hint = "this looks like RGBA: drop the alpha channel, img[..., :3]"
        elif arr.ndim == 3 and arr.shape[0] == 3:
            hint = "this looks channel-first (3, H, W): use np.moveaxis(img, 0, -1)"
        else:
            hint = "give one RGB image with channels last"
        raise DeblurInputError(f"deblur expects an RGB image of shape (H, W, 3), got shape {arr.shape}; {hint}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DeblurInputError(f"deblur got an empty image of shape {arr.shape}")
    if arr.dtype.kind != "f":
        hint = " (for uint8 images use img / 255)" if arr.dtype == np.uint8 else ""
        raise DeblurInputError(f"deblur expects a float image with values in [0, 1], got dtype {arr.dtype}{hint}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise DeblurInputError("the image contains NaN or infinite values; replace them first (np.nan_to_num)")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
        raise DeblurInputError(
            f"deblur expects values in [0, 1], got [{lo:.4g}, {hi:.4g}]; rescale the image first "
            "(e.g. (img - img.min()) / (img.max() - img.min()))"
        )
    if lo < 0 or hi > 1:
        arr = np.clip(arr, 0.0, 1.0)
    return arr


def clear_model_cache() -> None:
    """Forget the networks :func:`get_model` keeps (frees their memory)."""
    _model_cache.clear()


def _cache_key(model, device, dtype):
    from ..nn.checkpoint import default_model_path
    from ..nn.devices import resolve_device

    if isinstance(model, str) and model.strip().lower() == "default":
        path = default_model_path()
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model).expanduser()
    else:
        return None
    try:
        st = path.resolve().stat()
    except OSError:
        return None  # let load_model raise its message
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, str(resolve_device(device)), str(dtype))


def get_model(model="default", device="auto", dtype=None):
    """A network ready for inference (see ``load_model``); checkpoint files are loaded once and cached."""
    from ..nn.checkpoint import load_model

    key = _cache_key(model, device, dtype)
    if key is not None and key in _model_cache:
        _model_cache.move_to_end(key)
        return _model_cache[key]
    net = load_model(model, device=device, dtype=dtype)
    if key is not None:
        _model_cache[key] = net
        while len(_model_cache) > _CACHE_SIZE:
            _model_cache.popitem(last=False)
    return net


def _device_dtype(model):
    import torch

    p = next(iter(model.parameters()), None)
    if p is None:
        return torch.device(getattr(model, "device", "cpu")), torch.float32
    return p.device, p.dtype


def _deblur_array(rgb: np.ndarray, model) -> np.ndarray:
    """Run ``model`` on float RGB in [0, 1], (H, W, 3) or (N, H, W, 3); returns float32 in [0, 1], same shape.

    No input checks beyond the shape (callers validate); runs under
    ``torch.inference_mode``.  Out-of-memory becomes ``OutOfMemoryError``.
    """
    import torch

    convention = getattr(model, "input_convention", "rgb_minus1_1")
    if convention != "rgb_minus1_1":
        raise ModelError(f"this model expects inputs as {convention!r}; only 'rgb_minus1_1' is supported")
    single = rgb.ndim == 3
    batch = rgb[None] if single else rgb
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise DeblurInputError(f"expected (H, W, 3) or (N, H, W, 3) RGB, got shape {rgb.shape}")
    device, dtype = _device_dtype(model)
    channels_last = device.type == "cuda"

    try:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).permute(0, 3, 1, 2)
            x = x.to(device=device, dtype=dtype)
            x = (x * 2 - 1).contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            y = model(x)
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
        raise
    return out[0] if single else out


def deblur(image, model="default", device="auto", *, dtype=None) -> np.ndarray:
    """Deblur a whole RGB image.

    Parameters
    ----------
    image:
        float array (H, W, 3) with values in [0, 1].
    model:
        ``"default"`` (the shipped model), a checkpoint path (a napari-lfdeblur
        checkpoint or the authors' ``single_image_defocus_deblurring.pth``) or
        an ``nn.Module``.
    device:
        ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda:0"``, ...
    dtype:
        ``None`` (float32), ``"float16"`` or ``"bfloat16"`` (GPUs only; float32 on the CPU).

    Returns
    -------
    float32 array (H, W, 3) in [0, 1].
    """
    arr = check_rgb_image(image)
    net = get_model(model, device=device, dtype=dtype)
    return _deblur_array(arr, net)
