"""The OpenVINO backend: what "auto" picks, outputs against PyTorch's, its disk cache, fallback and pickling.

Run by test_backends.py in a pytest process of its own (see there).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("openvino")

from napari_lfdeblur import deblur  # noqa: E402
from napari_lfdeblur.errors import ModelError  # noqa: E402
from napari_lfdeblur.inference import openvino_backend, runtime  # noqa: E402
from napari_lfdeblur.inference.openvino_backend import OpenVINONetwork  # noqa: E402
from napari_lfdeblur.inference.runtime import from_network, resolve_runtime, to_network  # noqa: E402
from napari_lfdeblur.network.checkpoint import load_model  # noqa: E402
from napari_lfdeblur.network.drbnet import DRBNet  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("lfdeblur-cache")


@pytest.fixture(autouse=True)
def own_cache(cache, monkeypatch):
    monkeypatch.setenv("LFDEBLUR_CACHE", str(cache))


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(3)
    return load_model(DRBNet(base=8), device="cpu", dtype="float32")


def backend_of(net, backend):
    return resolve_runtime(net, "cpu", backend=backend).backend


def run_network(x, net):
    """The network through PyTorch, in float32."""
    return resolve_runtime(net, "cpu", "float32", backend="torch")(x)


def through_openvino(ov: OpenVINONetwork, x):
    """An image in [0, 1] through OpenVINO directly (the runtime scales it, as here)."""
    return from_network(ov(to_network(x[None])))[0]


def _image(h=75, w=101, seed=0):
    from skimage.data import astronaut

    rgb = astronaut()[100:100 + h, 150:150 + w].astype(np.float32) / 255
    return rgb + np.random.default_rng(seed).normal(0, 0.01, rgb.shape).astype(np.float32).clip(-rgb, 1 - rgb)


def test_auto_picks_openvino_where_it_was_measured_faster(net, monkeypatch):
    from napari_lfdeblur.network import precision

    monkeypatch.delenv("LFDEBLUR_BACKEND", raising=False)
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: True)  # an Intel Xeon with AMX
    assert backend_of(net, "auto") == "openvino"
    assert resolve_runtime(net, "cpu").openvino is not None
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: False)  # AVX512-BF16 without AMX: PyTorch was faster
    assert backend_of(net, "auto") == "torch"
    monkeypatch.setenv("LFDEBLUR_BACKEND", "openvino")
    assert backend_of(net, "auto") == "openvino"
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: True)
    monkeypatch.setenv("LFDEBLUR_BACKEND", "torch")
    assert backend_of(net, "auto") == "torch"
    assert backend_of(net, "openvino") == "openvino"  # asked for by name: the environment does not overrule


def test_auto_keeps_torch_without_openvino_and_for_other_modules(net, monkeypatch):
    monkeypatch.setenv("LFDEBLUR_BACKEND", "openvino")
    other = torch.nn.Conv2d(3, 3, 3, padding=1)
    assert backend_of(other, "auto") == "torch"
    with pytest.raises(ModelError, match="DRBNet"):
        backend_of(other, "openvino")
    monkeypatch.setattr(runtime, "openvino_available", lambda: False)
    assert backend_of(net, "auto") == "torch"
    with pytest.raises(ModelError, match=r"pip install 'napari-lfdeblur\[openvino\]'"):
        backend_of(net, "openvino")
    with pytest.raises(ModelError, match="backend must be one of"):
        backend_of(net, "tensorrt")


def test_openvino_float32_output_matches_torch(net):
    x = _image()  # 75 x 101: not multiples of 8, so the padding outside the traced graph is exercised
    ref = run_network(x, net)
    out = resolve_runtime(net, "cpu", "float32", backend="openvino")(x)
    assert out.shape == ref.shape and out.dtype == np.float32
    assert np.abs(out - ref).max() * 255 <= 0.01
    # the network changed the image (a wrong graph that passes the input through would not be caught otherwise)
    assert np.abs(ref - x).max() * 255 > 5


def test_shipped_model_in_bfloat16_stays_within_2_of_255_of_float32():
    """The issue's bound, on the shipped weights and a real photo (random weights amplify rounding)."""
    shipped = load_model("default", device="cpu", dtype="float32")
    x = _image(120, 168)
    ref = run_network(x, shipped)
    out = through_openvino(OpenVINONetwork(shipped, "bfloat16"), x)
    diff = np.abs(out - ref) * 255
    assert diff.max() <= 2.0, diff.max()
    assert np.abs(ref - x).max() * 255 > 5


def test_batches_and_single_images_agree(net):
    x = np.stack([_image(seed=1), _image(seed=2)])
    ov = resolve_runtime(net, "cpu", "float32", backend="openvino")
    both = ov(x)
    assert both.shape == x.shape
    np.testing.assert_allclose(both[1], ov(x[1]), atol=1e-5)


def test_the_traced_model_is_kept_on_disk_and_reused(net, cache, monkeypatch):
    through_openvino(OpenVINONetwork(net, "float32"), _image(40, 40))
    kept = list((cache / "openvino").glob("*.xml"))
    assert kept and all(p.with_suffix(".bin").is_file() for p in kept)
    import openvino as ov

    def no_tracing(*a, **k):
        raise AssertionError("traced again instead of reading the cache")

    monkeypatch.setattr(ov, "convert_model", no_tracing)
    fresh = through_openvino(OpenVINONetwork(net, "float32"), _image(40, 40))
    np.testing.assert_allclose(fresh, run_network(_image(40, 40), net), atol=1e-4)


def test_other_weights_get_their_own_cache_entry(net, cache):
    torch.manual_seed(4)
    other = load_model(DRBNet(base=8), device="cpu", dtype="float32")
    assert openvino_backend._weights_key(net) != openvino_backend._weights_key(other)
    a = through_openvino(OpenVINONetwork(other, "float32"), _image(40, 40))
    np.testing.assert_allclose(a, run_network(_image(40, 40), other), atol=1e-4)


def test_a_failing_openvino_falls_back_to_torch_with_one_warning(net, monkeypatch):
    monkeypatch.setenv("LFDEBLUR_BACKEND", "openvino")

    def broken(self, shape):
        raise RuntimeError("simulated: cannot compile")

    monkeypatch.setattr(OpenVINONetwork, "compiled", broken)
    fn = resolve_runtime(net, "cpu", "float32", backend="auto")
    x = _image(40, 40)
    with pytest.warns(RuntimeWarning, match="using PyTorch"):
        out = fn(x)
    np.testing.assert_allclose(out, run_network(x, net), atol=1e-6)
    assert fn.openvino.failed
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn(x)  # no second warning
    with pytest.raises(ModelError, match="OpenVINO could not run"):
        resolve_runtime(net, "cpu", "float32", backend="openvino")(x)


def test_the_runtime_pickles_for_dask_workers(net):
    fn = resolve_runtime(net, "cpu", "float32", backend="openvino")
    x = _image(48, 48)
    first = fn(x)
    again = pickle.loads(pickle.dumps(fn))
    assert again.backend == "openvino"
    np.testing.assert_allclose(again(x), first, atol=1e-6)


def test_deblur_lazy_and_in_memory_agree_through_openvino(net):
    import dask.array as da

    img = (_image(300, 260) * 255).astype(np.uint8)
    # float32 (random weights amplify bfloat16 rounding; the shipped model's bound is tested above)
    whole = deblur(img, model=net, backend="openvino", dtype="float32")
    lazy = deblur(da.from_array(img, chunks=(128, 128, 3)), model=net, backend="openvino", dtype="float32",
                  chunk=128)
    torch_ref = deblur(img, model=net, backend="torch", dtype="float32")
    assert np.abs(whole.astype(int) - torch_ref).max() <= 1
    assert np.abs(np.asarray(lazy).astype(int) - whole).max() <= 2  # chunks with halos: the tiling tolerance


def test_deblur_rejects_an_unknown_backend(net):
    with pytest.raises(ModelError, match="backend must be one of"):
        deblur(np.zeros((32, 32, 3), np.uint8), model=net, backend="onnx")


def test_compiled_graphs_on_disk_are_kept_under_a_size(net, cache, monkeypatch):
    folder = cache / "openvino" / "compiled"
    monkeypatch.setattr(openvino_backend, "_COMPILED_CACHE_BYTES", 1)  # keep only the newest
    ov = OpenVINONetwork(net, "float32")
    for side in (40, 48, 56):
        through_openvino(ov, _image(side, side))
    blobs = list(folder.glob("*.blob"))
    assert len(blobs) == 1


def test_the_command_line_runs_openvino_and_says_so(net, tmp_path, capsys):
    import imageio.v3 as iio

    from napari_lfdeblur import save_model
    from napari_lfdeblur.cli import main

    ckpt = save_model(net, tmp_path / "net.pt")
    iio.imwrite(tmp_path / "a.png", (_image(64, 80) * 255).astype(np.uint8))
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "b.png"), "--backend", "openvino",
                 "--model", str(ckpt), "--device", "cpu", "--dtype", "float32"]) == 0
    assert "through OpenVINO" in capsys.readouterr().out
    ref = deblur(iio.imread(tmp_path / "a.png"), model=net, backend="torch", dtype="float32")
    assert np.abs(iio.imread(tmp_path / "b.png").astype(int) - ref).max() <= 1
