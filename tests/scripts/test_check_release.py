"""scripts/check_release.py: the release is built from a copy of the checkout, never in it."""

import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("check_release_script", ROOT / "scripts" / "check_release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_snapshot_holds_the_sources_and_no_build_artefacts(script, tmp_path):
    # .ci/run builds this beside tox's own build of the package: both writing src/*.egg-info in the checkout
    # failed CI (No such file or directory: ...egg-info)
    tree = script.snapshot(tmp_path / "src")
    for needed in ("pyproject.toml", "README.md", "LICENSE", "src/napari_lfdeblur/__init__.py",
                   "src/napari_lfdeblur/napari.yaml", "src/napari_lfdeblur/weights/default.pt"):
        assert (tree / needed).is_file(), needed
    assert not (tree / ".git").exists() and not (tree / ".tox").exists()
    assert not list(tree.rglob("*.egg-info")) and not list(tree.rglob("__pycache__"))
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "src"], capture_output=True, text=True)
    if tracked.returncode == 0 and tracked.stdout:  # a git checkout: every tracked source file is there
        missing = [n for n in tracked.stdout.split() if (ROOT / n).is_file() and not (tree / n).is_file()]
        assert not missing, missing[:5]
