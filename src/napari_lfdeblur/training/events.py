"""Typed progress events of a training run, and the token that cancels one.

A training run (:func:`~napari_lfdeblur.training.trainer.train`) reports what it does by calling
``callback(event)`` with one of the dataclasses below, in this order::

    Started
    (Step | Validation | CheckpointSaved)*
    Finished | Stopped | Error

``Error`` is sent just before the exception is raised again.  Every event has ``kind`` (its lower-case class
name, to dispatch on without importing the classes) and ``step`` (the last *completed* optimisation step, 0
before the first one).  Events hold plain Python values (and, for validation samples, small uint8 numpy images),
so that a Qt worker may pass them across threads as they are.

:class:`CancelToken` is thread-safe: a napari "Stop" button calls ``token.cancel()`` from the GUI thread; the
training loop checks it between steps and between validation images, stops after the step in progress and writes
a checkpoint of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..cancel import CancelToken  # re-exported: training's Stop is the project's one cancel token

__all__ = [
    "CancelToken",
    "CheckpointSaved",
    "Error",
    "Finished",
    "Started",
    "Step",
    "Stopped",
    "TrainingEvent",
    "Validation",
]


@dataclass
class TrainingEvent:
    """Base class of all training events."""

    step: int

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()


@dataclass
class Started(TrainingEvent):
    """The run is set up: ``step`` is where it starts (> 0 when resumed)."""

    total: int = 0
    phase: str = "pixel"
    loss: str = ""
    device: str = "cpu"
    model: dict = field(default_factory=dict)
    n_train: int = 0
    n_val: int = 0
    data: str = ""
    out: str | None = None
    resumed_from: str | None = None
    world_size: int = 1
    #: the forward pass's arithmetic, "off" (float32), "bfloat16" or "float16" mixed precision
    amp: str = "off"

    @property
    def runs_on(self) -> str:
        """The device, with the mixed precision when it is on, e.g. ``"cpu (bfloat16 mixed precision)"``."""
        return self.device if self.amp == "off" else f"{self.device} ({self.amp} mixed precision)"


@dataclass
class Step(TrainingEvent):
    """One optimisation step done: ``loss`` is the total loss of this step's batch (averaged over ranks in
    multi-process training), ``terms`` its parts by name, ``lr`` the learning rate used, ``seconds_per_step`` a
    running average over recent steps, ``eta`` the estimated seconds left (training steps only, validation not
    included)."""

    total: int = 0
    loss: float = float("nan")
    lr: float = 0.0
    seconds_per_step: float = 0.0
    eta: float = 0.0
    terms: dict = field(default_factory=dict)


@dataclass
class Validation(TrainingEvent):
    """Validation scores at ``step``: the network's PSNR (dB) / SSIM on the validation pairs, and those of the
    blurry input itself (computed once).  ``samples``: up to ``val_samples`` tuples ``(name, blurred, output,
    sharp)`` of (H, W, 3) uint8 images, when asked for; ``best``: whether this is the best PSNR so far (a
    ``best.pt`` checkpoint follows when writing files)."""

    psnr: float = float("nan")
    ssim: float = float("nan")
    input_psnr: float = float("nan")
    input_ssim: float = float("nan")
    n_images: int = 0
    seconds: float = 0.0
    best: bool = False
    samples: list | None = None


@dataclass
class CheckpointSaved(TrainingEvent):
    """A file was written: ``which`` is ``"last"``, ``"best"`` or ``"resume"``."""

    path: str = ""
    which: str = "last"


@dataclass
class Finished(TrainingEvent):
    """All steps are done; ``result`` is the :class:`TrainResult`."""

    seconds: float = 0.0
    result: Any = None


@dataclass
class Stopped(TrainingEvent):
    """The run stopped on request (the cancel token, Ctrl-C, SIGTERM) after ``step``; ``checkpoint`` is the
    ``last.pt`` written for it (None when the run writes no files); ``result`` is the
    :class:`~napari_lfdeblur.training.TrainResult` (None after Ctrl-C, which is raised again)."""

    seconds: float = 0.0
    checkpoint: str | None = None
    result: Any = None


@dataclass
class Error(TrainingEvent):
    """The run failed; the exception is raised right after this event."""

    message: str = ""
    exception: BaseException | None = None
