"""A training run's options (:class:`TrainConfig`): every one, its default and its check, in one place.

The ``lfdeblur train`` / ``finetune`` commands, the Train widget and ``scripts/train_default.py`` read their
defaults and help texts from here.  What a run trains on (the data, ``val``, ``model``, the cancel token and
callback) stays outside the config.  This module imports neither torch nor numpy: the command-line parser and
the widget read the defaults without loading them.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import numbers
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import OptionError, TrainingError

__all__ = [
    "AMP_CHOICES",
    "DEFAULT_LOSS",
    "DEFAULT_LR",
    "DEFAULT_MULTISCALE",
    "FINETUNE_PHASE",
    "INTERACTIVE_STEPS",
    "MAX_BATCH",
    "MAX_PATCH",
    "MAX_SEED",
    "MAX_STEPS",
    "MAX_STEP_PIXELS",
    "MAX_VAL_PATCH",
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


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_torch(v, kind: str) -> bool:
    """Whether ``v`` is a ``torch.<kind>`` (``"device"``, ``"nn.Module"``), without importing torch: a torch
    object can only exist once torch is imported."""
    torch = sys.modules.get("torch")
    if torch is None:
        return False
    cls: Any = torch
    for part in kind.split("."):
        cls = getattr(cls, part, None)
    return isinstance(cls, type) and isinstance(v, cls)


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


# ---------------------------------------------------------------- the checks of the options
#: the most steps of a run (and of warmup, val_every, checkpoint_every, log_every): 100 million steps, weeks of
#: a GPU at its fastest, are more than any run needs; beyond, a run that "starts" never ends
MAX_STEPS = 100_000_000
#: the largest training crop: one 2048-px crop is 4 Mpx, at which a single pair already fills much of a GPU
MAX_PATCH = 2048
#: the largest validation crop (validation keeps no gradients: it affords twice the side); None scores whole images
MAX_VAL_PATCH = 4096
#: the most pairs in one step (or validation batch)
MAX_BATCH = 1024
#: batch x patch² of one step: 64 Mpx (batch 16 at patch 2048, 1024 at 256) is about what the largest GPUs hold
#: for the base-32 network's training step; beyond, the pairs alone take gigabytes before the first step
MAX_STEP_PIXELS = 2**26
#: seeds seed numpy's 32-bit generators: larger ones would give the same data order as their low 32 bits
MAX_SEED = 2**32 - 1

# the words resolve_device takes; whether the device is there is checked when the run starts (with torch)
_DEVICE_WORDS = re.compile(r"auto|gpu|(?:cpu|cuda|mps|xpu)(?::\d+)?")


class _Refused(ValueError):
    """A value an option does not take (turned into the option's TrainingError by :class:`_Check`)."""


@dataclass(frozen=True)
class _Check:
    """How one option is checked: ``accept(value)`` returns the value to keep, in the option's one type (so that
    a config equals the one its dict makes), or raises :class:`_Refused`; ``allowed`` says, in words, what the
    option takes.  A refused value is one TrainingError: the option, the value, what it takes, its default."""

    allowed: str
    accept: Callable[[Any], Any]

    def __call__(self, name: str, value, default):
        try:
            return self.accept(value)
        except (_Refused, TypeError, ValueError, OverflowError):  # OverflowError: math.isfinite(10**400)
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            raise TrainingError(f"{name} must be {self.allowed}, got {shown}; give such a value, or leave {name} "
                                f"out: its default is {default!r}") from None


def _option(default, check: _Check):
    """A TrainConfig field: its default and its check, side by side."""
    return field(default=default, metadata={"check": check})


def _refuse():
    raise _Refused


def _whole(lo: int, hi: int, allowed: str, *, none: bool = False, multiple: int = 1) -> _Check:
    """An integer in [lo, hi] (a multiple of ``multiple``); None too where ``none``.  Floats and booleans are
    refused: 2.5 patches or True steps are mistakes, not values."""

    def accept(v):
        if v is None and none:
            return None
        if not (_is_int(v) and lo <= v <= hi and v % multiple == 0):
            _refuse()
        return int(v)

    return _Check(allowed, accept)


def _real(lo: float, hi: float, allowed: str, *, above: bool = False, none: bool = False,
          zero_is_off: bool = False) -> _Check:
    """A finite number in [lo, hi] ((lo, hi] where ``above``); None too where ``none``, and 0 as None (off)
    where ``zero_is_off``: the run reads 0 as off (``if grad_clip:``), the config says so one way."""

    def accept(v):
        if v is None and none:
            return None
        if not (_is_real(v) and math.isfinite(v)):
            _refuse()
        if zero_is_off and v == 0:
            return None
        if not (lo < v <= hi if above else lo <= v <= hi):
            _refuse()
        return float(v)

    return _Check(allowed, accept)


def _one_of(*choices, allowed: str = "") -> _Check:
    """One of ``choices`` (strings and True/False, compared by type too: 1 is not True)."""

    def accept(v):
        if not any(type(v) is type(c) and v == c for c in choices):
            _refuse()
        return v

    return _Check(allowed or f"one of {choices}", accept)


def _flag(allowed: str = "True or False", *, none: bool = False) -> _Check:
    return _one_of(True, False, *((None,) if none else ()), allowed=allowed)


def _path(allowed: str, *, none: bool = True, to_path: bool = False) -> _Check:
    """A file or folder: text or an ``os.PathLike`` that names something (not ""); None too where ``none``."""

    def accept(v):
        if v is None and none:
            return None
        if not (isinstance(v, (str, os.PathLike)) and str(os.fspath(v)).strip()):
            _refuse()
        return Path(v) if to_path else v

    return _Check(allowed, accept)


def _check_text(v):
    if not (v is None or isinstance(v, str)):
        _refuse()
    return v


def _check_loss(v):
    # the terms of a spec are checked by make_loss (with torch); here its kind: a spec that says something
    if v is None or _is_torch(v, "nn.Module") or (isinstance(v, str) and v.strip()):
        return v
    _refuse()


def _check_milestones(v):
    # fractions of the run (lr_at multiplies by gamma at step round(m * steps)); increasing, or a milestone
    # would apply gamma twice; text is refused, not read letter by letter
    if isinstance(v, (str, bytes, Mapping)):
        _refuse()
    ms = tuple(v)
    if not all(_is_real(m) and 0 < m < 1 for m in ms) or any(b <= a for a, b in zip(ms, ms[1:])):
        _refuse()
    return tuple(float(m) for m in ms)


def _check_device(v):
    if v is None or _is_torch(v, "device") or (isinstance(v, str) and _DEVICE_WORDS.fullmatch(v.strip().lower())):
        return v
    _refuse()


def _check_amp(v):
    # the command line's words "auto"/"off" are True/False; the others are kept in lower case
    if isinstance(v, bool):
        return v
    if not (isinstance(v, str) and v.strip().lower() in AMP_CHOICES):
        _refuse()
    word = v.strip().lower()
    return {"auto": True, "off": False}.get(word, word)


def _check_compile(v):
    if isinstance(v, bool) or (isinstance(v, str) and v.strip()):
        return v
    _refuse()


def _check_resume(v):
    if v is None or isinstance(v, bool) or (isinstance(v, (str, os.PathLike)) and str(os.fspath(v)).strip()):
        return v
    _refuse()


@dataclass(frozen=True)
class TrainConfig:
    """The options of a training run, with their defaults; checked when made.

    However a config is made (``TrainConfig(...)``, :meth:`replace`, :meth:`from_dict`, the keywords of
    ``train()`` and ``finetune()``, the command line, the Train widget), a value an option does not take raises
    one :class:`~napari_lfdeblur.errors.TrainingError` that names the option, the value given, what the option
    takes and its default, before any data is read.

    Optimisation
        ``phase``: ``"pixel"`` (phase 1: light-field pairs) or ``"feature"`` (phase 2: real pairs).  ``loss``: a
        :func:`~.losses.make_loss` spec (``"l1"``, ``"charbonnier"``, ``"shift_l1"``, ``"vgg"``,
        ``"vgg+0.1*shift_l1"``, ...); None takes :data:`DEFAULT_LOSS` of the phase.  ``steps``: optimisation
        steps; ``batch``: pairs per step (per process); ``patch``: crop size, a multiple of 8 from 16 to
        ``MAX_PATCH`` (and ``batch * patch²`` at most ``MAX_STEP_PIXELS``).  ``lr``: initial learning rate; None
        takes :data:`DEFAULT_LR` of the phase (see :attr:`learning_rate`).  ``schedule``: ``"cosine"`` (from
        ``lr`` down to ``min_lr * lr``, ``min_lr`` a fraction, after ``warmup`` linear steps), ``"step"``
        (multiplied by ``gamma`` at each of ``milestones``, fractions of the run) or ``"constant"``.
        ``weight_decay`` of Adam; ``grad_clip``: global gradient-norm clipping (None or 0: off).

    Arithmetic and processes
        ``device``: ``"auto"``, ``"cpu"``, ``"cuda:1"``, ...; ``amp``: mixed precision (True/``"auto"``: float16
        on CUDA, bfloat16 on CPUs that compute it natively; ``"bfloat16"``; False/``"off"``: float32); ``seed``
        of everything random; ``num_workers``: data-loader processes (0: the data is prepared in the training
        process); ``threads``: torch CPU threads (None: torch's choice); ``distributed``: ``"auto"`` runs DDP
        under torchrun (see the performance guide, *Several GPUs*), False never.  ``channels_last``: the
        network's weights and inputs in channels-last memory order (faster convolutions on tensor-core GPUs).
        ``compile``: ``torch.compile`` the training step's network: True (inductor, which needs a C++ compiler on
        the CPU) or a backend name; False off.

    Validation
        ``val_every``: steps between validations (None: a tenth of the run, see :meth:`validation_interval`);
        ``val_patch``: centre crops of this size are scored (None: whole images); ``val_batch``;
        ``val_samples``: images attached to the Validation events; ``val_seed``: of the held-out split when
        ``val`` is a fraction.

    Files
        ``out``: the run folder (None: write nothing); ``resume``: True continues from ``out/resume.pt`` when
        there is one, a path continues from that file, False starts afresh in a folder that holds a run, None
        (the default) refuses such a folder.  ``checkpoint_every``: steps between checkpoints (None: as
        validation, see :meth:`checkpoint_interval`); ``checkpoint_minutes``: also after this much time (None:
        off); ``log_every``: rewrite ``log.csv`` every N steps; ``description`` of the data, for the model card.

    Losses
        ``max_shift`` of the shift-tolerant loss; ``multiscale``: supervise the 1/2..1/8 estimates too (None:
        :data:`DEFAULT_MULTISCALE` of the phase); ``vgg_weights``: path of ``vgg19-dcbb9e9d.pth``;
        ``vgg_download``: allow downloading it.
    """

    # optimisation
    phase: str = _option("pixel", _one_of(*PHASES))
    loss: Any = _option(None, _Check("None (the phase's default), a loss such as 'l1', 'shift_l1' or "
                                     "'vgg+0.1*shift_l1', or a torch module", _check_loss))
    steps: int = _option(5000, _whole(1, MAX_STEPS, f"a positive integer, at most {MAX_STEPS:,}"))
    batch: int = _option(4, _whole(1, MAX_BATCH, f"a positive integer, at most {MAX_BATCH} (pairs per step)"))
    patch: int = _option(128, _whole(16, MAX_PATCH, f"a multiple of 8 from 16 to {MAX_PATCH} (the crop size in "
                                                    "pixels; the network works at 1/8 scale)", multiple=8))
    lr: float | None = _option(None, _real(0, 1, "a positive number, at most 1, or None (the phase's default)",
                                           above=True, none=True))
    schedule: str = _option("cosine", _one_of(*SCHEDULES))
    warmup: int = _option(0, _whole(0, MAX_STEPS, f"a whole number of steps from 0 (no warmup) to {MAX_STEPS:,}"))
    min_lr: float = _option(0.01, _real(0, 1, "a number from 0 to 1 (the cosine schedule ends at min_lr * lr)"))
    milestones: tuple = _option((0.5, 0.75), _Check(
        "a list of increasing fractions of the run, each between 0 and 1, such as [0.5, 0.75]",
        _check_milestones))
    gamma: float = _option(0.5, _real(0, 1, "a number above 0 and at most 1 (the step schedule multiplies the "
                                            "learning rate by it at each milestone)", above=True))
    weight_decay: float = _option(0.0, _real(0, 1, "a number from 0 (none) to 1"))
    grad_clip: float | None = _option(1.0, _real(0, math.inf, "a positive number (the largest global gradient "
                                                              "norm), or None or 0 to clip nothing",
                                                 above=True, none=True, zero_is_off=True))
    # arithmetic and processes
    device: Any = _option("auto", _Check("'auto', 'gpu', 'cpu', 'cuda', 'cuda:N', 'mps', 'xpu', 'xpu:N' or a "
                                         "torch.device", _check_device))
    amp: bool | str = _option(True, _Check("True/'auto', False/'off', 'bfloat16' or 'float16'", _check_amp))
    seed: int = _option(0, _whole(0, MAX_SEED, f"a whole number from 0 to {MAX_SEED}"))
    num_workers: int = _option(0, _whole(0, 256, "0 (data prepared in this process) or a number of data-loader "
                                                 "processes up to 256"))
    threads: int | None = _option(None, _whole(1, 1024, "a positive number of torch CPU threads, at most 1024, or "
                                                        "None (torch's choice)", none=True))
    distributed: bool | str = _option("auto", _one_of("auto", True, False, allowed="'auto' (DDP when run under "
                                                                                    "torchrun), True or False"))
    channels_last: bool = _option(False, _flag())
    compile: bool | str = _option(False, _Check("True (torch.compile with inductor), False, or the name of a "
                                                "torch.compile backend such as 'aot_eager'", _check_compile))
    # validation
    val_every: int | None = _option(None, _whole(1, MAX_STEPS, "None (a tenth of the run) or a positive number "
                                                               "of steps", none=True))
    val_patch: int | None = _option(256, _whole(16, MAX_VAL_PATCH, f"None (whole images) or a crop size from 16 "
                                                                   f"to {MAX_VAL_PATCH} pixels", none=True))
    val_batch: int = _option(1, _whole(1, MAX_BATCH, f"a positive integer, at most {MAX_BATCH} (validation "
                                                     "images per batch)"))
    val_samples: int = _option(0, _whole(0, 64, "a whole number from 0 to 64 (validation images attached to the "
                                                "Validation events)"))
    val_seed: int = _option(0, _whole(0, MAX_SEED, f"a whole number from 0 to {MAX_SEED}"))
    # files
    out: Any = _option(None, _path("None (write nothing) or a folder", to_path=True))
    resume: Any = _option(None, _Check("None (refuse a folder that holds a run), True (continue it), False "
                                       "(start afresh) or the path of a resume file or its run folder", _check_resume))
    checkpoint_every: int | None = _option(None, _whole(1, MAX_STEPS, "None (as validation) or a positive number "
                                                                      "of steps", none=True))
    checkpoint_minutes: float | None = _option(10.0, _real(0, math.inf, "a positive number of minutes, or None "
                                                                        "or 0 for none on a timer",
                                                           above=True, none=True, zero_is_off=True))
    log_every: int = _option(25, _whole(1, MAX_STEPS, "a positive number of steps"))
    description: str | None = _option(None, _Check("None or a text", _check_text))
    # losses
    max_shift: int = _option(3, _whole(0, 32, "a whole number of pixels from 0 to 32 (the shift-tolerant loss "
                                              "searches (2 * max_shift + 1)² shifts)"))
    multiscale: bool | None = _option(None, _flag("None (the phase's default), True or False", none=True))
    vgg_weights: Any = _option(None, _path("None (torch's hub cache) or the path of vgg19-dcbb9e9d.pth"))
    vgg_download: bool = _option(False, _flag())

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: the checks' values (in each option's one type) are set here
        for f in fields(self):
            set_(self, f.name, f.metadata["check"](f.name, getattr(self, f.name), f.default))
        # what no single option decides: one step's pairs in memory
        if self.batch * self.patch**2 > MAX_STEP_PIXELS:
            raise TrainingError(
                f"batch * patch² must be at most {MAX_STEP_PIXELS:,} pixels per step (e.g. batch 16 at patch "
                f"2048, batch 1024 at patch 256), got batch={self.batch}, patch={self.patch}: "
                f"{self.batch * self.patch**2:,} pixels; lower batch or patch")

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
                raise OptionError(f"{where} got an unknown training option {name!r}{hint}; the options are the "
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
    """Give ``func``, which takes the TrainConfig options as ``**options``, a signature that names them (for
    ``help()``, IDEs and the API reference); ``defaults`` overrides some (``finetune``'s phase)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
    taken = {p.name for p in params}
    config = TrainConfig()
    params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY,
                                 default=defaults.get(f.name, getattr(config, f.name)))
               for f in fields(TrainConfig) if f.name not in taken]
    func.__signature__ = sig.replace(parameters=params)
    return func
