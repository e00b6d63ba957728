"""Everything a run needs before its first step (:func:`build_run`): device and processes, the network, the data,
the loss, the optimizer, the arithmetic (mixed precision: docs/performance.md); and the data loader
(:func:`data_loader`): CPU batches, a function of the seed and the step alone, on every device.

``channels_last`` and ``compile`` apply to the network of the training steps; validation and checkpoints use the
plain network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import ModelError, TrainingError
from ..network.drbnet import DRBNet
from ..network.precision import autocast_dtype
from ..network.record import record_of
from . import ddp as _ddp
from .checkpointing import load_resume, resolve_resume, seed_everything
from .config import TrainConfig
from .datasets import PairDataset, open_pairs
from .datasets.base import fit_patch
from .losses import make_loss
from .run import RunSetup, describe
from .schedule import StepBatches, collate
from .validation import validation_data

__all__ = ["build_model", "build_run", "compile_model", "data_loader", "data_record", "open_training_data",
           "start_processes"]


def build_model(model) -> tuple[DRBNet, dict]:
    """(DRBNet, summary of its previous training) from what the caller gave."""
    from ..network.checkpoint import load_model

    previous: dict = {}
    net: nn.Module
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


def data_record(given, train) -> dict:
    """Which data a run trains on, as its resume file records them: what the caller gave and the part left for
    training (without validation and too small pairs), each described (``data``, ``train``) and identified
    (``data_key``, ``train_key``: see :meth:`~.datasets.PairDataset.fingerprint`)."""
    def key(ds):
        return ds.fingerprint() if hasattr(ds, "fingerprint") else describe(ds)

    return {"data": describe(given), "data_key": key(given), "train": describe(train), "train_key": key(train)}


def open_training_data(data, patch: int):
    """The training dataset as given, with random ``patch`` crops (every pair, whatever its size)."""
    ds: Any
    if isinstance(data, PairDataset):
        ds = data if (data.patch == patch and data.crop == "random") else data.options(
            patch=patch, crop="random", augment=True)
    elif isinstance(data, torch.utils.data.Dataset):
        ds = data
    else:
        ds = open_pairs(data, patch=patch)
    if len(ds) == 0:
        raise TrainingError("the training data is empty")
    return ds


def start_processes(config: TrainConfig) -> tuple[torch.device, _ddp.DistContext]:
    """The training device and the multi-process context (torch's CPU threads set first)."""
    if config.threads:
        torch.set_num_threads(int(config.threads))
    dev = config.device if isinstance(config.device, torch.device) else resolve_device(config.device)
    ctx = _ddp.setup(config.distributed, dev)
    if ctx.enabled and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
    return dev, ctx


def _network(model, resume_state: dict | None, resume_path, device: torch.device,
             channels_last: bool) -> tuple[DRBNet, dict]:
    """(the network in training mode on ``device``, its previous training), from ``model`` or the resume file."""
    if resume_state is not None and model is None:
        model = dict(resume_state["config"])
    net, previous = build_model(model)
    if resume_state is not None:
        if dict(resume_state["config"]) != dict(net.config):
            raise TrainingError(
                f"the resume file {resume_path} is for {resume_state['config']}, not {net.config}; "
                "pass the same model or no model"
            )
        net.load_state_dict(resume_state["model"])
        previous = dict(resume_state.get("previous") or previous)
    net.to(device)
    if channels_last:
        net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    net.train()
    return net, previous


def _arithmetic(amp, device: torch.device):
    """(the autocast type or None, the float16 gradient scaler or None)."""
    try:
        amp_dtype = autocast_dtype(amp, device)
    except ModelError as e:
        raise TrainingError(str(e)) from None
    return amp_dtype, torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None


def _step_model(net: nn.Module, ctx: _ddp.DistContext, device: torch.device, how) -> nn.Module:
    """The network as the training steps call it: wrapped for multi-process runs, compiled with ``how``."""
    model = net
    if ctx.enabled:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(net, device_ids=ids)
    return compile_model(model, how) if how else model


def build_run(config: TrainConfig, ctx: _ddp.DistContext, device: torch.device, *, data, val, model,
              out: Path | None) -> RunSetup:
    """Everything a run needs before its first step (the progress of a resumed run excepted: see
    :func:`~.checkpointing.restore_progress`), in the order that keeps a resumed run exact: the seed, then the
    network, the data, the loss, the optimizer."""
    resume_path = resolve_resume(config.resume, out)
    resume_state = load_resume(resume_path) if resume_path is not None else None
    seed_everything(config.seed)
    net, previous = _network(model, resume_state, resume_path, device, config.channels_last)
    given = open_training_data(data, config.patch)
    # the warnings of fit_patch point at train(): above are build_run, Trainer._start and Trainer.run
    train, held = validation_data(fit_patch(given, config.patch, stacklevel=5), val, patch=config.patch,
                                  val_patch=config.val_patch, val_seed=config.val_seed)
    loss_fn = make_loss(config.loss, config.phase, max_shift=config.max_shift, multiscale=config.multiscale,
                        vgg_weights=config.vgg_weights, vgg_download=config.vgg_download).to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.learning_rate, betas=(0.9, 0.999), weight_decay=config.weight_decay)
    amp_dtype, scaler = _arithmetic(config.amp, device)
    return RunSetup(
        ctx=ctx, device=device, net=net, model=_step_model(net, ctx, device, config.compile), previous=previous,
        # what the run trains on, recorded in resume.pt: resuming with other data is refused (restore_progress)
        data=train, val=held, data_record=data_record(given, train), loss_fn=loss_fn, opt=opt, amp_dtype=amp_dtype,
        scaler=scaler, resume_state=resume_state, resumed_from=str(resume_path) if resume_path is not None else None,
    )


def data_loader(data, config: TrainConfig, device: torch.device, ctx: _ddp.DistContext, start: int):
    """The batches of steps ``start .. config.steps - 1`` of this process: CPU tensors, pinned for CUDA."""
    sampler = StepBatches(len(data), config.batch, config.seed, start, config.steps, ctx.rank, ctx.world,
                          keyed=isinstance(data, PairDataset))
    return torch.utils.data.DataLoader(data, batch_sampler=sampler, num_workers=config.num_workers,
                                       collate_fn=collate, pin_memory=device.type == "cuda")


def compile_model(model: nn.Module, how) -> nn.Module:
    """``torch.compile(model)``: ``how`` True for the default backend (inductor), or a backend's name."""
    return torch.compile(model, backend="inductor" if how is True else str(how))  # type: ignore[return-value]
