"""Everything a run needs before its first step: device and processes, the network, the data, the loss,
the optimizer, the arithmetic, the data loader.

Mixed precision (``amp=True``, see :func:`~..network.devices.autocast_dtype`):
``torch.autocast`` in float16 with a ``GradScaler`` on CUDA; bfloat16 (no
scaler) on a CPU with native bfloat16 (AVX512-BF16 or AMX), where a step
is 1.2x (width 8) to 1.7x (width 32) faster than float32; float32
elsewhere (MPS, older CPUs).
``amp="bfloat16"`` asks for bfloat16 on CUDA or any CPU, ``amp=False`` for
float32.  Validation always runs in float32.

Data: a ``torch.utils.data.DataLoader`` over the dataset (``num_workers``
processes), or, with ``data_on_device`` (on a GPU by default), the pairs made
on the training device step by step (:mod:`.ondevice`).  ``channels_last``
and ``compile`` (``torch.compile``) apply to the network of the training
steps; validation and checkpoints use the plain network.
"""

from __future__ import annotations

import os
import warnings

import torch
from torch import nn

from ..errors import ModelError, TrainingError
from ..network.record import record_of
from . import ddp as _ddp
from .checkpointing import load_resume, resolve_resume, seed_everything
from .datasets import PairDataset, open_pairs
from .datasets.base import fit_patch
from .losses import make_loss
from .ondevice import DeviceBatches, device_source
from .schedule import StepBatches, collate
from .validation import validation_data

__all__ = ["RunSetup", "build_model", "compile_model", "data_record", "open_training_data"]


def build_model(model) -> tuple[nn.Module, dict]:
    """(DRBNet, summary of its previous training) from what the caller gave."""
    from ..network.checkpoint import load_model
    from ..network.drbnet import DRBNet

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


def data_record(given, train) -> dict:
    """Which data a run trains on, as its resume file records them: what the caller gave and the part left for
    training (without validation and too small pairs), each described (``data``, ``train``) and identified
    (``data_key``, ``train_key``: see :meth:`~.datasets.PairDataset.fingerprint`)."""
    def about(ds):
        return ds.describe() if hasattr(ds, "describe") else f"{type(ds).__name__} ({len(ds)} items)"

    def key(ds):
        return ds.fingerprint() if hasattr(ds, "fingerprint") else about(ds)

    return {"data": about(given), "data_key": key(given), "train": about(train), "train_key": key(train)}


def open_training_data(data, patch: int):
    """The training dataset as given, with random ``patch`` crops (every pair, whatever its size)."""
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


class RunSetup:
    """The part of :class:`~.trainer.Trainer` that prepares a run from its options (``_setup``): it sets
    ``ctx``, ``device``, ``resume_state``, ``resumed_from``, ``net``, ``previous``, ``data``, ``val``,
    ``loss_fn``, ``opt``, ``amp_dtype``, ``scaler``, ``val_every``, ``ckpt_every``, ``model`` (the network,
    wrapped for multi-process runs and compiled with ``compile``), ``source`` (the on-device pair source, or None),
    ``sampler`` and ``loader``, ``data_record`` (which data it trains on), and restores a resumed run's progress
    (:meth:`~.checkpointing.RunFiles._restore`)."""

    def _setup(self):
        from ..network.devices import autocast_dtype, resolve_device

        if self.threads:
            torch.set_num_threads(int(self.threads))
        dev = resolve_device(self.device_arg) if not isinstance(self.device_arg, torch.device) else self.device_arg
        self.ctx = _ddp.setup(self.distributed, dev)
        if self.ctx.enabled and dev.type == "cuda":
            dev = torch.device("cuda", self.ctx.local_rank)
        self.device = dev

        resume_path = resolve_resume(self.resume_arg, self.out)
        self.resume_state = load_resume(resume_path) if resume_path is not None else None
        self.resumed_from = str(resume_path) if resume_path is not None else None

        seed_everything(self.seed)
        model_arg = self._model_arg
        if self.resume_state is not None and model_arg is None:
            model_arg = dict(self.resume_state["config"])
        self.net, self.previous = build_model(model_arg)
        if self.resume_state is not None:
            if dict(self.resume_state["config"]) != dict(self.net.config):
                raise TrainingError(
                    f"the resume file {resume_path} is for {self.resume_state['config']}, not {self.net.config}; "
                    "pass the same model or no model"
                )
            self.net.load_state_dict(self.resume_state["model"])
            self.previous = dict(self.resume_state.get("previous") or self.previous)
        self.net.to(self.device)
        if self.config.channels_last:
            self.net.to(memory_format=torch.channels_last)
        self.net.train()

        given = open_training_data(self._data_arg, self.patch)
        self.data, self.val = validation_data(fit_patch(given, self.patch), self._val_arg,
                                              patch=self.patch, val_patch=self.val_patch, val_seed=self.val_seed)
        # what the run trains on, recorded in resume.pt: resuming with other data is refused (see _restore)
        self.data_record = data_record(given, self.data)
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

        self._restore()

        self.model = self.net
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        if self.config.compile:
            self.model = compile_model(self.model, self.config.compile)
        self.source = self._device_source()
        if self.source is not None:  # the pairs are made on the device, step by step: no data loader
            self.sampler = None
            self.loader = DeviceBatches(self.source, self.batch, self.seed, self.step, self.steps, self.ctx.rank)
            return
        keyed = isinstance(self.data, PairDataset)
        self.sampler = StepBatches(n, self.batch, self.seed, self.step, self.steps, self.ctx.rank, self.ctx.world,
                                   keyed=keyed)
        self.loader = torch.utils.data.DataLoader(
            self.data, batch_sampler=self.sampler, num_workers=self.num_workers, collate_fn=collate,
            pin_memory=self.device.type == "cuda",
        )

    def _device_source(self):
        """The run's on-device pair source (``data_on_device``), or None for the data loader."""
        mode = self.config.data_on_device
        if mode is False or (mode == "auto" and self.device.type != "cuda"):
            return None
        try:
            return device_source(self.data, patch=self.patch, device=self.device)
        except TrainingError as e:
            if mode is True:
                raise
            warnings.warn(f"the training pairs are prepared by the data loader, not on {self.device}: {e}",
                          stacklevel=2)
            return None


def compile_model(model: nn.Module, how) -> nn.Module:
    """``torch.compile(model)``: ``how`` True for the default backend (inductor), or a backend's name."""
    if not hasattr(torch, "compile"):
        raise TrainingError("compile needs torch.compile (torch 2.0 or later); train with compile=False")
    return torch.compile(model, backend="inductor" if how is True else str(how))
