"""The public API of ``napari_lfdeblur``: a name that disappears, or a parameter that is renamed or dropped,
breaks users' scripts, so it must break this test first (new names and new optional parameters are fine)."""

from __future__ import annotations

import inspect

import pytest

import napari_lfdeblur as lfd

# name -> the parameters its users may pass by name (None: not a function)
SURFACE = {
    "__version__": None,
    "LFDeblurError": None,
    "LightFieldError": None,
    "ModelError": None,
    "DeblurInputError": None,
    "TrainingError": None,
    "OutOfMemoryError": None,
    "ImageFileError": None,
    "Cancelled": None,
    "CancelToken": None,
    "LightField": ["data", "view_mask", "disparity", "metadata"],
    "read_lightfield": ["path", "format"],
    "write_eslf": ["lf", "path"],
    "refocus": ["lf", "disparity", "aperture", "aperture_shape", "device"],
    "focal_stack": ["lf", "disparities", "aperture", "aperture_shape", "device", "progress", "cancel"],
    "estimate_disparity": ["lf", "candidates", "disparity_range", "smoothness", "device", "progress", "cancel"],
    "estimate_disparity_range": ["lf", "max_disparity", "percentiles", "device"],
    "make_pairs": ["lf", "apertures", "focus", "aperture_shape", "crop", "skip_duplicates", "duplicate_psnr",
                   "duplicate_ratio", "scene", "device", "progress", "cancel"],
    "iter_pairs": ["lf", "apertures", "focus", "aperture_shape", "crop", "skip_duplicates", "duplicate_psnr",
                   "duplicate_ratio", "scene", "device", "progress", "cancel"],
    "write_pairs": ["pairs", "folder", "format", "name", "progress", "cancel"],
    "read_manifest": ["folder"],
    "Pair": ["blurred", "sharp", "info"],
    "synthetic_lightfield": ["seed", "views", "size", "n_layers", "disparity_range", "channels", "textures",
                             "shapes", "noise", "images"],
    "sample_lightfield": ["name"],
    "DRBNet": ["base", "res_blocks", "input_detail", "fac_impl"],
    "load_model": ["name_or_path", "device", "dtype"],
    "save_model": ["model", "path", "training", "extra", "half"],
    "fetch_authors_checkpoint": ["progress", "cancel", "url", "force"],
    "deblur": ["image", "model", "tile", "overlap", "batch", "device", "dtype", "normalize", "rgb", "chunk",
               "progress", "cancel"],
    "deblur_for_viewer": ["image", "model", "rgb", "chunk"],
    "open_pairs": ["source", "patch", "crop", "augment", "seed", "signed", "cache", "cache_mb", "match_exposure"],
    "train": ["data", "val", "model", "phase", "loss", "steps", "batch", "patch", "lr", "schedule", "device", "amp",
              "grad_clip", "seed", "val_every", "out", "resume", "cancel", "callback"],
    "TrainConfig": ["phase", "loss", "steps", "batch", "patch", "lr", "schedule", "device", "amp", "seed", "out",
                    "resume", "val_every"],
    "finetune": ["data", "model", "val", "phase", "loss", "lr", "cancel", "callback"],
    "evaluate": ["pairs", "model", "outputs", "device", "dtype", "tile", "limit", "csv", "lpips", "progress", "cancel"],
}

LONG_RUNNING = ["deblur", "make_pairs", "iter_pairs", "write_pairs", "focal_stack", "estimate_disparity", "evaluate",
                "train", "finetune", "fetch_authors_checkpoint"]


@pytest.mark.parametrize("name", sorted(SURFACE))
def test_public_name_is_kept(name):
    assert name in lfd.__all__ and name in dir(lfd)
    obj = getattr(lfd, name)
    params = SURFACE[name]
    if params is not None:
        have = inspect.signature(obj).parameters
        assert [p for p in params if p not in have] == [], f"{name} lost parameters"


def test_every_exported_name_is_listed_here():
    """A new public name is added to SURFACE, so that it is guarded from then on."""
    assert sorted(set(lfd.__all__) - set(SURFACE)) == []


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_functions_take_cancel(name):
    assert "cancel" in inspect.signature(getattr(lfd, name)).parameters


def test_exceptions_share_the_project_base():
    for name in ("LightFieldError", "ModelError", "DeblurInputError", "TrainingError", "OutOfMemoryError",
                 "ImageFileError", "Cancelled"):
        assert issubclass(getattr(lfd, name), lfd.LFDeblurError), name
