"""The trainer: phase 1 (pixel loss on light-field pairs) and phase 2 (feature
loss on real two-shot pairs), with validation, checkpoints, exact resume,
cancellation, progress events and multi-process (torchrun) training.

:func:`train` and :func:`finetune` are the entry points (the napari widget
and the ``lfdeblur train`` / ``finetune`` commands call them)::

    from napari_lfdeblur.training import train, finetune, CancelToken
    r1 = train(["synthetic", "plants_lf_folder"], model=16, steps=6000, out="runs/p1")
    r2 = finetune("pairs/dpdd", model=r1.best or r1.last, loss="shift_l1", val=0.15, out="runs/p2")

A run is :class:`Trainer`: ``run()`` is the loop (a step, validation when
due, a checkpoint when due) and :meth:`Trainer._train_step` one step; the
rest lives by concern:

- :mod:`.setup`: device, network, data, loss, optimizer, arithmetic
  (mixed precision) and data loader, before the first step;
- :mod:`.schedule`: the learning rate and the batch of each step, functions
  of the step alone;
- :mod:`.validation`: the validation data and the validation pass;
- :mod:`.checkpointing`: what a run writes (``last.pt``, ``best.pt``,
  ``resume.pt``, ``log.csv``, ``summary.json``) and how it resumes exactly.

Gradients are clipped to ``grad_clip`` (global norm; None to turn off).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._signals import sigterm_as_interrupt
from ..cancel import cancel_check, check_function
from ..errors import OutOfMemoryError, TrainingError
from ..io.atomic import check_writable_file
from . import ddp as _ddp
from .checkpointing import RESUME_FORMAT, RunFiles
from .config import FINETUNE_PHASE, TrainConfig, with_config_keywords
from .events import Cancelled, CancelToken, Error, Finished, Started, Step, TrainingEvent
from .schedule import lr_at
from .setup import RunSetup
from .validation import RunValidation

__all__ = ["RESUME_FORMAT", "TrainResult", "Trainer", "finetune", "lr_at", "train"]

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


# --------------------------------------------------------------------------- trainer
def _config(config, options: dict, where: str) -> TrainConfig:
    """``config`` (``TrainConfig()`` when None) with the keyword ``options`` (its fields) changed."""
    if config is None:
        config = _DEFAULTS
    elif not isinstance(config, TrainConfig):
        raise TrainingError(f"config must be a TrainConfig, got {type(config).__name__} (TrainConfig.from_dict "
                            "makes one from a dict such as a run summary's 'config')")
    TrainConfig._check_names(options, where)
    return config.replace(**options)


class Trainer(RunSetup, RunFiles, RunValidation):
    """One training run; :func:`train` is ``Trainer(...).run()``.  The
    arguments are those of :func:`train`: the data, the validation data, the
    network, the session's cancel token and callback, and a
    :class:`TrainConfig` (``config``) with any of its fields changed by
    keywords.  ``self.config`` is the run's configuration.

    Preparing the run (:class:`~.setup.RunSetup`), its files and resume
    (:class:`~.checkpointing.RunFiles`) and validation
    (:class:`~.validation.RunValidation`) are the parts it is made of."""

    def __init__(self, data, config: TrainConfig | None = None, *, val=None, model=None, cancel=None,
                 callback: Callable[[TrainingEvent], Any] | None = None, **options):
        config = _config(config, options, "Trainer()")
        check_function(callback, "callback", "callback(event)", where="train/finetune", error=TrainingError)
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

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._t0)

    # ---------------------------------------------------------------- the loop
    def run(self) -> TrainResult:
        # SIGTERM (kill, a batch system's time limit) saves and stops as Ctrl-C does, instead of losing the steps
        # since the last checkpoint
        with sigterm_as_interrupt():
            return self._run()

    def _run(self) -> TrainResult:
        self._start()
        cancelled = False
        try:
            self._announce()
            avg, batches = None, iter(self.loader)
            while self.step < self.steps:
                if self.should_stop() and not self.ctx.enabled:
                    cancelled = True
                    break
                t = time.perf_counter()
                blur, sharp = next(batches)
                value, lr = self._train_step(blur, sharp, self.step)
                value, stop = self.ctx.reduce_step(value, self.should_stop())
                self.step += 1
                avg = self._record_step(value, lr, time.perf_counter() - t, avg)
                last = self.step == self.steps
                if self.val is not None and (self.step % self.val_every == 0 or last) and not self._validate():
                    cancelled = True
                    break
                self._save_when_due(last)
                if stop and self.ctx.enabled:
                    cancelled = True
                    break
            if cancelled:
                self._checkpoint()
        except KeyboardInterrupt:
            self._interrupted()
            raise
        except BaseException as e:
            err = self._failed(e)
            if err is not e:
                raise err from e
            raise
        return self._finish(cancelled)

    def _train_step(self, blur, sharp, i: int) -> tuple[float, dict]:
        lr = lr_at(i, self.steps, self.lr, self.schedule, warmup=self.warmup, min_lr=self.min_lr,
                   milestones=self.milestones, gamma=self.gamma)
        for g in self.opt.param_groups:
            g["lr"] = lr
        blur = blur.to(self.device, non_blocking=True)
        sharp = sharp.to(self.device, non_blocking=True)
        if self.config.channels_last:
            blur = blur.contiguous(memory_format=torch.channels_last)
        self.opt.zero_grad(set_to_none=True)
        ctx = (torch.autocast(device_type=self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
               else contextlib.nullcontext())
        with ctx:
            try:
                out, inter = self.model(blur * 2 - 1, return_intermediate=True)
            except Exception as e:
                if self.config.compile and type(e).__module__.startswith("torch._dynamo"):
                    raise TrainingError(f"torch.compile ({self.config.compile!r}) failed: {e}. Train with "
                                        "compile=False, or install what it needs (a C++ compiler for inductor on "
                                        "the CPU, triton on a GPU)") from e
                raise
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

    # ---------------------------------------------------------------- around the loop
    def _start(self) -> None:
        """Set the run up (an :class:`~.events.Error` event when that fails); the clock starts after."""
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
        self.net.clip_output = False  # clamping would cut the gradient of out-of-range pixels

    def _announce(self) -> None:
        self._emit(Started(self.step, total=self.steps, phase=self.phase, loss=str(self.loss_fn),
                           device=str(self.device), model=dict(self.net.config), n_train=len(self.data),
                           n_val=len(self.val) if self.val is not None else 0,
                           data=self.description or self._describe(self.source or self.data),
                           out=str(self.out) if self.out else None, resumed_from=self.resumed_from,
                           world_size=self.ctx.world, amp=self._amp_now()))
        if self.out is not None and self.ctx.main:
            self.out.mkdir(parents=True, exist_ok=True)

    def _record_step(self, value: float, lr: float, dt: float, avg: float | None) -> float:
        """The step's row in the history and its :class:`~.events.Step` event; returns the smoothed seconds
        per step."""
        avg = dt if avg is None else 0.9 * avg + 0.1 * dt
        row = {"step": self.step, "loss": value, "lr": lr, "seconds": dt}
        terms = getattr(self.loss_fn, "terms", {}) or {}
        if len(terms) > 1:
            row.update({k: float(v) for k, v in terms.items()})
        self.history.append(row)
        self._emit(Step(self.step, total=self.steps, loss=value, lr=lr, seconds_per_step=avg,
                        eta=avg * (self.steps - self.step), terms=dict(terms)))
        return avg

    def _save_when_due(self, last: bool) -> None:
        """A checkpoint at the end, every ``ckpt_every`` steps and every ``checkpoint_minutes``; else the log
        every ``log_every`` steps."""
        due = self.step % self.ckpt_every == 0 or (
            self.checkpoint_minutes and time.perf_counter() - self._last_ckpt_time >= 60 * self.checkpoint_minutes)
        if last or due:
            self._checkpoint()
        elif self.step % self.log_every == 0:
            self._write_log()

    def _interrupted(self) -> None:
        """Ctrl-C: keep what was done (the last completed step), then stop."""
        with contextlib.suppress(Exception):
            self._checkpoint()
        self._emit(Cancelled(self.step, seconds=self.elapsed(),
                             checkpoint=str(self.out / "last.pt") if self.out else None))
        self._finish_model()
        _ddp.teardown(self.ctx)

    def _failed(self, e: BaseException) -> BaseException:
        """The error to raise for ``e`` (out of memory: one that says what to do), after its
        :class:`~.events.Error` event."""
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
        return err

    def _finish(self, cancelled: bool) -> TrainResult:
        self._finish_model()
        result = self._result(cancelled)
        if self.out is not None and self.ctx.main and not cancelled:
            self._write_summary(result.summary)
        if cancelled:
            self._emit(Cancelled(self.step, seconds=result.seconds, checkpoint=str(result.last) if result.last
                                 else None, result=result))
        else:
            self._emit(Finished(self.step, seconds=result.seconds, result=result))
        _ddp.teardown(self.ctx)
        return result

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

