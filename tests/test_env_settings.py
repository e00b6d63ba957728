"""Environment variables the package reads: a value that cannot be used is a clear error naming the variable.

``$LFDEBLUR_BACKEND``, ``$LFDEBLUR_TILE_MEMORY_MB`` and ``$LFDEBLUR_AUTHORS_URL`` used to be ignored (or to
end in a bare traceback) when set to nonsense; here they go through the user's doors: the public API
(``import napari_lfdeblur as lfd``) and the ``lfdeblur`` command in a process of its own.  Nothing here
reaches the internet.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import napari_lfdeblur as lfd
from napari_lfdeblur.errors import DeblurInputError, ModelError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEAD_URL = "http://127.0.0.1:9/ckpts.zip"  # the discard port: nothing answers, nothing leaves the machine


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return lfd.DRBNet(base=4).eval()


@pytest.fixture(scope="module")
def ckpt(net, tmp_path_factory):
    return lfd.save_model(net, tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture
def image():
    return np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    """An empty per-user cache, so that a checkpoint cached on this machine never hides the address check."""
    monkeypatch.setenv("LFDEBLUR_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------ $LFDEBLUR_BACKEND
def test_backend_nonsense_is_a_model_error_naming_the_variable_and_the_choices(monkeypatch, net, image):
    monkeypatch.setenv("LFDEBLUR_BACKEND", "banana")
    with pytest.raises(ModelError, match=r"\$LFDEBLUR_BACKEND is 'banana'.*auto, torch or openvino"):
        lfd.deblur(image, model=net, device="cpu")
    # asked for by name, the backend does not read the variable
    assert lfd.deblur(image, model=net, device="cpu", backend="torch").shape == image.shape


@pytest.mark.parametrize("value", ["torch", " Torch "])
def test_backend_values_that_name_a_backend_still_work(monkeypatch, net, image, value):
    monkeypatch.setenv("LFDEBLUR_BACKEND", value)
    assert lfd.deblur(image, model=net, device="cpu").shape == image.shape


def test_backend_auto_in_the_variable_means_the_default(monkeypatch):
    from napari_lfdeblur.inference.runtime import resolve_runtime

    monkeypatch.setenv("LFDEBLUR_BACKEND", "auto")
    assert resolve_runtime(torch.nn.Conv2d(3, 3, 1), "cpu").backend == "torch"  # not a DRBNet: PyTorch, no error


# ------------------------------------------------------------------ $LFDEBLUR_TILE_MEMORY_MB
@pytest.mark.parametrize("value", ["abc", "0", "-64"])
def test_tile_memory_nonsense_is_an_error_naming_the_variable(monkeypatch, net, image, value):
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", value)
    with pytest.raises(DeblurInputError, match=rf"\$LFDEBLUR_TILE_MEMORY_MB is '{value}'.*positive number of MiB"):
        lfd.deblur(image, model=net, device="cpu")
    monkeypatch.setenv("LFDEBLUR_TILE_MEMORY_MB", "64")
    assert lfd.deblur(image, model=net, device="cpu").shape == image.shape


# ------------------------------------------------------------------ $LFDEBLUR_AUTHORS_URL (and $LFDEBLUR_CACHE)
@pytest.mark.parametrize("value", ["not a url", "ftp:/x", "drive.google.com/uc?id=1", "http://[::1/x", "file:x"])
def test_authors_url_that_is_no_address_is_a_one_line_model_error(monkeypatch, empty_cache, capfd, value):
    monkeypatch.setenv("LFDEBLUR_AUTHORS_URL", value)
    with pytest.raises(ModelError) as e:
        lfd.load_model("authors")
    msg = str(e.value)
    assert msg.startswith(f"$LFDEBLUR_AUTHORS_URL is {value!r}, which is not a download address") and "\n" not in msg
    assert "https://" in msg  # what a valid value looks like
    assert "downloading" not in capfd.readouterr().err  # refused before a download is announced
    assert not empty_cache.exists()


def test_authors_url_given_as_an_argument_is_checked_the_same_way(empty_cache):
    from napari_lfdeblur.network.authors import fetch_authors_checkpoint

    with pytest.raises(ModelError, match=r"^url= is 'ftp:/x', which is not a download address"):
        fetch_authors_checkpoint(url="ftp:/x")


def test_cache_that_is_no_folder_is_named_in_the_error(monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("x")
    monkeypatch.setenv("LFDEBLUR_CACHE", str(tmp_path / "a-file"))
    monkeypatch.setenv("LFDEBLUR_AUTHORS_URL", DEAD_URL)
    with pytest.raises(ModelError, match=r"cannot write to the cache folder .*\$LFDEBLUR_CACHE is '.*a-file' now"):
        lfd.load_model("authors")


# ------------------------------------------------------------------ the same through ``lfdeblur deblur``
def _lfdeblur(*args, env: dict, cwd):
    full = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1",
            "LFDEBLUR_BACKEND": "torch", **env}
    return subprocess.run([sys.executable, "-m", "napari_lfdeblur.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=300, env=full, cwd=cwd)


@pytest.mark.parametrize(
    ("env", "model", "message"),
    [
        ({"LFDEBLUR_BACKEND": "banana"}, None, "$LFDEBLUR_BACKEND is 'banana', which is not a backend"),
        ({"LFDEBLUR_TILE_MEMORY_MB": "abc"}, None, "$LFDEBLUR_TILE_MEMORY_MB is 'abc': set it to a positive number"),
        ({"LFDEBLUR_TILE_MEMORY_MB": "0"}, None, "$LFDEBLUR_TILE_MEMORY_MB is '0': set it to a positive number"),
        ({"LFDEBLUR_AUTHORS_URL": "not a url"}, "authors",
         "$LFDEBLUR_AUTHORS_URL is 'not a url', which is not a download address"),
    ],
    ids=["backend", "memory-abc", "memory-0", "authors-url"],
)
def test_cli_deblur_says_which_variable_is_wrong_in_one_line(tmp_path, ckpt, image, env, model, message):
    Image.fromarray(image).save(tmp_path / "a.png")
    env = {"LFDEBLUR_CACHE": str(tmp_path / "cache"), **env}
    r = _lfdeblur("deblur", tmp_path / "a.png", "-o", tmp_path / "out.png", "--model", model or ckpt,
                  "--device", "cpu", env=env, cwd=tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert lines[0].startswith("lfdeblur deblur: error: ") and message in lines[0]
    assert not (tmp_path / "out.png").exists()
