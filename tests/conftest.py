"""Shared fixtures: where the real data lives, and skips when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ../shared/data beside the project checkout; LFDEBLUR_SHARED_DATA overrides.
SHARED_DATA = Path(
    os.environ.get("LFDEBLUR_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data")
)


def shared_path(*parts: str) -> Path:
    """Path inside the shared real-data folder; skips the test when absent."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p


@pytest.fixture
def hci_antinous() -> Path:
    return shared_path("lightfields", "hci_antinous")


@pytest.fixture
def lytro_plants() -> Path:
    return shared_path("lightfields", "lytro_plants_IMG_0001")


@pytest.fixture
def lytro_checkerboard() -> Path:
    return shared_path("lightfields", "lytro_checkerboard_7x7")


@pytest.fixture
def lytro_raw_lenslet() -> Path:
    return shared_path("lightfields", "lytro_raw_lenslet")


@pytest.fixture
def dpdd_pairs() -> Path:
    return shared_path("pairs", "dpdd_canon_train60")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one torch thread is as fast, and immune to other processes on a shared CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
