"""A training run's options: every one, its default and its check, in one place.

:class:`TrainConfig` is what :func:`~.trainer.train` and :func:`~.trainer.finetune`
run.  The ``lfdeblur train`` / ``finetune`` commands, the Train widget and
``scripts/train_default.py`` build one; their defaults and help texts are read
from here.  A run's summary (``summary.json``, the checkpoints' ``training``
dict) records it under ``"config"``, and :meth:`TrainConfig.from_dict` makes
it again from there::

    from napari_lfdeblur.training import TrainConfig, train
    cfg = TrainConfig(steps=2000, patch=192, out="runs/p1")
    r = train("synthetic", model=16, config=cfg)
    TrainConfig.from_dict(r.summary["config"]) == cfg   # True

What a run trains on stays outside the config: the data, the validation data
(``val``), the network to start from (``model``), and a session's cancel token
and callback.

This module imports neither torch nor numpy: the command-line parser and the
widget read the defaults without loading them.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import TrainingError

__all__ = [
    "AMP_CHOICES",
    "DEFAULT_LOSS",
    "DEFAULT_LR",
    "DEFAULT_MULTISCALE",
    "FINETUNE_PHASE",
    "INTERACTIVE_STEPS",
    "NEW_NETWORK_BASE",
    "PHASES",
    "SCHEDULES",
    "SUGGESTED_VAL_FRACTION",
    "TrainConfig",
    "amp_choice",
]

# ---------------------------------------------------------------- the choices, and what depends on the phase
PHASES = ("pixel", "feature")
SCHEDULES = ("cosine", "step", "constant")
#: the command line's words for ``amp`` (the API also takes True for "auto", False for "off")
AMP_CHOICES = ("auto", "off", "bfloat16", "float16")

#: the initial learning rate when ``lr`` is None: phase 1 trains from scratch, phase 2 fine-tunes
DEFAULT_LR = {"pixel": 2e-4, "feature": 5e-5}
#: the loss when ``loss`` is None (see :func:`~.losses.make_loss`)
DEFAULT_LOSS = {"pixel": "l1", "feature": "vgg"}
#: whether pixel-loss terms also supervise the 1/2..1/8 estimates when ``multiscale`` is None
DEFAULT_MULTISCALE = {"pixel": True, "feature": False}
#: the phase :func:`~.trainer.finetune` and ``lfdeblur finetune`` train (phase 2 of the paper)
FINETUNE_PHASE = "feature"

# ---------------------------------------------------------------- starting values of the front ends
#: the width of a new network in the CLI, the Train widget and ``scripts/train_default.py``
#: (``train(model=None)`` builds the paper's base-32 DRBNet)
NEW_NETWORK_BASE = 16
#: the Train widget starts from a short run (the API and the CLI default to ``TrainConfig().steps``)
INTERACTIVE_STEPS = 500
#: the share of the scenes held out for validation that the Train widget starts with and the help suggests
#: (the API and the CLI validate only when asked: ``val=None``)
SUGGESTED_VAL_FRACTION = 0.15


def amp_choice(amp) -> str:
    """The command line's word (one of :data:`AMP_CHOICES`) for an ``amp`` setting."""
    if amp is True:
        return "auto"
    if amp is False or amp is None:
        return "off"
    return str(amp)


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _plain(v):
    """A value as JSON and ``torch.load(weights_only=True)`` read it back: paths and devices as text."""
    if v is None or type(v) in (bool, int, float, str):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    return str(v)  # a torch.device, a loss module: what it is, in words


@dataclass(frozen=True)
class TrainConfig:
    """The options of a training run, with their defaults; checked when made.

    Optimisation
        ``phase``: ``"pixel"`` (phase 1: light-field pairs) or ``"feature"``
        (phase 2: real pairs).  ``loss``: a :func:`~.losses.make_loss` spec
        (``"l1"``, ``"charbonnier"``, ``"shift_l1"``, ``"vgg"``,
        ``"vgg+0.1*shift_l1"``, ...); None takes :data:`DEFAULT_LOSS` of the
        phase.  ``steps``: optimisation steps; ``batch``: pairs per step (per
        process); ``patch``: crop size, a multiple of 8.  ``lr``: initial
        learning rate; None takes :data:`DEFAULT_LR` of the phase (see
        :attr:`learning_rate`).  ``schedule``: ``"cosine"`` (from ``lr`` down
        to ``min_lr * lr`` after ``warmup`` linear steps), ``"step"``
        (multiplied by ``gamma`` at each of ``milestones``, fractions of the
        run) or ``"constant"``.  ``weight_decay`` of Adam; ``grad_clip``:
        global gradient-norm clipping (None: off).

    Arithmetic and processes
        ``device``: ``"auto"``, ``"cpu"``, ``"cuda:1"``, ...; ``amp``: mixed
        precision (True/``"auto"``: float16 on CUDA, bfloat16 on CPUs that
        compute it natively; ``"bfloat16"``; False/``"off"``: float32);
        ``seed`` of everything random; ``num_workers``: data-loader processes
        (0: the data is prepared in the training process); ``threads``: torch
        CPU threads (None: torch's choice); ``distributed``: ``"auto"`` runs
        DDP under torchrun (see :mod:`.ddp`), False never.
        ``data_on_device``: make the training pairs on the training device
        with torch (see :mod:`.ondevice`: procedural light fields rendered
        there, light fields refocused there, pair folders preloaded there)
        instead of in data-loader processes: True, False, or ``"auto"`` (the
        default: on a CUDA GPU when the data allows it; elsewhere the data
        loader, which is faster on a CPU, and the run stays as it was).
        ``channels_last``: the network's weights and inputs in channels-last
        memory order (faster convolutions on tensor-core GPUs).  ``compile``:
        ``torch.compile`` the training step's network: True (inductor, which
        needs a C++ compiler on the CPU) or a backend name; False off.

    Validation
        ``val_every``: steps between validations (None: a tenth of the run,
        see :meth:`validation_interval`); ``val_patch``: centre crops of this
        size are scored (None: whole images); ``val_batch``;
        ``val_samples``: images attached to the Validation events;
        ``val_seed``: of the held-out split when ``val`` is a fraction.

    Files
        ``out``: the run folder (None: write nothing); ``resume``: True
        continues from ``out/resume.pt`` when there is one, a path continues
        from that file, False starts afresh in a folder that holds a run, None
        (the default) refuses such a folder.  ``checkpoint_every``: steps
        between checkpoints (None: as validation, see
        :meth:`checkpoint_interval`); ``checkpoint_minutes``: also after this
        much time (None: off); ``log_every``: rewrite ``log.csv`` every N
        steps; ``description`` of the data, for the model card.

    Losses
        ``max_shift`` of the shift-tolerant loss; ``multiscale``: supervise
        the 1/2..1/8 estimates too (None: :data:`DEFAULT_MULTISCALE` of the
        phase); ``vgg_weights``: path of ``vgg19-dcbb9e9d.pth``;
        ``vgg_download``: allow downloading it.
    """

    # optimisation
    phase: str = "pixel"
    loss: Any = None
    steps: int = 5000
    batch: int = 4
    patch: int = 128
    lr: float | None = None
    schedule: str = "cosine"
    warmup: int = 0
    min_lr: float = 0.01
    milestones: tuple = (0.5, 0.75)
    gamma: float = 0.5
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    # arithmetic and processes
    device: Any = "auto"
    amp: bool | str = True
    seed: int = 0
    num_workers: int = 0
    threads: int | None = None
    distributed: bool | str = "auto"
    data_on_device: bool | str = "auto"
    channels_last: bool = False
    compile: bool | str = False
    # validation
    val_every: int | None = None
    val_patch: int | None = 256
    val_batch: int = 1
    val_samples: int = 0
    val_seed: int = 0
    # files
    out: Any = None
    resume: Any = None
    checkpoint_every: int | None = None
    checkpoint_minutes: float | None = 10.0
    log_every: int = 25
    description: str | None = None
    # losses
    max_shift: int = 3
    multiscale: bool | None = None
    vgg_weights: Any = None
    vgg_download: bool = False

    def __post_init__(self):
        if self.phase not in PHASES:
            raise TrainingError(f"phase must be one of {PHASES}, got {self.phase!r}")
        if self.schedule not in SCHEDULES:
            raise TrainingError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        for name in ("steps", "batch", "patch"):
            v = getattr(self, name)
            if not _is_int(v) or v < 1:
                raise TrainingError(f"{name} must be a positive integer, got {v!r}")
        if self.patch % 8:
            raise TrainingError(f"patch must be a multiple of 8 (the network works at 1/8 scale), got {self.patch}")
        lr = self.lr
        if lr is not None and not (isinstance(lr, numbers.Real) and not isinstance(lr, bool) and lr > 0
                                   and math.isfinite(lr)):
            raise TrainingError(f"lr must be a positive number, got {lr!r}")
        if not _is_int(self.num_workers) or self.num_workers < 0:
            raise TrainingError(f"num_workers must be 0 (data prepared in this process) or a positive number of "
                                f"data-loader processes, got {self.num_workers!r}")
        if self.threads is not None and (not _is_int(self.threads) or self.threads < 1):
            raise TrainingError(f"threads must be a positive number of torch CPU threads, got {self.threads!r}")
        if self.data_on_device not in (True, False, "auto"):
            raise TrainingError(f"data_on_device must be True, False or 'auto', got {self.data_on_device!r}")
        if not isinstance(self.channels_last, bool):
            raise TrainingError(f"channels_last must be True or False, got {self.channels_last!r}")
        if not (isinstance(self.compile, bool) or (isinstance(self.compile, str) and self.compile)):
            raise TrainingError(f"compile must be True (torch.compile with inductor), False, or the name of a "
                                f"torch.compile backend such as 'aot_eager', got {self.compile!r}")
        # one type per option, so that a config equals the one its dict makes
        set_ = object.__setattr__
        for name in ("steps", "batch", "patch", "warmup", "seed", "val_batch", "val_samples", "val_seed",
                     "num_workers"):
            set_(self, name, int(getattr(self, name)))
        for name in ("min_lr", "gamma", "weight_decay"):
            set_(self, name, float(getattr(self, name)))
        if self.lr is not None:
            set_(self, "lr", float(self.lr))
        if self.threads is not None:
            set_(self, "threads", int(self.threads))
        set_(self, "milestones", tuple(float(m) for m in self.milestones))
        set_(self, "log_every", max(1, int(self.log_every)))
        if self.out is not None:
            set_(self, "out", Path(self.out))
        if isinstance(self.amp, str) and self.amp.lower() in ("auto", "off"):  # the command line's words
            set_(self, "amp", self.amp.lower() == "auto")

    # ---------------------------------------------------------------- what the None defaults mean
    @property
    def learning_rate(self) -> float:
        """``lr``, or the phase's default (:data:`DEFAULT_LR`)."""
        return self.lr if self.lr is not None else DEFAULT_LR[self.phase]

    def validation_interval(self) -> int:
        """Steps between validations: ``val_every``, or a tenth of the run."""
        return int(self.val_every) if self.val_every else max(1, self.steps // 10)

    def checkpoint_interval(self, validating: bool) -> int:
        """Steps between checkpoints: ``checkpoint_every``, or the validation interval (a tenth of the run
        when there is no validation)."""
        if self.checkpoint_every:
            return int(self.checkpoint_every)
        return self.validation_interval() if validating else max(1, self.steps // 10)

    # ---------------------------------------------------------------- making and recording
    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The options' names."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def _check_names(cls, names, where: str) -> None:
        known = cls.names()
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(f"{where} got an unknown training option {name!r}{hint}; the options are the "
                                f"fields of TrainConfig: {', '.join(known)}")

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` (checked like a new config)."""
        self._check_names(changes, "TrainConfig.replace()")
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict:
        """Every option as plain Python values (paths as text, tuples as lists): what a run's summary records."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """The config a :meth:`to_dict` made (e.g. ``summary["config"]`` of a run); options it lacks keep their
        defaults."""
        if not isinstance(d, dict):
            raise TrainingError(f"a training config is read from a dict (a run summary's 'config'), got "
                                f"{type(d).__name__}")
        try:
            cls._check_names(d, "TrainConfig.from_dict()")
        except TypeError as e:  # a summary of another version, say: data, not a mistake in the calling code
            raise TrainingError(str(e)) from None
        return cls(**d)


def with_config_keywords(func, **defaults):
    """Give ``func``, which takes the TrainConfig options as ``**options``, a signature that names them.

    ``help()``, IDEs and the API reference then list every option with its default, read from
    :class:`TrainConfig` (not written a second time); ``defaults`` overrides some (``finetune``'s phase).
    """
    import dataclasses
    import inspect

    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    taken = {p.name for p in params}
    config = TrainConfig()
    params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                 default=defaults.get(f.name, getattr(config, f.name)))
               for f in dataclasses.fields(TrainConfig) if f.name not in taken]
    func.__signature__ = sig.replace(parameters=params)
    return func
