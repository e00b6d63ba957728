"""What a loaded network carries: one ModelRecord, read by deblurring's runtime and training."""

from __future__ import annotations

import torch

from napari_lfdeblur import DRBNet, load_model, save_model
from napari_lfdeblur.network.record import ModelRecord, record_of


def test_load_model_attaches_one_record(tmp_path, one_torch_thread):
    net = DRBNet(base=4)
    path = tmp_path / "m.pt"
    save_model(net, path, training={"steps": 7})
    m = load_model(path, device="cpu", dtype="float32")
    assert isinstance(m.record, ModelRecord)
    assert m.record.device == torch.device("cpu") and m.record.compute_dtype is None
    assert m.record.training == {"steps": 7} and m.record.source == str(path)
    assert m.record.input_convention == "rgb_minus1_1"
    # loading the loaded network again (another precision) keeps where it came from
    again = load_model(m, device="cpu", dtype="bfloat16")
    assert again.record.source == str(path) and again.record.training == {"steps": 7}
    assert again.record.compute_dtype == torch.bfloat16


def test_any_module_has_a_record(one_torch_thread):
    conv = torch.nn.Conv2d(3, 3, 1)
    r = record_of(conv)
    assert r.device == torch.device("cpu") and r.compute_dtype is None and r.source is None and r.training == {}
    assert load_model(conv, device="cpu").record.input_convention == "rgb_minus1_1"


def test_a_runtime_from_a_checkpoint_travels_as_its_path_and_reads_the_record(tmp_path, one_torch_thread):
    """dask.distributed workers get the runtime in every task: as the checkpoint's path, not its weights."""
    import pickle

    import numpy as np

    from napari_lfdeblur.inference.runtime import resolve_runtime

    path = tmp_path / "m.pt"
    save_model(DRBNet(base=8), path, training={"steps": 2})
    runtime = resolve_runtime(str(path), device="cpu", dtype="float32", tile=256)
    assert record_of(runtime.net).source == str(path) and record_of(runtime.net).training == {"steps": 2}
    assert (runtime.precision, runtime.backend, runtime.tile, runtime.halo) == ("float32", "torch", 256, 64)
    sent = pickle.dumps(runtime)
    assert len(sent) < 10_000 < len(pickle.dumps(runtime.net))  # the path and options, not the weights
    again = pickle.loads(sent)
    assert (again.precision, again.tile, again.source) == (runtime.precision, 256, runtime.source)
    x = np.random.default_rng(0).random((1, 40, 48, 3)).astype(np.float32)
    np.testing.assert_array_equal(again(x), runtime(x))
    module = resolve_runtime(DRBNet(base=4), device="cpu")  # a module: its weights travel
    assert module.source is None and pickle.loads(pickle.dumps(module)).net.base == 4
