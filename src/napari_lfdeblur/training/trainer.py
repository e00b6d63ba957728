"""The trainer: :func:`train` and :func:`finetune` (what the Train widget and the ``lfdeblur train`` /
``finetune`` commands call), and :class:`Trainer`, the loop: a step, validation when due, a checkpoint when due.

The parts of a run are the modules beside this one (docs/architecture.md lists them): :mod:`.setup` before the
first step, :mod:`.checkpointing`, :mod:`.schedule` and :mod:`.validation`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._sigterm import sigterm_as_interrupt
from ..cancel import cancel_check, check_function
from ..errors import OutOfMemoryError, TrainingError
from ..inference.runtime import from_network, to_network
from . import ddp as _ddp
from .checkpointing import RESUME_FORMAT, RunFiles, restore_progress, run_folder
from .config import FINETUNE_PHASE, TrainConfig, with_config_keywords
from .events import CancelToken, Error, Finished, Started, Step, Stopped, TrainingEvent
from .run import Progress, RunSetup, describe
from .schedule import lr_at
from .setup import build_run, data_loader, start_processes
from .validation import validate

__all__ = ["RESUME_FORMAT", "TrainResult", "Trainer", "finetune", "lr_at", "train"]

_DEFAULTS = TrainConfig()


# --------------------------------------------------------------------------- result
@dataclass
class TrainResult:
    """What :func:`train` returns.

    ``model``: the trained network (unwrapped, eval mode, on the training device, output clipping on);
    ``out``/``last``/``best``/``resume``/``log``: the files written (None when not written); ``history``: one
    dict per step (``step``, ``loss``, ``lr``, ``seconds``, the loss terms); ``validations``: one dict per
    validation (``step``, ``psnr``, ``ssim``, ``input_psnr``, ``input_ssim``); ``steps``: completed steps;
    ``total``: the planned number; ``cancelled``: whether it stopped on request (cancel token, Ctrl-C);
    ``seconds``: training time of all sessions together; ``summary``: the training summary stored in the
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


class Trainer:
    """One training run, with the arguments of :func:`train`, which is ``Trainer(...).run()``; ``self.config`` is
    the run's configuration.  ``run()`` sets the run up (``self.setup``, a :class:`~.run.RunSetup`;
    ``self.progress``, a :class:`~.run.Progress`; ``self.loader``; ``self.files``, its
    :class:`~.checkpointing.RunFiles`), then runs its steps."""

    setup: RunSetup
    progress: Progress
    files: RunFiles
    loader: Iterable

    def __init__(self, data, config: TrainConfig | None = None, *, val=None, model=None, cancel=None,
                 callback: Callable[[TrainingEvent], Any] | None = None, **options):
        self.config = _config(config, options, "Trainer()")
        check_function(callback, "callback", "callback(event)", where="train/finetune", error=TrainingError)
        self.out = run_folder(self.config.out)
        self.stop_requested = cancel_check(cancel, where="train")
        self.callback = callback
        self.ctx = _ddp.DistContext()  # the processes' context, once the run has started
        self._data, self._val, self._model = data, val, model
        self._bad = 0  # steps in a row whose loss was NaN or infinite

    # ---------------------------------------------------------------- events
    def _emit(self, event: TrainingEvent) -> None:
        if self.callback is not None and self.ctx.main:
            self.callback(event)

    # ---------------------------------------------------------------- the run
    def run(self) -> TrainResult:
        # SIGTERM (kill, a batch system's time limit) saves and stops as Ctrl-C does, instead of losing the steps
        # since the last checkpoint
        with sigterm_as_interrupt():
            self._start()
            try:
                stopped = self._steps()
            except KeyboardInterrupt:
                self._interrupted()
                raise
            except BaseException as e:
                err = self._failed(e)
                if err is not e:
                    raise err from e
                raise
            return self._finish(stopped)

    def _start(self) -> None:
        """Set the run up (an :class:`~.events.Error` event when that fails); the clock starts after."""
        try:
            device, self.ctx = start_processes(self.config)
            self.setup = build_run(self.config, self.ctx, device, data=self._data, val=self._val, model=self._model,
                                   out=self.out)
            self.progress = restore_progress(self.setup, self.config)
            self.loader = data_loader(self.setup.data, self.config, device, self.ctx, self.progress.step)
        except BaseException as e:
            self._emit(Error(0, message=str(e), exception=e))
            _ddp.teardown(self.ctx)
            raise
        self.progress.started = time.perf_counter()
        self.files = RunFiles(self.out, self.config, self.setup, self.progress, self._emit)
        self.setup.net.clip_output = False  # clamping would cut the gradient of out-of-range pixels

    def _steps(self) -> bool:
        """The steps from where the run is to its end, validation and checkpoints when due; returns whether
        the run stopped on request."""
        config, p, ctx = self.config, self.progress, self.ctx
        validating = self.setup.val is not None
        self._announce()
        avg, batches = None, iter(self.loader)
        while p.step < config.steps:
            if self.stop_requested() and not ctx.enabled:
                return self._stopped()
            t = time.perf_counter()
            blur, sharp = next(batches)
            value, lr = self._train_step(blur, sharp, p.step)
            value, stop = ctx.reduce_step(value, self.stop_requested())
            p.step += 1
            avg = self._record_step(value, lr, time.perf_counter() - t, avg)
            last = p.step == config.steps
            if validating and (p.step % config.validation_interval() == 0 or last) and not self._validate():
                return self._stopped()
            self._save_when_due(last)
            if stop and ctx.enabled:  # every process stops after the same step
                return self._stopped()
        return False

    def _stopped(self) -> bool:
        self.files.checkpoint()
        return True

    # ---------------------------------------------------------------- one step
    def _train_step(self, blur, sharp, i: int) -> tuple[float, float]:
        """Step ``i`` (0-based) on a batch: returns (its loss, its learning rate)."""
        c, s = self.config, self.setup
        lr = lr_at(i, c.steps, c.learning_rate, c.schedule, warmup=c.warmup, min_lr=c.min_lr,
                   milestones=c.milestones, gamma=c.gamma)
        for g in s.opt.param_groups:
            g["lr"] = lr
        # pinned CPU batches (on CUDA): the copy overlaps the work already queued on the device
        blur = blur.to(s.device, non_blocking=True)
        sharp = sharp.to(s.device, non_blocking=True)
        if c.channels_last:
            blur = blur.contiguous(memory_format=torch.channels_last)
        s.opt.zero_grad(set_to_none=True)
        loss = self._loss(blur, sharp)
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
        self._update(loss)
        return value, lr

    def _loss(self, blur: torch.Tensor, sharp: torch.Tensor) -> torch.Tensor:
        """The forward pass (in the run's arithmetic) and the loss of its output and intermediate estimates."""
        s, how = self.setup, self.config.compile
        ctx = (torch.autocast(device_type=s.device.type, dtype=s.amp_dtype) if s.amp_dtype is not None
               else contextlib.nullcontext())
        with ctx:
            try:
                out, inter = s.model(to_network(blur), return_intermediate=True)
            except Exception as e:
                if how and type(e).__module__.startswith("torch._dynamo"):
                    raise TrainingError(f"torch.compile ({how!r}) failed: {e}. Train with compile=False, or "
                                        "install what it needs (a C++ compiler for inductor on the CPU, triton on "
                                        "a GPU)") from e
                raise
        pred = from_network(out.float(), clip=False)
        inter = [from_network(e.float(), clip=False) for e in inter]
        return s.loss_fn(pred, sharp, inter)

    def _update(self, loss: torch.Tensor) -> None:
        """Backward, gradient clipping (``grad_clip``) and the optimizer's step (through the scaler in float16)."""
        s, clip = self.setup, self.config.grad_clip
        if s.scaler is not None:
            s.scaler.scale(loss).backward()
            if clip:
                s.scaler.unscale_(s.opt)
                nn.utils.clip_grad_norm_(s.net.parameters(), clip)
            s.scaler.step(s.opt)
            s.scaler.update()
        else:
            loss.backward()
            if clip:
                nn.utils.clip_grad_norm_(s.net.parameters(), clip)
            s.opt.step()

    # ---------------------------------------------------------------- around the steps
    def _announce(self) -> None:
        s, c = self.setup, self.config
        self._emit(Started(self.progress.step, total=c.steps, phase=c.phase, loss=str(s.loss_fn),
                           device=str(s.device), model=dict(s.net.config), n_train=len(s.data),
                           n_val=len(s.val) if s.val is not None else 0, data=c.description or describe(s.data),
                           out=str(self.out) if self.out else None, resumed_from=s.resumed_from,
                           world_size=self.ctx.world, amp=s.amp_name))
        if self.out is not None and self.ctx.main:
            self.out.mkdir(parents=True, exist_ok=True)

    def _record_step(self, value: float, lr: float, dt: float, avg: float | None) -> float:
        """The step's row in the history and its :class:`~.events.Step` event; returns the smoothed seconds
        per step."""
        p, total = self.progress, self.config.steps
        avg = dt if avg is None else 0.9 * avg + 0.1 * dt
        row = {"step": p.step, "loss": value, "lr": lr, "seconds": dt}
        terms = getattr(self.setup.loss_fn, "terms", {}) or {}
        if len(terms) > 1:
            row.update({k: float(v) for k, v in terms.items()})
        p.history.append(row)
        self._emit(Step(p.step, total=total, loss=value, lr=lr, seconds_per_step=avg, eta=avg * (total - p.step),
                        terms=dict(terms)))
        return avg

    def _validate(self) -> bool:
        """Validate on rank 0 (the others wait); a better PSNR than before writes ``best.pt``.  Returns False
        when stopped midway."""
        ok = True
        if self.ctx.main:
            event = validate(self.setup, self.config, self.progress, self.stop_requested)
            ok = event is not None
            if event is not None:
                self._emit(event)
                if event.best:
                    self.files.save_models(("best",))
        self.ctx.barrier()
        return ok

    def _save_when_due(self, last: bool) -> None:
        """A checkpoint at the end, every ``checkpoint_every`` steps and every ``checkpoint_minutes``; else the
        log every ``log_every`` steps."""
        c, step = self.config, self.progress.step
        due = step % c.checkpoint_interval(validating=self.setup.val is not None) == 0 or (
            c.checkpoint_minutes and time.perf_counter() - self.files.saved_at >= 60 * c.checkpoint_minutes)
        if last or due:
            self.files.checkpoint()
        elif step % c.log_every == 0:
            self.files.write_log()

    def _interrupted(self) -> None:
        """Ctrl-C: keep what was done (the last completed step), then stop."""
        with contextlib.suppress(Exception):
            self.files.checkpoint()
        self._emit(Stopped(self.progress.step, seconds=self.progress.elapsed(),
                           checkpoint=str(self.out / "last.pt") if self.out else None))
        self._finish_model()
        _ddp.teardown(self.ctx)

    def _failed(self, e: BaseException) -> BaseException:
        """The error to raise for ``e`` (out of memory: one that says what to do), after its
        :class:`~.events.Error` event."""
        err = e
        if isinstance(e, getattr(torch, "OutOfMemoryError", MemoryError)) or (
                type(e) is RuntimeError and "out of memory" in str(e).lower()):
            c = self.config
            err = OutOfMemoryError(
                f"{self.setup.device} ran out of memory at step {self.progress.step + 1} (batch {c.batch}, patch "
                f"{c.patch}, {self.setup.net.config}): lower batch or patch, or use a lighter network (model=16)"
            )
        self._emit(Error(self.progress.step, message=str(err), exception=err))
        self._finish_model()
        _ddp.teardown(self.ctx)
        return err

    def _finish(self, stopped: bool) -> TrainResult:
        self._finish_model()
        result = self._result(stopped)
        if not stopped:
            self.files.write_summary(result.summary)
            self._emit(Finished(result.steps, seconds=result.seconds, result=result))
        else:
            self._emit(Stopped(result.steps, seconds=result.seconds,
                               checkpoint=str(result.last) if result.last else None, result=result))
        _ddp.teardown(self.ctx)
        return result

    def _result(self, stopped: bool) -> TrainResult:
        def written(name: str) -> Path | None:
            p = self.out / name if self.out is not None else None
            return p if p is not None and p.is_file() else None

        return TrainResult(
            model=self.setup.net, out=self.out, last=written("last.pt"), best=written("best.pt"),
            resume=written("resume.pt"), log=written("log.csv"), history=self.progress.history,
            validations=self.progress.validations, steps=self.progress.step, total=self.config.steps,
            cancelled=stopped, seconds=self.progress.elapsed(), summary=self.files.summary(),
        )

    def _finish_model(self) -> None:
        self.setup.net.clip_output = True
        self.setup.net.eval()


# --------------------------------------------------------------------------- public functions
@with_config_keywords
def train(data, *, val=None, model=None, config: TrainConfig | None = None,
          cancel: CancelToken | Callable[[], bool] | None = None,
          callback: Callable[[TrainingEvent], Any] | None = None, **options) -> TrainResult:
    """Train a DRBNet on (blurred, sharp) pairs; returns a :class:`TrainResult`.

    Parameters
    ----------
    data
        Training pairs: anything :func:`~.datasets.open_pairs` takes (pair folder, light field,
        ``"synthetic"``, a list of these) or a :class:`~.datasets.PairDataset`; random ``patch`` crops with flips
        and rotations are drawn from it.
    val
        Validation pairs: None (no validation), a fraction such as 0.15 (of the data's scenes, held out with
        :func:`~.datasets.split`), a list of scene names to hold out, or separate data (path, dataset, ...).
        Scored on centre crops of ``val_patch`` px (None: whole images) every ``val_every`` steps (None: a tenth
        of the run) and at the end; the blurry input is scored once for reference.
    model
        None (the paper's DRBNet, base 32), a base width (16, 8, ...: the paper's network, lighter), a config
        dict such as ``{"base": 8, "input_detail": True}`` (a network that starts as the identity: what short or
        CPU trainings want, and what the CLI and the Train widget build), a checkpoint path or a DRBNet to
        continue from.
    config, **options
        The run's options: a :class:`~.config.TrainConfig` (None: its defaults; it says what every option
        takes) and any of its fields as keywords, which change it.  The main ones: ``phase`` (``"pixel"``:
        default loss ``"l1"`` with multi-scale supervision; ``"feature"``: default loss ``"vgg"``), ``loss``
        (see :func:`~.losses.make_loss`), ``steps``, ``batch`` (pairs per step, per process), ``patch`` (crop
        size, a multiple of 8), ``lr`` (None: :data:`~.config.DEFAULT_LR` of the phase), ``device``, ``amp``
        (mixed precision), ``seed``.  ``out``: the folder for checkpoints and logs (None: write nothing);
        ``resume=True`` continues from ``out/resume.pt`` if it exists, a path from that file (or that folder's
        ``resume.pt``).  With ``resume=None`` (the default) a folder that already holds a run is an error (its
        checkpoints are never overwritten by accident); ``resume=False`` starts afresh in it.
    cancel, callback
        A :class:`~.events.CancelToken` (or callable / ``threading.Event``): when set the run stops after the
        current step, writes ``last.pt`` and ``resume.pt`` for it and sends :class:`~.events.Stopped`;
        ``callback(event)`` receives the :mod:`~.events` (rank 0 only).

    Raises
    ------
    TrainingError
        Bad data or arguments, a loss that stays NaN, an unfit resume file;
        :class:`~napari_lfdeblur.OutOfMemoryError` when memory runs out.
    """
    return Trainer(data, _config(config, options, "train()"), val=val, model=model, cancel=cancel,
                   callback=callback).run()


@partial(with_config_keywords, phase=FINETUNE_PHASE)
def finetune(data, *, model, val=None, config: TrainConfig | None = None,
             cancel: CancelToken | Callable[[], bool] | None = None,
             callback: Callable[[TrainingEvent], Any] | None = None, **options) -> TrainResult:
    """Fine-tune a trained network (phase 2 of the paper): :func:`train` with ``model`` required (a checkpoint
    path, e.g. a phase-1 ``best.pt``, or a DRBNet) and the feature phase (:data:`~.config.FINETUNE_PHASE`) by
    default: loss ``"vgg"`` (``"shift_l1"`` needs no download), learning rate ``DEFAULT_LR["feature"]``.  A
    ``config`` given is run as it is: make it with ``phase="feature"``.  The checkpoints' training summary keeps
    the previous run's summary under ``previous``."""
    if model is None:
        raise TrainingError("finetune needs the network to start from: model=PATH (a checkpoint) or a DRBNet")
    if config is None:
        options.setdefault("phase", FINETUNE_PHASE)
    return train(data, model=model, val=val, config=config, cancel=cancel, callback=callback, **options)

