"""Out of memory on the device: deblur retries with smaller tiles and says so."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_lfdeblur.errors import OutOfMemoryError
from napari_lfdeblur.inference import deblur as deblur_module
from napari_lfdeblur.inference import runtime
from napari_lfdeblur.network.drbnet import DRBNet


def test_out_of_memory_retries_with_smaller_tiles(monkeypatch):
    torch.manual_seed(0)
    net = DRBNet(base=4).eval()
    real = runtime.run_torch
    sizes = []

    def small_device(tiles, how):
        sizes.append(tiles.shape[1:3])
        if max(tiles.shape[1:3]) > 200:  # pretend the GPU only fits 200-px tiles
            raise OutOfMemoryError("CUDA out of memory (simulated)")
        return real(tiles, how)

    monkeypatch.setattr(runtime, "run_torch", small_device)
    img = np.random.default_rng(0).random((300, 300, 3)).astype(np.float32)
    with pytest.warns(RuntimeWarning, match="retrying with 128x128-pixel tiles"):
        out = deblur_module.deblur(img, model=net, device="cpu", tile=512, overlap=16)
    assert out.shape == img.shape and np.isfinite(out).all()
    assert max(sizes[0]) == 300 and max(sizes[-1]) <= 200


def test_out_of_memory_at_the_smallest_tile_is_raised(monkeypatch):
    net = DRBNet(base=4).eval()

    def no_memory(tiles, how):
        raise OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(runtime, "run_torch", no_memory)
    with pytest.raises(OutOfMemoryError):
        with pytest.warns(RuntimeWarning):
            deblur_module.deblur(np.zeros((300, 300, 3), np.float32), model=net, device="cpu", overlap=16)
