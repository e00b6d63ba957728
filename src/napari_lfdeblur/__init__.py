"""napari-lfdeblur: defocus deblurring trained on light-field-generated pairs (the public API).

Names are resolved lazily so that ``import napari_lfdeblur`` (and opening napari) does not import torch."""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version

    __version__ = version("napari-lfdeblur")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

from ._lazy import lazy_names
from .errors import (
    DeblurInputError,
    ImageFileError,
    LFDeblurError,
    LightFieldError,
    ModelError,
    OutOfMemoryError,
    TrainingError,
)

_LAZY = {
    "LightField": ".lightfield.core",
    "read_lightfield": ".lightfield.readers",
    "write_eslf": ".lightfield.readers.eslf",
    "refocus": ".lightfield.refocus",
    "focal_stack": ".lightfield.refocus",
    "estimate_disparity": ".lightfield.disparity",
    "estimate_disparity_range": ".lightfield.disparity",
    "make_pairs": ".lightfield.pairs",
    "iter_pairs": ".lightfield.pairs",
    "write_pairs": ".lightfield.pairs",
    "read_manifest": ".lightfield.pairs",
    "Pair": ".lightfield.pairs",
    "synthetic_lightfield": ".lightfield.synthetic",
    "sample_lightfield": ".sample_data",
    "DRBNet": ".network.drbnet",
    "load_model": ".network.checkpoint",
    "save_model": ".network.checkpoint",
    "fetch_authors_checkpoint": ".network.authors",
    "deblur": ".inference.deblur",
    "deblur_for_viewer": ".inference.pyramid",
    "open_pairs": ".training.datasets",
    "train": ".training.trainer",
    "finetune": ".training.trainer",
    "TrainConfig": ".training.config",
    "CancelToken": ".cancel",
    "Cancelled": ".cancel",
    "evaluate": ".evaluation",
}

__all__ = [
    "__version__",
    "LFDeblurError",
    "LightFieldError",
    "ModelError",
    "DeblurInputError",
    "TrainingError",
    "ImageFileError",
    "OutOfMemoryError",
    *_LAZY,
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
