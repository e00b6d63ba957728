"""Training: pair datasets, losses, the trainer with events and a cancel token.

The names below are loaded when first used, so that ``napari_lfdeblur.training.config`` (the
options, read by the command-line parser and the widgets) imports no torch; the rest imports torch.

- :class:`TrainConfig` (:mod:`.config`): every training option, its default and its check;
- :func:`open_pairs`, :func:`split` and the dataset classes (:mod:`.datasets`):
  (blurred, sharp) float32 tensors (3, H, W) in [0, 1];
- :func:`make_loss` and the losses (:mod:`.losses`);
- :func:`train`, :func:`finetune`, :class:`Trainer`, :class:`TrainResult`
  (:mod:`.trainer`, the loop), and the parts of a run: what it is made of (:mod:`.run`), preparing it
  (:mod:`.setup`), the learning rate and batch of each step (:mod:`.schedule`, :func:`lr_at`), validation
  (:mod:`.validation`), checkpoints and resume (:mod:`.checkpointing`); multi-process runs under torchrun
  (:mod:`.ddp`);
- the progress events and :class:`CancelToken` (:mod:`.events`);
- :func:`psnr`, :func:`ssim`, :func:`score_model` (a network over a pair dataset; :mod:`.metrics`).
"""

from .._lazy import lazy_names

# public name -> the submodule that defines it
_LAZY = {
    **dict.fromkeys(("ConcatPairs", "FolderPairs", "LightFieldPairs", "PairDataset", "ProceduralPairs",
                     "detect_layout", "image_files", "match_exposure", "open_pairs", "split"), ".datasets"),
    **dict.fromkeys(("CancelToken", "CheckpointSaved", "Error", "Finished", "Started", "Step", "Stopped",
                     "TrainingEvent", "Validation"), ".events"),
    **dict.fromkeys(("CombinedLoss", "PixelLoss", "ShiftTolerantL1", "VGGLoss", "charbonnier", "make_loss"),
                    ".losses"),
    **dict.fromkeys(("psnr", "psnr_ssim", "score_model", "ssim"), ".metrics"),
    **dict.fromkeys(("Trainer", "TrainResult", "finetune", "train"), ".trainer"),
    "lr_at": ".schedule",
    **dict.fromkeys(("VGG19_URL", "VGG19Features", "default_vgg19_path", "load_vgg19"), ".vgg"),
    "TrainConfig": ".config",
}

__all__ = [
    "match_exposure",
    "VGG19_URL",
    "CancelToken",
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
    "Stopped",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingEvent",
    "VGG19Features",
    "VGGLoss",
    "Validation",
    "charbonnier",
    "default_vgg19_path",
    "detect_layout",
    "finetune",
    "image_files",
    "load_vgg19",
    "lr_at",
    "make_loss",
    "open_pairs",
    "psnr",
    "psnr_ssim",
    "score_model",
    "split",
    "ssim",
    "train",
]

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
