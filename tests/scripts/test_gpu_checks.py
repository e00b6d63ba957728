"""scripts/gpu_checks.sh, the one command a device lease runs: every step at a tiny size on the CPU, with only
what the GPU machine has (PyTorch, numpy, scikit-image: no napari, dask or Qt), at most 8 files back."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# not on the GPU machine (its package list, .library/device/KINDS.md): importing any of them there fails
ABSENT_THERE = ["dask", "platformdirs", "napari", "magicgui", "npe2", "zarr", "qtpy", "PyQt5", "PyQt6", "openvino",
                "pydantic", "vispy", "superqt", "psygnal", "toolz", "cloudpickle", "fsspec", "pooch"]


@pytest.mark.skipif(shutil.which("timeout") is None or shutil.which("bash") is None, reason="needs bash and timeout")
def test_gpu_checks_run_every_step_without_napari_or_dask(tmp_path):
    block = tmp_path / "block"
    block.mkdir()
    (block / "sitecustomize.py").write_text(
        "import sys\n"
        f"ABSENT = {ABSENT_THERE!r}\n"
        "class Absent:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ABSENT:\n"
        "            raise ModuleNotFoundError(f'not on the GPU machine: {name}')\n"
        "sys.meta_path.insert(0, Absent())\n"
    )
    out = tmp_path / "out"
    env = dict(os.environ, PYTHON=sys.executable, PYTHONPATH=str(block), GPU_CHECKS_DEVICE="cpu", GPU_CHECKS_TINY="1")
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_checks.sh"), str(tmp_path / "no-pairs"), str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    session = (out / "session.txt").read_text()
    assert run.returncode == 0, run.stdout + run.stderr
    for step in ("network", "train_bench", "train"):
        assert f"{step}: rc=0" in session, (session, (out / f"{step}.txt").read_text()[-2000:])
    files = [p for p in out.iterdir() if p.is_file()]
    assert len(files) <= 8  # what the device tool brings back
    assert json.loads((out / "network.json").read_text())
    assert json.loads((out / "train_bench.json").read_text())
    final = json.loads((out / "final.json").read_text())
    assert final["psnr"] > 10 and final["input_psnr"] > 10
