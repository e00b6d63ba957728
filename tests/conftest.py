"""Shared fixtures: where the real data lives, and skips when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The suite builds many small random-weight networks: with OpenVINO installed (the testing extra),
# backend="auto" would trace each one for OpenVINO (seconds apiece).  Tests run PyTorch unless they ask
# for OpenVINO (tests/inference/test_backends.py, which also checks what "auto" picks).
os.environ.setdefault("LFDEBLUR_BACKEND", "torch")

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


# data fixture -> its folder under SHARED_DATA
DATA_FIXTURES = {
    "hci_antinous": ("lightfields", "hci_antinous"),
    "lytro_plants": ("lightfields", "lytro_plants_IMG_0001"),
    "lytro_checkerboard": ("lightfields", "lytro_checkerboard_7x7"),
    "lytro_raw_lenslet": ("lightfields", "lytro_raw_lenslet"),
    "dpdd_pairs": ("pairs", "dpdd_canon_train60"),
}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skip a test whose shared data is absent before any of its fixtures is set up.

    A skip raised by a data fixture set up after ``make_napari_viewer`` breaks that
    fixture's teardown (``AttributeError: rep_call``): on a machine without
    ../shared the README's test command then ended in errors instead of skips.
    """
    for name in getattr(item, "fixturenames", ()):
        if name in DATA_FIXTURES and not SHARED_DATA.joinpath(*DATA_FIXTURES[name]).exists():
            pytest.skip(f"real data not available: {SHARED_DATA.joinpath(*DATA_FIXTURES[name])}")


def _data_fixture(name):
    @pytest.fixture(name=name)
    def fixture() -> Path:
        return shared_path(*DATA_FIXTURES[name])

    return fixture


hci_antinous = _data_fixture("hci_antinous")
lytro_plants = _data_fixture("lytro_plants")
lytro_checkerboard = _data_fixture("lytro_checkerboard")
lytro_raw_lenslet = _data_fixture("lytro_raw_lenslet")
dpdd_pairs = _data_fixture("dpdd_pairs")


@pytest.fixture
def tiny_pair_folder(tmp_path) -> Path:
    """A blur/ + sharp/ folder of four 40x40 RGB pairs (the blurred shot a dimmer copy): enough for a few steps."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        sharp = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        Image.fromarray(sharp).save(root / "sharp" / f"p{i}.png")
        Image.fromarray((sharp // 2 + 64).astype(np.uint8)).save(root / "blur" / f"p{i}.png")
    return root


@pytest.fixture(scope="session")
def train_default_script():
    """scripts/train_default.py, imported as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "train_default.py"
    spec = importlib.util.spec_from_file_location("train_default_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one torch thread is as fast, and immune to other processes on a shared CPU."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def network_calls(monkeypatch):
    """The (height, width) of every batch PyTorch's network function is given, in order."""
    from napari_lfdeblur.inference import runtime

    shapes = []
    real = runtime.run_torch
    monkeypatch.setattr(runtime, "run_torch", lambda t, r: (shapes.append(t.shape[1:3]), real(t, r))[1])
    return shapes


@pytest.fixture
def make_napari_viewer(make_napari_viewer, qtbot):
    """napari's viewer factory, which also lets background work end before the viewer closes.

    A lazy result drawn with async rendering, or a widget's worker, may still be running
    when a test's last assertion passes; if it finishes while napari closes the viewer,
    its callbacks keep the QtViewer alive and napari's leak check fails the test.
    """
    viewers = []

    def factory(*args, **kwargs):
        viewer = make_napari_viewer(*args, **kwargs)
        viewers.append(viewer)
        return viewer

    yield factory
    from superqt.utils._qthreading import WorkerBase

    for viewer in viewers:
        viewer._layer_slicer.wait_until_idle(timeout=300)
    qtbot.waitUntil(lambda: not WorkerBase._worker_set, timeout=300_000)
    qtbot.wait(50)  # deliver the finished signals while the viewer is still open


@pytest.fixture
def lightfields_and_a_bad_entry(tmp_path):
    """Two small light fields and, between them, a folder holding a raw lenslet image without its centres file."""
    import numpy as np
    from PIL import Image

    from napari_lfdeblur import synthetic_lightfield

    folder = tmp_path / "lfs"
    (folder / "b_raw_lenslet").mkdir(parents=True)
    for seed, name in ((3, "a_scene"), (4, "c_scene")):
        np.save(folder / f"{name}.npy", synthetic_lightfield(seed=seed, views=5, size=48,
                                                             disparity_range=(-1.0, 1.0)).data)
    raw = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(raw).save(folder / "b_raw_lenslet" / "IMG_1.jpg")
    return folder
