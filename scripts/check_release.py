"""Build the sdist and the wheel, install the wheel in a fresh virtual environment, and check what a user gets.

The wheel is built from the sdist (as a release would be, and as ``pip
install`` of the sdist would build it), so installing the wheel checks both.
A new venv (no system packages), ``pip install`` of the wheel alone (CPU
torch through ``ci/constraints.txt``), then, in that venv
and outside the source tree: the version, the npe2 manifest, the shipped
sample light field, ``load_model("default")`` and a small deblur with it,
and ``lfdeblur --help``.  Prints the artefacts' sizes and what the install
took; exits 1 on the first failure.  Needs the ``build`` package
(``pip install build``).  Usage::

    python scripts/check_release.py [--keep]      # artefacts in dist/
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import numpy as np, napari_lfdeblur as lfd
from importlib.resources import files
print("version", lfd.__version__)
assert (files("napari_lfdeblur") / "napari.yaml").is_file()
lf = lfd.sample_lightfield("lytro_plants")
print("sample", lf.grid, lf.view_shape)
m = lfd.load_model("default")
print("default model", m.config)
img = (np.random.default_rng(0).random((96, 128, 3)) * 255).astype(np.uint8)
out = lfd.deblur(img, model=m, device="cpu")
assert out.shape == img.shape and out.dtype == np.uint8
print("deblur ok")
"""


def run(cmd, **kw) -> str:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode:
        sys.stdout.write(res.stdout[-3000:] + res.stderr[-3000:])
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")
    return res.stdout


def snapshot(dest: Path) -> Path:
    """The checkout's files (tracked, and untracked ones git does not ignore) copied to ``dest``: a release
    builds there, because a build in the checkout writes ``src/*.egg-info`` beside whatever else builds the
    package at the same time (``.ci/run`` runs this beside tox, which builds it too)."""
    try:
        listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
                                capture_output=True, check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked sdist): all but artefacts
        shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(".git", ".tox", ".venv", "dist", "build",
                                                                   "*.egg-info", "__pycache__"))
        return dest
    for name in filter(None, listed):
        src = REPO / name
        if src.is_file():  # a tracked file deleted in the working tree is left out, as a build would
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the virtual environment (printed)")
    args = ap.parse_args(argv)
    dist = REPO / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    t0 = time.perf_counter()
    # no --sdist/--wheel: the wheel is built from the sdist, in a clean folder (a stale build/ in the
    # checkout cannot leak old files into it), as a release would be
    with tempfile.TemporaryDirectory(prefix="lfdeblur-release-") as tree:
        run([sys.executable, "-m", "build", "--outdir", str(dist), str(snapshot(Path(tree) / "src"))])
    wheel, sdist = next(dist.glob("*.whl")), next(dist.glob("*.tar.gz"))
    print(f"built in {time.perf_counter() - t0:.0f} s")
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("napari_lfdeblur/weights/default.pt", "napari_lfdeblur/weights/MODEL_CARD.md",
                   "napari_lfdeblur/napari.yaml"):
        if needed not in names:
            raise SystemExit(f"{wheel.name} lacks {needed}")
    if not any(n.startswith("napari_lfdeblur/sample_data/") and n.endswith(".eslf.png") for n in names):
        raise SystemExit(f"{wheel.name} lacks the sample light field")
    for art in (wheel, sdist):
        print(f"{art.name}: {art.stat().st_size / 1e6:.1f} MB")
    env = {**os.environ, "PIP_CONSTRAINT": str(REPO / "ci" / "constraints.txt"), "PYTHONNOUSERSITE": "1"}
    env.pop("PYTHONPATH", None)
    venv = Path(tempfile.mkdtemp(prefix="lfdeblur-wheel-"))
    t = time.perf_counter()
    run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], env=env)
    t_install = time.perf_counter() - t
    out = run([str(py), "-c", CHECK], env=env, cwd=venv)
    run([str(venv / "bin" / "lfdeblur"), "--help"], env=env, cwd=venv)  # the console script exists and starts
    print(f"{wheel.name}: installed in a fresh venv in {t_install:.0f} s; "
          + "; ".join(ln for ln in out.splitlines() if ln))
    if args.keep:
        print(f"  kept {venv}")
    else:
        shutil.rmtree(venv, ignore_errors=True)
    print(f"release check passed in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
