"""The trainer: phase 1 (pixel loss on light-field pairs) and phase 2 (feature
loss on real two-shot pairs), with validation, checkpoints, exact resume,
cancellation, progress events and multi-process (torchrun) training.

:func:`train` and :func:`finetune` are the entry points (the napari widget
and the ``lfdeblur train`` / ``finetune`` commands call them)::

    from napari_lfdeblur.training import train, finetune, CancelToken
    r1 = train(["synthetic", "plants_lf_folder"], model=16, steps=6000, out="runs/p1")
    r2 = finetune("pairs/dpdd", model=r1.best or r1.last, loss="shift_l1", val=0.15, out="runs/p2")

What a run with ``out=FOLDER`` writes (atomically: a crash never leaves a
half-written file under these names):

- ``last.pt``: the network after the last completed step, in the project's
  checkpoint format (:func:`~napari_lfdeblur.nn.checkpoint.save_model`) with
  a ``training`` summary (phase, loss, steps, data, validation PSNR/SSIM of
  the network and of the blurry input, time, ...); load it with
  ``load_model``.
- ``best.pt``: the same for the step with the best validation PSNR.
- ``resume.pt``: everything needed to continue exactly: the network, the
  Adam state, the AMP scaler, the random generators, the step, the loss
  history and validations, as plain tensors and Python values (it loads with
  ``torch.load(weights_only=True)``).  ``train(..., resume=True)`` continues
  from ``out/resume.pt`` when it exists (and starts afresh otherwise), so the
  same command can be run again after an interruption; a continued run
  produces the same losses, step for step, as an uninterrupted one
  (same device and thread count; the data order and augmentations depend
  only on the seed and the step).
- ``log.csv``: one row per step (loss and its terms, learning rate, seconds
  per step) with the validation scores on the steps where they were
  computed; ``summary.json`` at the end.

Learning rate: Adam (betas 0.9, 0.999) with ``schedule="cosine"`` (from
``lr`` down to ``min_lr * lr`` over the run, after ``warmup`` linear steps),
``"step"`` (multiplied by ``gamma`` at each of ``milestones``, fractions of
the run) or ``"constant"``.  The learning rate is a function of the step
alone, so resuming needs no scheduler state.

Mixed precision (``amp=True``, see :func:`~..nn.devices.autocast_dtype`):
``torch.autocast`` in float16 with a ``GradScaler`` on CUDA; bfloat16 (no
scaler) on a CPU with native bfloat16 (AVX512-BF16 or AMX), where a step
is 1.2x (width 8) to 1.7x (width 32) faster than float32; float32
elsewhere (MPS, older CPUs).
``amp="bfloat16"`` asks for bfloat16 on CUDA or any CPU, ``amp=False`` for
float32.  Validation always runs in float32.  Gradients are clipped to
``grad_clip`` (global norm; None to turn off).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..io.atomic import atomic_path, check_writable_file
from .._signals import sigterm_as_interrupt
from ..cancel import cancel_check
from ..errors import ModelError, OutOfMemoryError, TrainingError
from . import ddp as _ddp
from ..nn.record import record_of
from .config import FINETUNE_PHASE, TrainConfig, with_config_keywords
from .datasets import PairDataset, ProceduralPairs, open_pairs, split
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
from .losses import make_loss
from .metrics import evaluate

__all__ = ["RESUME_FORMAT", "TrainResult", "Trainer", "finetune", "lr_at", "train"]

RESUME_FORMAT = "napari-lfdeblur-resume/1"
_DEFAULTS = TrainConfig()


# --------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``model``: the trained network (unwrapped, eval mode, on the training
    device, output clipping on); ``out``/``last``/``best``/``resume``/``log``:
    the files written (None when not written); ``history``: one dict per step
    (``step``, ``loss``, ``lr``, ``seconds``, the loss terms);
    ``validations``: one dict per validation (``step``, ``psnr``, ``ssim``,
    ``input_psnr``, ``input_ssim``); ``steps``: completed steps; ``total``:
    the planned number; ``cancelled``; ``seconds``: training time of all
    sessions together; ``summary``: the training summary stored in the
    checkpoints.
    """

    model: nn.Module
    out: Path | None = None
    last: Path | None = None
    best: Path | None = None
    resume: Path | None = None
    log: Path | None = None
    history: list = field(default_factory=list)
    validations: list = field(default_factory=list)
    steps: int = 0
    total: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    summary: dict = field(default_factory=dict)

    @property
    def losses(self) -> list[float]:
        return [r["loss"] for r in self.history]

    @property
    def best_psnr(self) -> float:
        v = [r["psnr"] for r in self.validations if math.isfinite(r["psnr"])]
        return max(v) if v else math.nan


# --------------------------------------------------------------------------- schedule
def lr_at(i: int, total: int, lr: float, schedule: str = _DEFAULTS.schedule, *, warmup: int = _DEFAULTS.warmup,
          min_lr: float = _DEFAULTS.min_lr, milestones=_DEFAULTS.milestones, gamma: float = _DEFAULTS.gamma) -> float:
    """Learning rate of step ``i`` (0-based) of ``total`` (the defaults are :class:`TrainConfig`'s)."""
    if warmup and i < warmup:
        return lr * (i + 1) / warmup
    if schedule == "constant":
        return lr
    if schedule == "step":
        passed = sum(1 for m in milestones if i >= round(m * total))
        return lr * gamma**passed
    t = (i - warmup) / max(1, total - warmup)
    t = min(max(t, 0.0), 1.0)
    return lr * (min_lr + (1 - min_lr) * 0.5 * (1 + math.cos(math.pi * t)))


# --------------------------------------------------------------------------- data order
class _StepBatches(torch.utils.data.Sampler):
    """Keys of every step's batch: a function of (seed, step, rank) only.

    Draw number ``g = (step * world + rank) * batch + b``; item index = the
    ``g % n``-th entry of a permutation of the dataset seeded by (seed,
    g // n) (epochs without replacement); the key ``(index, seed, g)`` also
    seeds the item's crop/augmentation/refocus.
    """

    def __init__(self, n: int, batch: int, seed: int, start: int, total: int, rank: int = 0, world: int = 1,
                 keyed: bool = True):
        self.n, self.batch, self.seed = n, batch, seed
        self.start, self.total, self.rank, self.world = start, total, rank, world
        self.keyed = keyed
        self._epoch, self._perm = -1, None

    def _index(self, g: int) -> int:
        e = g // self.n
        if e != self._epoch:
            self._perm = np.random.default_rng([self.seed & 0xFFFFFFFF, 104729, e]).permutation(self.n)
            self._epoch = e
        return int(self._perm[g % self.n])

    def keys(self, step: int) -> list:
        base = (step * self.world + self.rank) * self.batch
        out = []
        for b in range(self.batch):
            g = base + b
            i = self._index(g)
            out.append((i, self.seed, g) if self.keyed else i)
        return out

    def __iter__(self):
        for s in range(self.start, self.total):
            yield self.keys(s)

    def __len__(self):
        return max(0, self.total - self.start)


def _collate(items):
    blur = torch.stack([it[0] for it in items])
    sharp = torch.stack([it[1] for it in items])
    return blur, sharp


# --------------------------------------------------------------------------- rng state
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: dict) -> None:
    py = state.get("python")
    if py is not None:
        random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state.get("numpy")
    if npst is not None:
        np.random.set_state(("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                             npst["gauss"]))
    if state.get("torch") is not None:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


def _plain(x):
    """Python scalars / lists / dicts only (numpy values converted), for checkpoints and JSON."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    if x is None or type(x) in (bool, int, float, str):
        return x
    for t in (bool, int, float, str):  # subclasses (numpy scalars, enums) to the plain type
        if isinstance(x, t):
            return t(x)
    return str(x)


def _json_safe(x):
    """NaN and infinities (no validation, no PSNR yet) as None: JSON has no NaN, ``null`` is valid."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------- model
def _build_model(model, dist_ctx) -> tuple[nn.Module, dict]:
    """(DRBNet, summary of its previous training) from what the caller gave."""
    from ..nn.checkpoint import load_model
    from ..nn.drbnet import DRBNet

    previous: dict = {}
    if model is None:
        net = DRBNet()
    elif isinstance(model, bool):
        raise TrainingError(f"model must be a base width, a checkpoint or a DRBNet, got {model!r}")
    elif isinstance(model, int):
        net = DRBNet(base=model)
    elif isinstance(model, dict):  # e.g. {"base": 16, "input_detail": True}
        try:
            net = DRBNet.from_config(model)
        except ModelError as e:
            raise TrainingError(f"cannot build a network from {model}: {e}") from e
    elif isinstance(model, (str, os.PathLike)):
        try:
            net = load_model(model, device="cpu")
        except ModelError as e:
            raise TrainingError(f"cannot start from {model}: {e}") from e
        previous = dict(record_of(net).training)
    elif isinstance(model, nn.Module):
        net = _ddp.unwrap(model)
        previous = dict(record_of(net).training)
    else:
        raise TrainingError(
            f"model must be None (DRBNet base 32), a base width (int), a config dict, a checkpoint path or a "
            f"DRBNet, got {type(model).__name__}"
        )
    if not isinstance(net, DRBNet):
        raise TrainingError(f"the trainer trains DRBNet networks, got {type(net).__name__}")
    return net, previous


# --------------------------------------------------------------------------- trainer
def _last_amp(record: str) -> str:
    """The arithmetic a run's last steps used, from its ``amp`` record (see ``Trainer._amp_record``)."""
    return str(record).rsplit(", then ", 1)[-1]


def _config(config, options: dict, where: str) -> TrainConfig:
    """``config`` (``TrainConfig()`` when None) with the keyword ``options`` (its fields) changed."""
    if config is None:
        config = _DEFAULTS
    elif not isinstance(config, TrainConfig):
        raise TrainingError(f"config must be a TrainConfig, got {type(config).__name__} (TrainConfig.from_dict "
                            "makes one from a dict such as a run summary's 'config')")
    TrainConfig._check_names(options, where)
    return config.replace(**options)


class Trainer:
    """One training run; :func:`train` is ``Trainer(...).run()``.  The
    arguments are those of :func:`train`: the data, the validation data, the
    network, the session's cancel token and callback, and a
    :class:`TrainConfig` (``config``) with any of its fields changed by
    keywords.  ``self.config`` is the run's configuration."""

    def __init__(self, data, config: TrainConfig | None = None, *, val=None, model=None, cancel=None,
                 callback: Callable[[TrainingEvent], Any] | None = None, **options):
        config = _config(config, options, "Trainer()")
        self.config = config
        self.phase, self.steps, self.batch, self.patch = config.phase, config.steps, config.batch, config.patch
        self.lr = config.learning_rate
        self.schedule, self.warmup, self.min_lr = config.schedule, config.warmup, config.min_lr
        self.milestones, self.gamma, self.weight_decay = config.milestones, config.gamma, config.weight_decay
        self.amp, self.grad_clip, self.seed = config.amp, config.grad_clip, config.seed
        self.val_patch, self.val_batch, self.val_samples = config.val_patch, config.val_batch, config.val_samples
        self.checkpoint_minutes = config.checkpoint_minutes
        out = config.out
        self.out = out.expanduser() if out is not None else None
        if self.out is not None and self.out.exists() and not self.out.is_dir():
            raise TrainingError(f"out={out} is a file; a training run writes a folder (checkpoints, log.csv): give "
                                "a folder that does not exist yet, or an earlier run's folder")
        if self.out is not None:  # a read-only or full disk: said now, not at the first checkpoint
            check_writable_file(self.out / "resume.pt", "the training run")
        self.resume_arg = config.resume
        self.should_stop = cancel_check(cancel, where="train")
        self.cancel = cancel
        self.callback = callback
        self.num_workers = config.num_workers
        self.log_every = config.log_every
        self.distributed = config.distributed
        self.threads = config.threads
        self.description = config.description
        self._data_arg, self._val_arg, self._model_arg = data, val, model
        self._loss_arg = config.loss
        self._loss_kw = {"max_shift": config.max_shift, "multiscale": config.multiscale,
                         "vgg_weights": config.vgg_weights, "vgg_download": config.vgg_download}
        self.device_arg = config.device
        self.val_seed = config.val_seed

    # ---------------------------------------------------------------- events
    def _emit(self, event: TrainingEvent) -> None:
        if self.callback is not None and self.ctx.main:
            self.callback(event)

    # ---------------------------------------------------------------- setup
    def _open_data(self):
        data = self._data_arg
        if isinstance(data, PairDataset):
            ds = data if (data.patch == self.patch and data.crop == "random") else data.options(
                patch=self.patch, crop="random", augment=True)
        elif isinstance(data, torch.utils.data.Dataset):
            ds = data
        else:
            ds = open_pairs(data, patch=self.patch)
        if len(ds) == 0:
            raise TrainingError("the training data is empty")
        val = self._val_arg
        vds = None
        if val is None or val is False:
            pass
        elif isinstance(val, float) or (isinstance(val, int) and not isinstance(val, bool) and 0 < val < 1):
            if not isinstance(ds, PairDataset):
                raise TrainingError("val as a fraction needs the data to be a pair dataset (from open_pairs)")
            ds, vds = split(ds, val_fraction=float(val), seed=self.val_seed, val_patch=self.val_patch)
        elif isinstance(val, (list, tuple)) and val and all(isinstance(v, str) for v in val) and \
                isinstance(ds, PairDataset) and any(v in set(ds.groups) | set(ds.names) for v in val):
            ds, vds = split(ds, val_names=list(val), seed=self.val_seed, val_patch=self.val_patch)
        elif isinstance(val, torch.utils.data.Dataset):
            vds = val
        else:
            crop = "center" if self.val_patch else "full"
            vds = open_pairs(val, patch=self.val_patch if self.val_patch else None, crop=crop, augment=False)
            if isinstance(vds, ProceduralPairs):
                vds = vds.heldout(16, patch=self.val_patch or self.patch, crop="center", augment=False)
        if vds is not None and len(vds) == 0:
            vds = None
        return ds, vds

    def _resolve_resume(self) -> Path | None:
        r = self.resume_arg
        if r is None and self.out is not None and (self.out / "resume.pt").is_file():
            # never overwrite a run's checkpoints because a resume flag was forgotten
            state = "finished" if (self.out / "summary.json").is_file() else "stopped before its last step"
            raise TrainingError(
                f"{self.out} already holds a training run ({state}): continue it with resume=True (the Train "
                "widget's 'resume from output folder', the CLI's --resume), or choose another output folder "
                "(resume=False starts afresh and overwrites it)"
            )
        if r is None or r is False:
            return None
        if r is True or (isinstance(r, str) and r.lower() in ("true", "auto", "last")):
            if self.out is None:
                raise TrainingError("resume=True continues from out/resume.pt: give out=FOLDER")
            p = self.out / "resume.pt"
            if not p.is_file():
                # say so: a run stopped before its first checkpoint starts again from step 1
                what = "has no checkpoint" if self.out.is_dir() else "does not exist yet"
                warnings.warn(f"resume: {self.out} {what} to resume from (no resume.pt): starting from step 1",
                              RuntimeWarning, stacklevel=2)
                return None
            return p
        p = Path(r).expanduser()
        if p.is_dir():
            p = p / "resume.pt"
        if not p.is_file():
            raise TrainingError(f"no resume file at {p}; a run with out=FOLDER writes FOLDER/resume.pt")
        return p

    def _load_resume(self, path: Path) -> dict:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise TrainingError(f"could not read the resume file {path} ({type(e).__name__}: {e}); it may be "
                                "damaged: resume from another run or start afresh") from e
        if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
            raise TrainingError(
                f"{path} is not a napari-lfdeblur resume file (a model checkpoint such as last.pt or best.pt "
                "cannot resume a run: it has no optimizer state; start a new run from it with model=PATH)"
            )
        return state

    def _setup(self):
        from ..nn.devices import autocast_dtype, resolve_device

        if self.threads:
            torch.set_num_threads(int(self.threads))
        dev = resolve_device(self.device_arg) if not isinstance(self.device_arg, torch.device) else self.device_arg
        self.ctx = _ddp.setup(self.distributed, dev)
        if self.ctx.enabled and dev.type == "cuda":
            dev = torch.device("cuda", self.ctx.local_rank)
        self.device = dev

        resume_path = self._resolve_resume()
        self.resume_state = self._load_resume(resume_path) if resume_path is not None else None
        self.resumed_from = str(resume_path) if resume_path is not None else None

        _seed_everything(self.seed)
        model_arg = self._model_arg
        if self.resume_state is not None and model_arg is None:
            model_arg = dict(self.resume_state["config"])
        self.net, self.previous = _build_model(model_arg, self.ctx)
        if self.resume_state is not None:
            if dict(self.resume_state["config"]) != dict(self.net.config):
                raise TrainingError(
                    f"the resume file {resume_path} is for {self.resume_state['config']}, not {self.net.config}; "
                    "pass the same model or no model"
                )
            self.net.load_state_dict(self.resume_state["model"])
            self.previous = dict(self.resume_state.get("previous") or self.previous)
        self.net.to(self.device)
        self.net.train()

        self.data, self.val = self._open_data()
        self.loss_fn = make_loss(self._loss_arg, self.phase, **self._loss_kw).to(self.device)

        params = [p for p in self.net.parameters() if p.requires_grad]
        self.opt = torch.optim.Adam(params, lr=self.lr, betas=(0.9, 0.999), weight_decay=self.weight_decay)
        try:
            self.amp_dtype = autocast_dtype(self.amp, self.device)
        except ModelError as e:
            raise TrainingError(str(e)) from None
        self.scaler = torch.amp.GradScaler("cuda") if self.amp_dtype == torch.float16 else None

        n = len(self.data)
        self.val_every = self.config.validation_interval()
        self.ckpt_every = self.config.checkpoint_interval(validating=self.val is not None)

        # state that resume restores
        self.step = 0
        self.history: list[dict] = []
        self.validations: list[dict] = []
        self.best = {"psnr": -math.inf, "step": 0}
        self.input_scores: dict | None = None
        self.elapsed_before = 0.0
        self._amp_before = (self._amp_now(), 0)  # (arithmetic of the steps done before this session, their count)
        if self.resume_state is not None:
            st = self.resume_state
            self.opt.load_state_dict(st["optimizer"])
            if self.scaler is not None and st.get("scaler"):
                self.scaler.load_state_dict(st["scaler"])
            self.step = int(st["step"])
            self.history = [dict(r) for r in st.get("history", [])]
            self.validations = [dict(r) for r in st.get("validations", [])]
            b = st.get("best") or {}
            self.best = {"psnr": float(b.get("psnr", -math.inf)), "step": int(b.get("step", 0))}
            self.input_scores = dict(st["input_scores"]) if st.get("input_scores") else None
            self.elapsed_before = float(st.get("elapsed", 0.0))
            _set_rng_state(st.get("rng", {}))
            old = st.get("settings", {})
            self._amp_before = (str(old.get("amp", "off")), self.step)
            for k in ("batch", "patch", "seed"):
                if k in old and old[k] != getattr(self, k):
                    warnings.warn(f"resuming with {k}={getattr(self, k)} but the run used {k}={old[k]}: the "
                                  "continuation will not match an uninterrupted run", RuntimeWarning, stacklevel=4)
            if int(old.get("total", self.steps)) != self.steps:
                warnings.warn(f"resuming with steps={self.steps} but the run was planned for {old.get('total')}: "
                              "the learning-rate schedule changes from here", RuntimeWarning, stacklevel=4)
            if self.step < self.steps and _last_amp(old.get("amp", "off")) != self._amp_now():
                warnings.warn(f"resuming with amp {self._amp_now()} but the run used {old.get('amp', 'off')}: the "
                              "continuation will not match an uninterrupted run", RuntimeWarning, stacklevel=4)

        self.model = self.net
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        keyed = isinstance(self.data, PairDataset)
        self.sampler = _StepBatches(n, self.batch, self.seed, self.step, self.steps, self.ctx.rank, self.ctx.world,
                                    keyed=keyed)
        self.loader = torch.utils.data.DataLoader(
            self.data, batch_sampler=self.sampler, num_workers=self.num_workers, collate_fn=_collate,
            pin_memory=self.device.type == "cuda",
        )

    # ---------------------------------------------------------------- pieces
    def _settings(self) -> dict:
        return {"phase": self.phase, "loss": str(self.loss_fn), "total": self.steps, "batch": self.batch,
                "patch": self.patch, "lr": self.lr, "schedule": self.schedule, "warmup": self.warmup,
                "min_lr": self.min_lr, "seed": self.seed, "grad_clip": self.grad_clip,
                "amp": self._amp_record(), "world_size": self.ctx.world}

    def _amp_now(self) -> str:
        return str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"

    def _amp_record(self) -> str:
        """The arithmetic of all the run's steps: a run resumed with another ``amp`` says where it changed."""
        before, upto = self._amp_before
        now = self._amp_now()
        if upto == 0:
            return now
        if self.step == upto or _last_amp(before) == now:  # no step this session, or no change: as it was
            return before
        return f"{before} to step {upto}, then {now}"

    def _describe(self, ds) -> str:
        if ds is None:
            return ""
        return ds.describe() if hasattr(ds, "describe") else f"{type(ds).__name__} ({len(ds)} items)"

    def _summary(self, at_best: bool = False) -> dict:
        last_val = self.validations[-1] if self.validations else None
        if at_best:
            last_val = next((v for v in self.validations if v["step"] == self.best["step"]), last_val)
        inp = self.input_scores or {}
        s = {
            **self._settings(),
            "steps": int(last_val["step"]) if at_best and last_val else self.step,
            "data": self.description or self._describe(self.data),
            "n_train": len(self.data),
            "val_data": self._describe(self.val),
            "n_val": len(self.val) if self.val is not None else 0,
            "val_psnr": float(last_val["psnr"]) if last_val else math.nan,
            "val_ssim": float(last_val["ssim"]) if last_val else math.nan,
            "val_step": int(last_val["step"]) if last_val else 0,
            "input_psnr": float(inp.get("psnr", math.nan)),
            "input_ssim": float(inp.get("ssim", math.nan)),
            "best_step": int(self.best["step"]),
            "best_psnr": float(self.best["psnr"]) if math.isfinite(self.best["psnr"]) else math.nan,
            "final_loss": float(np.mean([r["loss"] for r in self.history[-50:]])) if self.history else math.nan,
            "seconds": round(self.elapsed(), 1),
            "device": str(self.device),
            "torch_version": torch.__version__,
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "config": self.config.to_dict(),  # every option as given: TrainConfig.from_dict makes it again
        }
        if self.previous:
            s["previous"] = _plain(self.previous)
        return _plain(s)

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0)

    def _save_models(self, which=("last",)) -> list[Path]:
        from ..nn.checkpoint import save_model

        paths = []
        if self.out is None or not self.ctx.main:
            return paths
        for w in which:
            p = self.out / f"{w}.pt"
            save_model(self.net, p, training=self._summary(at_best=(w == "best")))
            paths.append(p)
            self._emit(CheckpointSaved(self.step, path=str(p), which=w))
        return paths

    def _save_resume(self) -> Path | None:
        if self.out is None or not self.ctx.main:
            return None
        state = {
            "format": RESUME_FORMAT,
            "step": self.step,
            "config": dict(self.net.config),
            "model": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": _rng_state(),
            "history": self.history,
            "validations": self.validations,
            "best": {"psnr": float(self.best["psnr"]), "step": int(self.best["step"])},
            "input_scores": self.input_scores,
            "elapsed": float(self.elapsed()),
            "settings": self._settings(),
            "previous": _plain(self.previous) if self.previous else None,
        }
        p = self.out / "resume.pt"
        with atomic_path(p) as tmp:
            torch.save(state, tmp)
        self._emit(CheckpointSaved(self.step, path=str(p), which="resume"))
        return p

    def _write_log(self) -> Path | None:
        if self.out is None or not self.ctx.main:
            return None
        vals = {v["step"]: v for v in self.validations}
        terms = []
        for r in self.history:
            for k in r:
                if k not in ("step", "loss", "lr", "seconds") and k not in terms:
                    terms.append(k)
        cols = ["step", "loss", *terms, "lr", "seconds", "val_psnr", "val_ssim", "input_psnr", "input_ssim"]
        p = self.out / "log.csv"
        with atomic_path(p) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.history:
                v = vals.get(r["step"], {})
                row = [r["step"], f"{r['loss']:.6g}", *[f"{r[k]:.6g}" if k in r else "" for k in terms],
                       f"{r['lr']:.6g}", f"{r['seconds']:.4g}"]
                row += [f"{v[k]:.6g}" if k in v else "" for k in ("psnr", "ssim", "input_psnr", "input_ssim")]
                w.writerow(row)
        return p

    def _checkpoint(self, models=("last",)) -> None:
        self._save_models(models)
        self._save_resume()
        self._write_log()
        self._last_ckpt_time = time.perf_counter()

    def _validate(self) -> bool:
        """Validate on rank 0 (others wait); returns False when cancelled midway."""
        ok = True
        if self.ctx.main:
            net = self.net
            clip = net.clip_output
            net.clip_output = True
            try:
                first = self.input_scores is None
                r = evaluate(net, self.val, device=self.device, batch=self.val_batch, input_scores=first,
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

    def _result(self, cancelled: bool) -> TrainResult:
        out = self.out
        exists = (lambda p: p if (p is not None and p.is_file()) else None)
        return TrainResult(
            model=self.net,
            out=out,
            last=exists(out / "last.pt") if out else None,
            best=exists(out / "best.pt") if out else None,
            resume=exists(out / "resume.pt") if out else None,
            log=exists(out / "log.csv") if out else None,
            history=self.history,
            validations=self.validations,
            steps=self.step,
            total=self.steps,
            cancelled=cancelled,
            seconds=self.elapsed(),
            summary=self._summary(),
        )

    def _finish_model(self) -> None:
        self.net.clip_output = True
        self.net.eval()

    # ---------------------------------------------------------------- main loop
    def _train_step(self, blur, sharp, i: int) -> tuple[float, dict]:
        lr = lr_at(i, self.steps, self.lr, self.schedule, warmup=self.warmup, min_lr=self.min_lr,
                   milestones=self.milestones, gamma=self.gamma)
        for g in self.opt.param_groups:
            g["lr"] = lr
        blur = blur.to(self.device, non_blocking=True)
        sharp = sharp.to(self.device, non_blocking=True)
        self.opt.zero_grad(set_to_none=True)
        ctx = (torch.autocast(device_type=self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
               else contextlib.nullcontext())
        with ctx:
            out, inter = self.model(blur * 2 - 1, return_intermediate=True)
        pred = (out.float() + 1) * 0.5
        inter = [(e.float() + 1) * 0.5 for e in inter]
        loss = self.loss_fn(pred, sharp, inter)
        value = float(loss.detach())
        if not math.isfinite(value):
            self._bad += 1
            if self._bad >= 5:
                raise TrainingError(
                    f"the loss has been NaN or infinite for {self._bad} steps in a row (step {i + 1}): lower the "
                    f"learning rate (now {lr:.3g}) or check the training data"
                )
            return value, lr  # skip the update (GradScaler would too)
        self._bad = 0
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            if self.grad_clip:
                self.scaler.unscale_(self.opt)
                nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            loss.backward()
            if self.grad_clip:
                nn.utils.clip_grad_norm_(self.net.parameters(), self.grad_clip)
            self.opt.step()
        return value, lr

    def run(self) -> TrainResult:
        # SIGTERM (kill, a batch system's time limit) saves and stops as Ctrl-C does, instead of losing the steps
        # since the last checkpoint
        with sigterm_as_interrupt():
            return self._run()

    def _run(self) -> TrainResult:
        self._t0 = time.perf_counter()
        self.ctx = _ddp.DistContext()
        try:
            self._setup()
        except BaseException as e:
            self._emit(Error(0, message=str(e), exception=e))
            _ddp.teardown(self.ctx)
            raise
        self._t0 = time.perf_counter()
        self._last_ckpt_time = self._t0
        self._bad = 0
        cancelled = False
        self.net.clip_output = False  # clamping would cut the gradient of out-of-range pixels
        try:
            self._emit(Started(self.step, total=self.steps, phase=self.phase, loss=str(self.loss_fn),
                               device=str(self.device), model=dict(self.net.config), n_train=len(self.data),
                               n_val=len(self.val) if self.val is not None else 0,
                               data=self.description or self._describe(self.data),
                               out=str(self.out) if self.out else None, resumed_from=self.resumed_from,
                               world_size=self.ctx.world, amp=self._amp_now()))
            if self.out is not None and self.ctx.main:
                self.out.mkdir(parents=True, exist_ok=True)
            avg = None
            it = iter(self.loader)
            while self.step < self.steps:
                if self.should_stop() and not self.ctx.enabled:
                    cancelled = True
                    break
                t = time.perf_counter()
                blur, sharp = next(it)
                value, lr = self._train_step(blur, sharp, self.step)
                value, stop = self.ctx.reduce_step(value, self.should_stop())
                self.step += 1
                dt = time.perf_counter() - t
                avg = dt if avg is None else 0.9 * avg + 0.1 * dt
                row = {"step": self.step, "loss": value, "lr": lr, "seconds": dt}
                terms = getattr(self.loss_fn, "terms", {}) or {}
                if len(terms) > 1:
                    row.update({k: float(v) for k, v in terms.items()})
                self.history.append(row)
                self._emit(Step(self.step, total=self.steps, loss=value, lr=lr, seconds_per_step=avg,
                                eta=avg * (self.steps - self.step), terms=dict(terms)))
                last = self.step == self.steps
                if self.val is not None and (self.step % self.val_every == 0 or last) and not self._validate():
                    cancelled = True
                    break
                due = self.step % self.ckpt_every == 0 or (
                    self.checkpoint_minutes and time.perf_counter() - self._last_ckpt_time
                    >= 60 * self.checkpoint_minutes)
                if last or due:
                    self._checkpoint()
                elif self.step % self.log_every == 0:
                    self._write_log()
                if stop and self.ctx.enabled:
                    cancelled = True
                    break
            if cancelled:
                self._checkpoint()
        except KeyboardInterrupt:
            # Ctrl-C: keep what was done (the last completed step), then stop
            with contextlib.suppress(Exception):
                self._checkpoint()
            self._emit(Cancelled(self.step, seconds=self.elapsed(),
                                 checkpoint=str(self.out / "last.pt") if self.out else None))
            self._finish_model()
            _ddp.teardown(self.ctx)
            raise
        except BaseException as e:
            err = e
            if isinstance(e, getattr(torch, "OutOfMemoryError", MemoryError)) or (
                    type(e) is RuntimeError and "out of memory" in str(e).lower()):
                err = OutOfMemoryError(
                    f"{self.device} ran out of memory at step {self.step + 1} (batch {self.batch}, patch "
                    f"{self.patch}, {self.net.config}): lower batch or patch, or use a lighter network (model=16)"
                )
            self._emit(Error(self.step, message=str(err), exception=err))
            self._finish_model()
            _ddp.teardown(self.ctx)
            if err is not e:
                raise err from e
            raise
        self._finish_model()
        result = self._result(cancelled)
        if self.out is not None and self.ctx.main and not cancelled:
            with atomic_path(self.out / "summary.json") as tmp:
                tmp.write_text(json.dumps(_json_safe(_plain(result.summary)), indent=2, default=str,
                                          allow_nan=False), encoding="utf-8")
        if cancelled:
            self._emit(Cancelled(self.step, seconds=result.seconds, checkpoint=str(result.last) if result.last
                                 else None, result=result))
        else:
            self._emit(Finished(self.step, seconds=result.seconds, result=result))
        _ddp.teardown(self.ctx)
        return result


# --------------------------------------------------------------------------- public functions
@with_config_keywords
def train(data, *, val=None, model=None, config: TrainConfig | None = None,
          cancel: CancelToken | Callable[[], bool] | None = None,
          callback: Callable[[TrainingEvent], Any] | None = None, **options) -> TrainResult:
    """Train a DRBNet on (blurred, sharp) pairs; returns a :class:`TrainResult`.

    Parameters
    ----------
    data
        Training pairs: anything :func:`~.datasets.open_pairs` takes (pair
        folder, light field, ``"synthetic"``, a list of these) or a
        :class:`~.datasets.PairDataset`; random ``patch`` crops with flips
        and rotations are drawn from it.
    val
        Validation pairs: None (no validation), a fraction such as 0.15 (of
        the data's scenes, held out with :func:`~.datasets.split`), a list of
        scene names to hold out, or separate data (path, dataset, ...).
        Scored on centre crops of ``val_patch`` px (None: whole images) every
        ``val_every`` steps (None: a tenth of the run) and at the end; the
        blurry input is scored once for reference.
    model
        None (the paper's DRBNet, base 32), a base width (16, 8, ...: the
        paper's network, lighter), a config dict such as ``{"base": 8,
        "input_detail": True}`` (a network that starts as the identity: what
        short or CPU trainings want, and what the CLI and the Train widget
        build), a checkpoint path or a DRBNet to continue from.
    config, **options
        The run's options: a :class:`~.config.TrainConfig` (None: its
        defaults) and any of its fields as keywords, which change it.  The
        main ones: ``phase`` (``"pixel"``: default loss ``"l1"`` with
        multi-scale supervision; ``"feature"``: default loss ``"vgg"``),
        ``loss`` (see :func:`~.losses.make_loss`: ``"charbonnier"``,
        ``"shift_l1"``, ``"vgg+0.1*shift_l1"``, ...), ``steps``, ``batch``
        (pairs per step, per process), ``patch`` (crop size, a multiple of
        8), ``lr`` (None: :data:`~.config.DEFAULT_LR` of the phase),
        ``schedule`` (``"cosine"``, ``"step"``, ``"constant"``), ``device``
        (``"auto"``/``"cpu"``/``"cuda:1"``...), ``amp`` (mixed precision:
        True: float16 on CUDA, bfloat16 on CPUs that compute it natively;
        ``"bfloat16"``; False: float32), ``grad_clip`` (gradient-norm
        clipping, None: off), ``seed`` (of everything random).
        ``out``: the folder for checkpoints and logs (None: write nothing);
        ``resume=True`` continues from ``out/resume.pt`` if it exists, a path
        continues from that file (or that folder's ``resume.pt``).  With
        ``resume=None`` (the default) a folder that already holds a run is an
        error (its checkpoints are never overwritten by accident);
        ``resume=False`` starts afresh in it.  :class:`~.config.TrainConfig`
        lists every option with its default.
    cancel, callback
        A :class:`~.events.CancelToken` (or callable / ``threading.Event``):
        when set the run stops after the current step and writes
        ``last.pt``/``resume.pt`` for it; ``callback(event)`` receives the
        :mod:`~.events` (on rank 0 only in multi-process runs).

    Raises
    ------
    TrainingError
        Bad data or arguments, a loss that stays NaN, a resume file that does
        not fit; :class:`~napari_lfdeblur.errors.OutOfMemoryError` when the
        device runs out of memory.
    """
    return Trainer(data, _config(config, options, "train()"), val=val, model=model, cancel=cancel,
                   callback=callback).run()


@partial(with_config_keywords, phase=FINETUNE_PHASE)
def finetune(data, *, model, val=None, config: TrainConfig | None = None,
             cancel: CancelToken | Callable[[], bool] | None = None,
             callback: Callable[[TrainingEvent], Any] | None = None, **options) -> TrainResult:
    """Fine-tune a trained network (phase 2 of the paper): :func:`train` with
    ``model`` required (a checkpoint path, e.g. a phase-1 ``best.pt``, or a
    DRBNet) and the feature phase (:data:`~.config.FINETUNE_PHASE`) by
    default: loss ``"vgg"`` (``"shift_l1"`` needs no download), learning rate
    ``DEFAULT_LR["feature"]``.  A ``config`` given is run as it is: make it
    with ``phase="feature"``.  The checkpoints' training summary keeps the
    previous run's summary under ``previous``."""
    if model is None:
        raise TrainingError("finetune needs the network to start from: model=PATH (a checkpoint) or a DRBNet")
    if config is None:
        options.setdefault("phase", FINETUNE_PHASE)
    return train(data, model=model, val=val, config=config, cancel=cancel, callback=callback, **options)

