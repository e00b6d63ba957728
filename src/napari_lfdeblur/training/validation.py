"""Validation in a run: the validation data from the ``val`` option (see :func:`~.trainer.train`), and the
validation pass (on rank 0: the other processes wait)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ..errors import TrainingError
from .config import TrainConfig
from .datasets import PairDataset, ProceduralPairs, open_pairs, split
from .datasets.base import fit_patch
from .events import Validation
from .metrics import score_model
from .run import Progress, RunSetup

__all__ = ["validate", "validation_data"]


def validation_data(ds, val, *, patch: int, val_patch: int | None, val_seed: int):
    """``(training data, validation data or None)``: ``val`` held out of ``ds``, or opened on its own."""
    vds: Any = None
    if val is None or val is False:
        pass
    elif isinstance(val, float) or (isinstance(val, int) and not isinstance(val, bool) and 0 < val < 1):
        if not isinstance(ds, PairDataset):
            raise TrainingError("val as a fraction needs the data to be a pair dataset (from open_pairs)")
        ds, vds = split(ds, val_fraction=float(val), seed=val_seed, val_patch=val_patch)
    elif isinstance(val, (list, tuple)) and val and all(isinstance(v, str) for v in val) and \
            isinstance(ds, PairDataset) and any(v in set(ds.groups) | set(ds.names) for v in val):
        ds, vds = split(ds, val_names=list(val), seed=val_seed, val_patch=val_patch)
    elif isinstance(val, torch.utils.data.Dataset):
        vds = val
    else:
        crop = "center" if val_patch else "full"
        vds = open_pairs(val, patch=val_patch if val_patch else None, crop=crop, augment=False)
        if isinstance(vds, ProceduralPairs):
            vds = vds.heldout(16, patch=val_patch or patch, crop="center", augment=False)
    # stacklevel: fit_patch, here, build_run, Trainer._start and Trainer.run, up to train()
    vds = fit_patch(vds, getattr(vds, "patch", None), validation=True, stacklevel=6)
    if vds is not None and len(vds) == 0:
        vds = None
    return ds, vds


def validate(setup: RunSetup, config: TrainConfig, progress: Progress,
             cancelled: Callable[[], bool]) -> Validation | None:
    """Score ``setup.net`` on ``setup.val`` (float32, output clipped; the blurry input too, the first time) and
    record the scores in ``progress`` (its validations, best PSNR and input scores); returns the
    :class:`~.events.Validation` event to send, or None when ``cancelled()`` stopped it midway."""
    net = setup.net
    clip = net.clip_output
    net.clip_output = True
    first = progress.input_scores is None
    try:
        r = score_model(net, setup.val, device=setup.device, batch=config.val_batch, input_scores=first,
                        samples=config.val_samples, cancel=cancelled)
    finally:
        net.clip_output = clip
        net.train()
    if r["stopped"]:
        return None
    if first:
        progress.input_scores = {"psnr": r["input_psnr"], "ssim": r["input_ssim"]}
    inp = progress.input_scores or {}
    rec = {"step": progress.step, "psnr": float(r["psnr"]), "ssim": float(r["ssim"]),
           "input_psnr": float(inp["psnr"]), "input_ssim": float(inp["ssim"]), "seconds": float(r["seconds"])}
    progress.validations.append(rec)
    is_best = math.isfinite(rec["psnr"]) and rec["psnr"] > progress.best["psnr"]
    if is_best:
        progress.best = {"psnr": rec["psnr"], "step": progress.step}
    return Validation(progress.step, psnr=rec["psnr"], ssim=rec["ssim"], input_psnr=rec["input_psnr"],
                      input_ssim=rec["input_ssim"], n_images=r["n"], seconds=r["seconds"], best=is_best,
                      samples=r["samples"] or None)
