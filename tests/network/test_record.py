"""What a loaded network carries: one ModelRecord, read by deblurring, training and the distributed runner."""

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
    # the attributes scripts use read the record
    assert m.training_summary == {"steps": 7} and m.checkpoint_path == str(path) and m.compute_dtype is None
    # loading the loaded network again (another precision) keeps where it came from
    again = load_model(m, device="cpu", dtype="bfloat16")
    assert again.record.source == str(path) and again.record.training == {"steps": 7}
    assert again.record.compute_dtype == torch.bfloat16


def test_any_module_has_a_record(one_torch_thread):
    conv = torch.nn.Conv2d(3, 3, 1)
    r = record_of(conv)
    assert r.device == torch.device("cpu") and r.compute_dtype is None and r.source is None and r.training == {}
    assert load_model(conv, device="cpu").record.input_convention == "rgb_minus1_1"


def test_the_distributed_runner_carries_the_networks_record(tmp_path, one_torch_thread):
    from napari_lfdeblur.inference.runners import picklable_model

    path = tmp_path / "m.pt"
    save_model(DRBNet(base=4), path, training={"steps": 2})
    wrapped = picklable_model(str(path), device="cpu", dtype="float32")
    assert record_of(wrapped).source == str(path.resolve()) and record_of(wrapped).training == {"steps": 2}
