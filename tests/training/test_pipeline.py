"""The one data pipeline (a data loader of CPU batches, a function of the seed and the step, the same on every
device) and the options of the training step's network (channels_last, compile)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_lfdeblur.training import TrainConfig, open_pairs, train
from napari_lfdeblur.training.ddp import DistContext
from napari_lfdeblur.training.setup import data_loader

TINY = {"model": {"base": 4, "input_detail": True}, "batch": 2, "patch": 32, "device": "cpu", "seed": 3,
        "amp": False}
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def _batches(ds, config, start=0, device=CPU):
    return list(data_loader(ds, config, device, DistContext(), start))


def test_the_same_seed_gives_the_same_cpu_batches_whatever_the_workers(tiny_pair_folder):
    ds = open_pairs(tiny_pair_folder, patch=16)
    config = TrainConfig(batch=2, patch=16, steps=3, seed=5)
    here = _batches(ds, config)
    assert len(here) == 3
    for blur, sharp in here:
        assert blur.shape == sharp.shape == (2, 3, 16, 16) and blur.dtype == torch.float32
        assert blur.device.type == sharp.device.type == "cpu"  # the trainer moves them to the training device
    again = _batches(open_pairs(tiny_pair_folder, patch=16), config)
    workers = _batches(ds, config.replace(num_workers=2))
    for other in (again, workers):
        assert all(torch.equal(a, b) for x, y in zip(here, other) for a, b in zip(x, y))
    # a resumed run gets the batches of its remaining steps; another seed, other crops
    assert all(torch.equal(a, b) for x, y in zip(here[1:], _batches(ds, config, start=1)) for a, b in zip(x, y))
    other_seed = _batches(ds, config.replace(seed=6))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(here, other_seed))


def test_a_cuda_run_pins_its_batches_and_copies_them_without_blocking(tiny_pair_folder, monkeypatch):
    ds = open_pairs(tiny_pair_folder, patch=32)
    config = TrainConfig(batch=2, patch=32, steps=1)
    assert data_loader(ds, config, torch.device("cuda"), DistContext(), 0).pin_memory
    assert not data_loader(ds, config, CPU, DistContext(), 0).pin_memory
    real_to, copies = torch.Tensor.to, []

    def to(self, *args, **kwargs):
        if tuple(self.shape) == (2, 3, 32, 32):  # a batch of pairs, not a weight
            copies.append(kwargs.get("non_blocking", False))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    train(ds, steps=1, **TINY)
    assert copies == [True, True]  # blurred and sharp, each copied once, overlapping the device's work


def test_channels_last_trains_the_same_run(tiny_pair_folder):
    plain = train(tiny_pair_folder, steps=3, **TINY)
    cl = train(tiny_pair_folder, steps=3, channels_last=True, **TINY)
    assert cl.losses == pytest.approx(plain.losses, rel=1e-4, abs=1e-6)
    weight = next(cl.model.parameters())
    assert weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last)


def test_compile_runs_a_training_step(tiny_pair_folder):
    # the "eager" backend traces the network with TorchDynamo without generating code, so the test needs no C++
    # compiler and takes seconds; compile=True (inductor) is the same path with code generation, which compiled
    # for 6.5 minutes on the shared 2-core CPU
    r = train(tiny_pair_folder, steps=1, compile="eager", **TINY)
    assert r.steps == 1 and np.isfinite(r.history[0]["loss"])
