"""The deblurring network (DRBNet and lighter widths), FAC, checkpoints and device choice.

This subpackage imports torch; ``napari_lfdeblur`` itself loads it lazily.
"""

from . import authors  # noqa: F401  (registers load_model("authors"))
from .checkpoint import default_model_path, load_model, save_model
from .devices import available_devices, device_label, resolve_device, resolve_dtype
from .drbnet import INPUT_CONVENTION, DRBNet
from .fac import fac, fac_unfold

__all__ = [
    "INPUT_CONVENTION",
    "DRBNet",
    "available_devices",
    "default_model_path",
    "device_label",
    "fac",
    "fac_unfold",
    "load_model",
    "resolve_device",
    "resolve_dtype",
    "save_model",
]
