"""The deblurring network (DRBNet and lighter widths), FAC, checkpoints and precision.

This subpackage imports torch; ``napari_lfdeblur`` itself loads it lazily.
"""

from ..devices import available_devices, device_label, resolve_device
from . import authors  # noqa: F401  (registers load_model("authors"))
from .checkpoint import default_model_path, load_model, save_model
from .drbnet import INPUT_CONVENTION, DRBNet
from .fac import fac, fac_unfold
from .precision import inference_precision

__all__ = [
    "INPUT_CONVENTION",
    "DRBNet",
    "available_devices",
    "default_model_path",
    "device_label",
    "fac",
    "fac_unfold",
    "inference_precision",
    "load_model",
    "resolve_device",
    "save_model",
]
