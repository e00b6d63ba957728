"""Tiles sized from a memory budget: the whole image when it fits, else the plan computing the fewest pixels;
the sizes of lazy chunks and of a viewer's levels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_lfdeblur.inference import tile_plan
from napari_lfdeblur.inference.deblur import deblur
from napari_lfdeblur.inference.tile_plan import (
    DEFAULT_OVERLAP,
    bytes_per_pixel,
    computed_pixels,
    lazy_chunks,
    memory_budget,
    plan_tile,
)
from napari_lfdeblur.inference.tiling import windows
from napari_lfdeblur.network.drbnet import DRBNet

HALO = DEFAULT_OVERLAP


def _largest(shape, tile) -> int:
    """Pixels of the largest tile the network is given."""
    return (max(b - a for a, b, _, _ in windows(shape[0], tile[0], HALO))
            * max(b - a for a, b, _, _ in windows(shape[1], tile[1], HALO)))


def test_whole_image_when_it_fits():
    assert plan_tile((1024, 1024), 400, 512 * 2**20, HALO) == (1024, 1024)
    assert plan_tile((300, 3000), 400, 512 * 2**20, HALO) == (300, 3000)


@pytest.mark.parametrize("shape", [(1024, 1024), (3000, 4000), (777, 2049)])
def test_tiles_fit_the_budget_and_compute_fewer_pixels_than_512_squares(shape):
    per_px, budget = 900.0, 256 * 2**20
    th, tw = plan_tile(shape, per_px, budget, HALO)
    assert _largest(shape, (th, tw)) * per_px <= budget
    assert th % 8 == 0 or th == shape[0]
    planned = computed_pixels(shape, (th, tw), HALO)
    assert planned >= shape[0] * shape[1]
    assert planned <= computed_pixels(shape, (512, 512), HALO)


def test_a_1_megapixel_image_in_two_tiles_under_half_a_gigabyte():
    """The case the issue measures: 512-pixel squares compute 1.5x the pixels; the plan about 1.1x."""
    th, tw = plan_tile((1024, 1024), 900, 512 * 2**20, HALO)
    assert _largest((1024, 1024), (th, tw)) * 900 <= 512 * 2**20
    assert computed_pixels((1024, 1024), (th, tw), HALO) / 1024**2 < 1.2
    assert computed_pixels((1024, 1024), (512, 512), HALO) / 1024**2 > 1.4


def test_budget_from_the_environment(monkeypatch):
    monkeypatch.setattr(tile_plan, "_available_bytes", lambda: 64 * 2**30)
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", "100")
    assert memory_budget() == 100 * 2**20
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", " 0.5 ")
    assert memory_budget() == 0.5 * 2**20  # what was asked for, not rounded up behind the user's back
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", "")
    assert memory_budget() == tile_plan.DEFAULT_BUDGET_MB * 2**20
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", "100")
    monkeypatch.setattr(tile_plan, "_available_bytes", lambda: 400 * 2**20)
    assert memory_budget() == 100 * 2**20  # at most a quarter of what is free


@pytest.mark.parametrize("value", ["lots", "abc", "512MB", "0", "-5", "nan", "inf"])
def test_a_budget_that_is_no_positive_number_is_an_error_naming_the_variable(monkeypatch, value):
    from napari_lfdeblur.errors import DeblurInputError

    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", value)
    with pytest.raises(DeblurInputError, match=rf"\$LFDEBLUR_TILE_MEMORY_MB is '{value}': .*positive number of MiB"):
        memory_budget()


def test_narrower_networks_need_less_memory_per_pixel():
    assert bytes_per_pixel(16, "torch", "bfloat16") < bytes_per_pixel(32, "torch", "bfloat16")
    assert bytes_per_pixel(32, "torch", "bfloat16") < bytes_per_pixel(32, "torch", "float32")


def test_deblur_on_the_cpu_runs_a_fitting_image_whole_and_a_big_one_in_planned_tiles(monkeypatch, network_calls):
    torch.manual_seed(0)
    net = DRBNet(base=4).eval()
    img = np.random.default_rng(0).random((400, 520, 3)).astype(np.float32)
    shapes = network_calls
    whole = deblur(img, model=net, device="cpu", dtype="float32")
    assert shapes == [(400, 520)]  # the old default cut it into 512-pixel tiles: 4 calls
    shapes.clear()
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", "8")
    tiled = deblur(img, model=net, device="cpu", dtype="float32")
    assert len(shapes) > 1
    per_px = bytes_per_pixel(4, "torch", "float32")
    assert all(h * w * per_px <= 8 * 2**20 for h, w in shapes)
    assert np.abs(tiled - whole).max() * 255 <= 1.0  # tiles with 48 px of context match the whole image


def test_lazy_chunks_are_the_images_own_on_the_8_px_grid_and_never_thinner_than_the_halo():
    assert lazy_chunks(3000, 512, None, HALO) == (512,) * 5 + (440,)  # the input's chunks, 256-4096 px
    assert lazy_chunks(3000, 100, None, HALO) == (1024, 1024, 952)  # tiny input chunks: 1024
    assert lazy_chunks(3000, 9000, 500, HALO) == (496,) * 5 + (520,)  # asked for: on the grid, thin end joined
    assert lazy_chunks(300, 1024, None, HALO) == (300,)
