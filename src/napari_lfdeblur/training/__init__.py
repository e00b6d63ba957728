"""Training: pair datasets, losses, the trainer with its events and cancel token, PSNR/SSIM.

The names below are loaded when first used, so that ``napari_lfdeblur.training.config`` (the options, read by
the command-line parser and the widgets) imports no torch; the rest imports torch.
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

__all__ = list(_LAZY)

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
