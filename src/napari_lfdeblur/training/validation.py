"""Validation in a run: the validation data from the ``val`` option, and the validation pass.

``val`` is None (no validation), a fraction such as 0.15 (of the data's
scenes, held out with :func:`~.datasets.split`), a list of scene names to
hold out, or separate data (path, dataset, ...).  The network is scored in
float32, with its output clipped, on rank 0 (the other processes wait); the
blurry input is scored once, for reference; a better PSNR than any before
writes ``best.pt``.
"""

from __future__ import annotations

import math

import torch

from ..errors import TrainingError
from .datasets import PairDataset, ProceduralPairs, open_pairs, split
from .datasets.base import fit_patch
from .events import Validation
from .metrics import score_model

__all__ = ["RunValidation", "validation_data"]


def validation_data(ds, val, *, patch: int, val_patch: int | None, val_seed: int):
    """``(training data, validation data or None)``: ``val`` held out of ``ds``, or opened on its own."""
    vds = None
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
    # no validation crop larger than the validation pairs: padding would be scored as if it were an image
    # (the same check as the training pairs'; stacklevel: fit_patch, here, then the trainer, up to train())
    vds = fit_patch(vds, getattr(vds, "patch", None), validation=True, stacklevel=7)
    if vds is not None and len(vds) == 0:
        vds = None
    return ds, vds


class RunValidation:
    """The part of :class:`~.trainer.Trainer` that validates (``_validate``): it reads ``net``, ``val``,
    ``device``, ``val_batch``, ``val_samples`` and ``step``, and records into ``validations``, ``best`` and
    ``input_scores``."""

    def _validate(self) -> bool:
        """Validate on rank 0 (others wait); returns False when cancelled midway."""
        ok = True
        if self.ctx.main:
            net = self.net
            clip = net.clip_output
            net.clip_output = True
            try:
                first = self.input_scores is None
                r = score_model(net, self.val, device=self.device, batch=self.val_batch, input_scores=first,
                             samples=self.val_samples, cancel=self.should_stop)
            finally:
                net.clip_output = clip
                net.train()
            if r["stopped"]:
                ok = False
            else:
                if first:
                    self.input_scores = {"psnr": r["input_psnr"], "ssim": r["input_ssim"]}
                rec = {"step": self.step, "psnr": float(r["psnr"]), "ssim": float(r["ssim"]),
                       "input_psnr": float(self.input_scores["psnr"]), "input_ssim": float(self.input_scores["ssim"]),
                       "seconds": float(r["seconds"])}
                self.validations.append(rec)
                is_best = math.isfinite(rec["psnr"]) and rec["psnr"] > self.best["psnr"]
                if is_best:
                    self.best = {"psnr": rec["psnr"], "step": self.step}
                self._emit(Validation(self.step, psnr=rec["psnr"], ssim=rec["ssim"], input_psnr=rec["input_psnr"],
                                      input_ssim=rec["input_ssim"], n_images=r["n"], seconds=r["seconds"],
                                      best=is_best, samples=r["samples"] or None))
                if is_best:
                    self._save_models(("best",))
        self.ctx.barrier()
        return ok

