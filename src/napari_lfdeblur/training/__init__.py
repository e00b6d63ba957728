"""Training: pair datasets, losses, the trainer with events and a cancel token.

This subpackage imports torch; ``napari_lfdeblur`` itself loads it lazily.

- :func:`open_pairs`, :func:`split` and the dataset classes (:mod:`.datasets`):
  (blurred, sharp) float32 tensors (3, H, W) in [0, 1];
- :func:`make_loss` and the losses (:mod:`.losses`);
- :func:`train`, :func:`finetune`, :class:`Trainer`, :class:`TrainResult`
  (:mod:`.trainer`), multi-process runs under torchrun (:mod:`.ddp`);
- the progress events and :class:`CancelToken` (:mod:`.events`);
- :func:`psnr`, :func:`ssim`, :func:`evaluate` (:mod:`.metrics`).
"""

from .datasets import (
    ConcatPairs,
    FolderPairs,
    LightFieldPairs,
    PairDataset,
    ProceduralPairs,
    detect_layout,
    image_files,
    match_exposure,
    open_pairs,
    split,
)
from .events import (
    Cancelled,
    CancelToken,
    CheckpointSaved,
    Error,
    Finished,
    Started,
    Step,
    TrainingEvent,
    Validation,
)
from .losses import (
    CombinedLoss,
    PixelLoss,
    ShiftTolerantL1,
    VGGLoss,
    charbonnier,
    make_loss,
)
from .metrics import evaluate, psnr, psnr_ssim, ssim
from .trainer import Trainer, TrainResult, finetune, lr_at, train
from .vgg import VGG19_URL, VGG19Features, default_vgg19_path, load_vgg19

__all__ = [
    "match_exposure",
    "VGG19_URL",
    "CancelToken",
    "Cancelled",
    "CheckpointSaved",
    "CombinedLoss",
    "ConcatPairs",
    "Error",
    "Finished",
    "FolderPairs",
    "LightFieldPairs",
    "PairDataset",
    "PixelLoss",
    "ProceduralPairs",
    "ShiftTolerantL1",
    "Started",
    "Step",
    "TrainResult",
    "Trainer",
    "TrainingEvent",
    "VGG19Features",
    "VGGLoss",
    "Validation",
    "charbonnier",
    "default_vgg19_path",
    "detect_layout",
    "evaluate",
    "finetune",
    "image_files",
    "load_vgg19",
    "lr_at",
    "make_loss",
    "open_pairs",
    "psnr",
    "psnr_ssim",
    "split",
    "ssim",
    "train",
]
