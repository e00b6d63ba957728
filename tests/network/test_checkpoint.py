"""Checkpoints: our format round trip, the authors' bare state dict, wrong files, devices."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from napari_lfdeblur.devices import available_devices, resolve_device
from napari_lfdeblur.errors import ModelError
from napari_lfdeblur.network import checkpoint as ckpt
from napari_lfdeblur.network import precision
from napari_lfdeblur.network.checkpoint import FORMAT, load_model, save_model
from napari_lfdeblur.network.drbnet import DRBNet
from napari_lfdeblur.network.precision import autocast_dtype, inference_precision

ROOT = next(p for p in Path(__file__).resolve().parents if (p / "pyproject.toml").is_file())
SPEC = ROOT.parent / "shared" / "spec" / "drbnet_official_state_dict.txt"


def spec_state_dict(seed: int = 0) -> dict:
    """A state dict with the authors' names and shapes and random values."""
    if not SPEC.exists():
        pytest.skip(f"spec file not available: {SPEC}")
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for line in SPEC.read_text().splitlines():
        if line.strip():
            name, shape = line.split()
            dims = tuple(int(s) for s in shape.split("x"))
            sd[name] = torch.randn(dims, generator=g) * 0.05
    return sd


def small_input(h=16, w=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((1, 3, h, w), generator=g) * 2 - 1


def run(model, x):
    with torch.inference_mode():
        return model(x)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def assert_same_outputs(loaded, ref, x):
    """Identical weights; identical outputs in the same memory format (load_model picks channels_last on CPU)."""
    same_weights(loaded, ref)
    fmt = (
        torch.channels_last
        if loaded.conv1_1[0].weight.is_contiguous(memory_format=torch.channels_last)
        and not loaded.conv1_1[0].weight.is_contiguous()
        else torch.contiguous_format
    )
    ref = ref.to(memory_format=fmt)
    assert torch.equal(run(loaded, x), run(ref, x))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def lite():
    torch.manual_seed(3)
    return DRBNet(base=8).eval()


def test_round_trip(tmp_path, lite):
    path = save_model(
        lite, tmp_path / "sub" / "m.pt", training={"epochs": 3, "loss": [0.5, 0.25]}, extra={"note": "hi"}
    )
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]  # no temp file left behind
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT
    assert raw["config"] == {"arch": "DRBNet", "base": 8, "res_blocks": 2}
    assert raw["input_convention"] == "rgb_minus1_1"
    assert raw["training"] == {"epochs": 3, "loss": [0.5, 0.25]}
    assert raw["extra"] == {"note": "hi"} and "package_version" in raw
    m = load_model(path, device="cpu")
    assert isinstance(m, DRBNet) and not m.training
    assert m.device == torch.device("cpu") and m.input_convention == "rgb_minus1_1"
    assert m.config == lite.config and m.record.training["epochs"] == 3
    assert_same_outputs(m, lite, small_input(13, 21))


def test_save_refuses_unsafe_metadata(tmp_path, lite):
    import numpy as np

    with pytest.raises(ModelError, match="weights_only"):
        save_model(lite, tmp_path / "m.pt", training={"lr": np.float64(1e-4)})
    assert not any(tmp_path.iterdir())


def test_save_overwrites_atomically(tmp_path, lite):
    p = tmp_path / "m.pt"
    save_model(lite, p)
    other = DRBNet(base=8)
    save_model(other, p)
    same_weights(load_model(p, device="cpu"), other)


def test_authors_bare_state_dict(tmp_path):
    sd = spec_state_dict()
    path = tmp_path / "single_image_defocus_deblurring.pth"
    torch.save(sd, path)
    m = load_model(path, device="cpu")
    assert m.config == {"arch": "DRBNet", "base": 32, "res_blocks": 2}
    ref = DRBNet().eval()
    ref.load_state_dict(sd, strict=True)
    assert_same_outputs(m, ref, small_input())


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "params"])
def test_wrapped_and_prefixed_state_dicts(tmp_path, lite, wrapper):
    sd = {"module." + k: v for k, v in lite.state_dict().items()}
    path = tmp_path / "w.pth"
    torch.save({wrapper: sd, "epoch": 7}, path)
    m = load_model(path, device="cpu")
    assert m.config["base"] == 8  # inferred from the shapes
    assert_same_outputs(m, lite, small_input())


def test_state_dict_in_memory_and_module(lite):
    m = load_model(lite.state_dict(), device="cpu")
    assert m.config == lite.config
    same = load_model(lite, device="cpu")
    assert same is lite and same.device.type == "cpu" and not same.training


def test_generic_module_gets_a_record():
    net = torch.nn.Conv2d(3, 3, 1)
    m = load_model(net, device="cpu")
    assert m.record.input_convention == "rgb_minus1_1" and m.record.device == torch.device("cpu")


def test_default_missing_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(ckpt, "default_model_path", lambda: tmp_path / "default.pt")
    with pytest.raises(ModelError, match="default model file is missing"):
        load_model("default")


def test_default_found_when_present(monkeypatch, tmp_path, lite):
    save_model(lite, tmp_path / "default.pt")
    monkeypatch.setattr(ckpt, "default_model_path", lambda: tmp_path / "default.pt")
    assert load_model("default", device="cpu").config == lite.config


def test_another_architecture(tmp_path):
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.Conv2d(16, 3, 3))
    torch.save(net.state_dict(), tmp_path / "unet.pth")
    with pytest.raises(ModelError, match="not a DRBNet checkpoint") as e:
        load_model(tmp_path / "unet.pth")
    assert "0.weight" in str(e.value)


def test_missing_and_unexpected_keys(tmp_path, lite):
    sd = dict(lite.state_dict())
    del sd["upconv2_res.1.0.weight"]
    sd["extra_head.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "m.pth")
    with pytest.raises(ModelError) as e:
        load_model(tmp_path / "m.pth")
    msg = str(e.value)
    assert "1 missing" in msg and "upconv2_res.1.0.weight" in msg
    assert "1 unexpected" in msg and "extra_head.weight" in msg


def test_shape_mismatch(tmp_path, lite):
    sd = dict(lite.state_dict())
    sd["upconv1_kernel.0.0.weight"] = torch.zeros(16, 32, 5, 5)
    save = {"format": FORMAT, "state_dict": sd, "config": lite.config}
    torch.save(save, tmp_path / "m.pt")
    with pytest.raises(ModelError, match=r"shape mismatch.*upconv1_kernel\.0\.0\.weight"):
        load_model(tmp_path / "m.pt")


def test_config_disagrees_with_weights(tmp_path, lite):
    torch.save(
        {"format": FORMAT, "state_dict": lite.state_dict(), "config": {"arch": "DRBNet", "base": 16}}, tmp_path / "m.pt"
    )
    with pytest.raises(ModelError, match="shape mismatch"):
        load_model(tmp_path / "m.pt")


def test_newer_format(tmp_path, lite):
    torch.save({"format": "napari-lfdeblur/9", "state_dict": lite.state_dict()}, tmp_path / "m.pt")
    with pytest.raises(ModelError, match="upgrade"):
        load_model(tmp_path / "m.pt")


def test_truncated_file(tmp_path, lite):
    p = save_model(lite, tmp_path / "m.pt")
    data = p.read_bytes()
    (tmp_path / "t.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated or damaged"):
        load_model(tmp_path / "t.pt")


def test_text_file_and_empty_file(tmp_path):
    (tmp_path / "notes.txt").write_text("these are not weights\n")
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        load_model(tmp_path / "notes.txt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ModelError):
        load_model(tmp_path / "empty.pt")


def test_pickled_objects_are_not_loaded(tmp_path, lite):
    import argparse

    torch.save({"state_dict": lite.state_dict(), "args": argparse.Namespace(lr=1)}, tmp_path / "m.pth")
    with pytest.raises(ModelError, match="safety") as e:
        load_model(tmp_path / "m.pth")
    assert "weights_only" not in str(e.value)  # never advise loading a possibly hostile file unsafely


def test_an_image_is_not_a_readable_checkpoint(tmp_path):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    with pytest.raises(ModelError, match="photo.png is not a readable checkpoint: it is not a PyTorch") as e:
        load_model(tmp_path / "photo.png")
    assert "Python objects" not in str(e.value) and "weights_only" not in str(e.value)


@pytest.mark.parametrize("path", ["", "  "])
def test_empty_path_says_so(path):
    with pytest.raises(ModelError, match="no checkpoint given") as e:
        load_model(path)
    assert "folder" not in str(e.value)  # it was '. is a folder'


def test_missing_file_folder_and_bad_type(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.pt")
    with pytest.raises(ModelError, match="folder"):
        load_model(tmp_path)
    with pytest.raises(ModelError):
        load_model(42)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ModelError, match="list"):
        load_model(tmp_path / "list.pt")


def test_nan_weights(tmp_path, lite):
    sd = dict(lite.state_dict())
    sd["conv1_2.0.bias"] = sd["conv1_2.0.bias"].clone().fill_(float("nan"))
    torch.save(sd, tmp_path / "m.pth")
    with pytest.raises(ModelError, match="NaN"):
        load_model(tmp_path / "m.pth")


# ------------------------------------------------------------------ devices
def test_resolve_device_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    auto = resolve_device("auto")
    if torch.cuda.is_available():
        assert auto.type == "cuda"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        assert auto.type == "mps"
    else:
        assert auto.type in ("cpu", "xpu")
    assert "cpu" in available_devices()
    assert str(auto) in available_devices() or auto.type == "cuda"


def test_resolve_device_unavailable():
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="cuda"):
            resolve_device("cuda")
    with pytest.raises(ModelError, match="not available"):
        resolve_device("cuda:99")
    if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        with pytest.raises(ModelError, match="mps"):
            resolve_device("mps")
    with pytest.raises(ModelError, match="unknown device"):
        resolve_device("banana")
    with pytest.raises(ModelError):
        resolve_device(3.5)


def test_inference_precision_of_the_weights(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)  # no "emulated" warning
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a cuda device object needs no GPU
    assert inference_precision(None, cpu)[0] == inference_precision("float32", cpu)[0] == torch.float32
    with pytest.warns(RuntimeWarning, match="float32"):
        assert inference_precision("float16", cpu) == (torch.float32, None)
    # bfloat16 on the CPU keeps float32 weights without a warning: it runs as autocast
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert inference_precision("bfloat16", cpu) == (torch.float32, torch.bfloat16)
    assert inference_precision("bfloat16", cuda) == (torch.bfloat16, None)
    assert inference_precision(None, cuda, torch.float16) == (torch.float16, None)  # a module's own type kept
    assert inference_precision(None, cpu, torch.bfloat16) == (torch.bfloat16, None)  # its weights carry it
    with pytest.raises(ModelError):
        inference_precision("float64", cpu)
    with pytest.raises(ModelError):
        inference_precision("int8", cpu)


@pytest.mark.parametrize("native", [True, False])
def test_autocast_dtype_for_training(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a cuda device object needs no GPU
    # auto: bfloat16 only where the CPU computes it natively (emulated it is slower than float32)
    assert autocast_dtype(True, cpu) == autocast_dtype("auto", cpu) == (torch.bfloat16 if native else None)
    assert autocast_dtype(True, cuda) == torch.float16 and autocast_dtype("bf16", cuda) == torch.bfloat16
    assert autocast_dtype(True, torch.device("mps")) is None
    for off in (False, None, "off", "float32"):
        assert autocast_dtype(off, cpu) is None and autocast_dtype(off, cuda) is None
    if native:
        assert autocast_dtype("bfloat16", cpu) == torch.bfloat16
    else:
        with pytest.warns(RuntimeWarning, match="slower than float32"):
            assert autocast_dtype("bfloat16", cpu) == torch.bfloat16
    with pytest.raises(ModelError, match="needs a CUDA GPU.*bfloat16"):
        autocast_dtype("float16", cpu)
    with pytest.raises(ModelError, match="amp must be"):
        autocast_dtype("int8", cpu)


@pytest.mark.parametrize("native", [True, False])
def test_inference_autocast_and_the_loaded_models_compute_dtype(monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    cpu = torch.device("cpu")

    def autocast(dtype, device=cpu):
        return inference_precision(dtype, device)[1]

    # default: bfloat16 autocast only where the CPU computes it natively; never on GPUs (weights carry the dtype)
    assert autocast(None) == autocast("auto") == (torch.bfloat16 if native else None)
    assert autocast(None, torch.device("cuda")) is None
    assert autocast("bfloat16", torch.device("cuda")) is None
    assert autocast(None, torch.device("mps")) is None
    for off in ("float32", torch.float32):
        assert autocast(off) is None
    if native:
        assert autocast("bfloat16") == autocast(torch.bfloat16) == torch.bfloat16
    else:
        with pytest.warns(RuntimeWarning, match="slower than float32"):
            assert autocast("bfloat16") == torch.bfloat16
    m = load_model(DRBNet(base=4), device="cpu")
    assert m.record.compute_dtype == (torch.bfloat16 if native else None)
    assert next(m.parameters()).dtype == torch.float32  # the weights stay float32
    assert load_model(m, device="cpu", dtype="float32").record.compute_dtype is None


def test_cpu_bf16_probe_matches_torch():
    probes = [getattr(torch.cpu, n, None) for n in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    assert precision.cpu_has_native_bf16() == any(bool(p()) for p in probes if p is not None)


def test_load_half_on_cpu_falls_back(lite):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m = load_model(lite, device="cpu", dtype="float16")
    assert m.dtype == torch.float32 and any(issubclass(x.category, RuntimeWarning) for x in w)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_half_channels_last(lite):  # pragma: no cover - GPU machines only
    m = load_model(DRBNet(base=8).eval(), device="cuda", dtype="float16")
    assert m.device.type == "cuda" and m.dtype == torch.float16
    x = small_input().cuda().half().contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        assert m(x).shape == x.shape


def test_input_detail_and_half_round_trip(tmp_path):
    """A float16 file is half the size, keeps input_detail, and loads into a float32 network
    whose output differs from the original by far less than a uint8 grey level."""
    torch.manual_seed(5)
    net = DRBNet(base=8, input_detail=True)
    with torch.no_grad():  # trained-looking weights: the heads are zero in a fresh input-detail net
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    net.eval()
    full, half = save_model(net, tmp_path / "f.pt"), save_model(net, tmp_path / "h.pt", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    m = load_model(half, device="cpu")
    assert m.input_detail and m.config == net.config and m.dtype == torch.float32
    x = small_input(24, 40)
    with torch.no_grad():
        assert (m(x) - net(x)).abs().max() < 1 / 255
