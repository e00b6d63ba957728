"""The OpenVINO backend's tests (``openvino_cases.py``), run in a pytest process of their own.

Loaded into the suite's process beside everything else (Qt, dask thread
pools, torch's OpenMP), OpenVINO's thread pool (TBB) made a later
``subprocess.run`` crash the whole test run with a segfault while it waited
for the child; alone, the same tests and subprocesses pass.  A child process
keeps the rest of the suite free of it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

CASES = Path(__file__).with_name("openvino_cases.py")


def test_openvino_backend_in_its_own_process(tmp_path):
    pytest.importorskip("openvino")
    r = subprocess.run(
        [sys.executable, "-m", "pytest", str(CASES), "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
        capture_output=True, text=True, timeout=1200, cwd=Path(__file__).resolve().parents[2],
    )
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, tail
    assert re.search(r"\b1[0-9] passed\b", tail), tail  # all the cases ran (no silent skip of the module)
