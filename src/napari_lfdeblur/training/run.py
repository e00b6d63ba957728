"""What one training run is made of: the parts its setup built (:class:`RunSetup`) and how far it has got
(:class:`Progress`, what a resume file restores)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..network.drbnet import DRBNet
from .ddp import DistContext

__all__ = ["Progress", "RunSetup", "describe"]


def describe(ds) -> str:
    """A dataset in words (its ``describe()``, else its type and length); "" for None."""
    if ds is None:
        return ""
    return ds.describe() if hasattr(ds, "describe") else f"{type(ds).__name__} ({len(ds)} items)"


@dataclass
class RunSetup:
    """What a run needs before its first step (see :func:`~.setup.build_run`).

    ``net``: the network trained (unwrapped; what validation and checkpoints use); ``model``: the same network
    as the training steps call it (wrapped in DistributedDataParallel in multi-process runs, compiled with
    ``compile``); ``previous``: the summary of the network's earlier training; ``data``/``val``: the training
    and validation datasets; ``data_record``: which data the run trains on, as the resume file records it;
    ``amp_dtype``: the autocast type (None: float32); ``scaler``: the float16 gradient scaler (or None);
    ``resume_state``/``resumed_from``: the resume file's contents and path (None for a fresh run).
    """

    ctx: DistContext
    device: torch.device
    net: DRBNet
    model: nn.Module
    previous: dict
    data: Any
    val: Any
    data_record: dict
    loss_fn: nn.Module
    opt: torch.optim.Optimizer
    amp_dtype: torch.dtype | None
    scaler: Any
    resume_state: dict | None = None
    resumed_from: str | None = None

    @property
    def amp_name(self) -> str:
        """The arithmetic of the forward pass: ``"off"`` (float32), ``"bfloat16"`` or ``"float16"``."""
        return str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"


@dataclass
class Progress:
    """How far a run has got: what a resume file restores.

    ``step``: completed steps; ``history``: one row per step; ``validations``: one row per validation;
    ``best``: the best validation PSNR and its step; ``input_scores``: the blurry input's PSNR/SSIM (scored
    once); ``elapsed_before``: training seconds of the sessions before this one; ``amp_before``: (the arithmetic
    of those sessions' steps, their count); ``started``: this session's clock at its first step.
    """

    step: int = 0
    history: list[dict] = field(default_factory=list)
    validations: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"psnr": -math.inf, "step": 0})
    input_scores: dict | None = None
    elapsed_before: float = 0.0
    amp_before: tuple[str, int] = ("off", 0)
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        """Training seconds of all the run's sessions together."""
        return self.elapsed_before + (time.perf_counter() - self.started)
