"""The trainer on a tiny network and tiny data: events, files, exact resume, cancel, fine-tuning."""

from __future__ import annotations

import csv
import math
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from napari_lfdeblur.errors import TrainingError
from napari_lfdeblur.training import (
    CancelToken,
    CheckpointSaved,
    Finished,
    Started,
    Step,
    Stopped,
    Validation,
    finetune,
    lr_at,
    train,
)

TINY = {"model": 4, "batch": 2, "patch": 32, "device": "cpu", "seed": 3}


@pytest.fixture(autouse=True)
def _one_thread():
    # tiny networks: threads only add overhead (and make timings noisy on a shared CPU)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _box5(r):
    return np.convolve(r, np.ones(5) / 5, mode="same")


@pytest.fixture
def pairs(tmp_path):
    """8 scenes of 48x48: sharp = smooth random texture, blurred = its box blur."""
    rng = np.random.default_rng(0)
    root = tmp_path / "pairs"
    (root / "blur").mkdir(parents=True)
    (root / "sharp").mkdir()
    for i in range(8):
        small = rng.random((12, 12, 3))
        sharp = np.kron(small, np.ones((4, 4, 1)))
        blur = np.apply_along_axis(_box5, 0, sharp)
        blur = np.apply_along_axis(_box5, 1, blur)
        Image.fromarray((sharp * 255).astype(np.uint8)).save(root / "sharp" / f"s{i}.png")
        Image.fromarray((blur * 255).astype(np.uint8)).save(root / "blur" / f"s{i}.png")
    return root


def test_train_events_files_and_checkpoints(pairs, tmp_path):
    from napari_lfdeblur.network.checkpoint import load_model
    from napari_lfdeblur.network.record import record_of

    events = []
    out = tmp_path / "run"
    r = train(pairs, val=0.25, val_patch=32, steps=4, val_every=2, out=out, callback=events.append, **TINY)
    kinds = [e.kind for e in events]
    assert isinstance(events[0], Started) and events[0].total == 4 and events[0].n_train == 6
    assert isinstance(events[-1], Finished) and events[-1].result is r
    steps = [e for e in events if isinstance(e, Step)]
    assert [e.step for e in steps] == [1, 2, 3, 4] and all(math.isfinite(e.loss) and e.lr > 0 for e in steps)
    assert steps[-1].eta == 0 and steps[0].seconds_per_step > 0
    vals = [e for e in events if isinstance(e, Validation)]
    assert [v.step for v in vals] == [2, 4] and vals[0].best
    assert vals[0].input_psnr == vals[1].input_psnr and math.isfinite(vals[0].input_psnr)
    assert {e.which for e in events if isinstance(e, CheckpointSaved)} == {"last", "best", "resume"}
    assert kinds.count("started") == 1 and kinds.count("finished") == 1

    assert r.steps == 4 and not r.cancelled and len(r.history) == 4 and len(r.validations) == 2
    assert r.last == out / "last.pt" and r.best == out / "best.pt" and r.resume == out / "resume.pt"
    assert not r.model.training and r.model.clip_output
    with open(r.log, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(x["step"]) for x in rows] == [1, 2, 3, 4] and rows[1]["val_psnr"] and not rows[0]["val_psnr"]

    m = load_model(r.last, device="cpu")
    s = record_of(m).training
    assert s["phase"] == "pixel" and s["steps"] == 4 and s["loss"] == "l1" and s["n_val"] == 2
    assert math.isfinite(s["val_psnr"]) and math.isfinite(s["input_psnr"]) and s["seconds"] >= 0
    assert "pair folder" in s["data"]
    for a, b in zip(m.state_dict().values(), r.model.state_dict().values()):
        assert torch.equal(a, b)
    state = torch.load(r.resume, weights_only=True)  # plain tensors and Python values only
    assert state["step"] == 4 and "optimizer" in state and "rng" in state


def test_resume_continues_exactly(pairs, tmp_path):
    straight = train(pairs, steps=6, out=tmp_path / "a", **TINY)

    token = CancelToken()
    events = []

    def cb(e):
        events.append(e)
        if isinstance(e, Step) and e.step == 3:
            token.cancel()

    first = train(pairs, steps=6, out=tmp_path / "b", cancel=token, callback=cb, **TINY)
    assert first.cancelled and first.steps == 3 and isinstance(events[-1], Stopped)
    assert events[-1].checkpoint == str(tmp_path / "b" / "last.pt")
    from napari_lfdeblur.network.checkpoint import load_model
    from napari_lfdeblur.network.record import record_of

    assert record_of(load_model(tmp_path / "b" / "last.pt")).training["steps"] == 3

    second = train(pairs, steps=6, out=tmp_path / "b", resume=True, **TINY)
    assert second.steps == 6 and len(second.history) == 6
    np.testing.assert_allclose(second.losses, straight.losses, rtol=0, atol=1e-6)
    for a, b in zip(second.model.state_dict().values(), straight.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_cpu_bfloat16_mixed_precision(pairs, tmp_path, monkeypatch):
    from napari_lfdeblur.network import precision as devices
    from napari_lfdeblur.network.checkpoint import load_model

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)  # so no "emulated" warning
    full = train(pairs, steps=3, amp=False, out=tmp_path / "fp32", **TINY)
    mixed = train(pairs, steps=3, amp="bfloat16", out=tmp_path / "bf16", **TINY)
    auto = train(pairs, steps=3, out=tmp_path / "auto", **TINY)  # amp=True: bfloat16 on such a CPU
    # the same batches and start: the losses agree to bfloat16's ~3 significant digits, but differ,
    # which shows the convolutions really ran in bfloat16
    np.testing.assert_allclose(mixed.losses, full.losses, rtol=0.03)
    assert not np.array_equal(mixed.losses, full.losses)
    np.testing.assert_array_equal(auto.losses, mixed.losses)
    assert mixed.summary["amp"] == "bfloat16" and full.summary["amp"] == "off"
    m = load_model(mixed.last, device="cpu")  # the weights stay float32
    assert all(t.dtype == torch.float32 for t in m.state_dict().values())
    with pytest.raises(TrainingError, match="needs a CUDA GPU"):
        train(pairs, steps=1, amp="float16", **TINY)

    # the summary tells how the steps were computed, also across resumed sessions
    again = train(pairs, steps=3, amp="bfloat16", out=tmp_path / "fp32", resume=True, **TINY)
    assert again.summary["amp"] == "off"  # a finished float32 run: no step ran in bfloat16
    token = CancelToken()
    half = train(pairs, steps=4, amp=False, out=tmp_path / "switch", cancel=token,
                 callback=lambda e: isinstance(e, Step) and e.step == 2 and token.cancel(), **TINY)
    assert half.steps == 2
    token = CancelToken()
    with pytest.warns(RuntimeWarning, match="resuming with amp bfloat16 but the run used off"):
        more = train(pairs, steps=4, amp="bfloat16", out=tmp_path / "switch", resume=True, cancel=token,
                     callback=lambda e: isinstance(e, Step) and e.step == 3 and token.cancel(), **TINY)
    assert more.steps == 3 and more.summary["amp"] == "off to step 2, then bfloat16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same precision as the last session's: no warning
        rest = train(pairs, steps=4, amp="bfloat16", out=tmp_path / "switch", resume=True, **TINY)
    assert rest.steps == 4 and rest.summary["amp"] == "off to step 2, then bfloat16"


def test_cancel_before_the_first_step_and_resume_errors(pairs, tmp_path):
    token = CancelToken()
    token.cancel()
    r = train(pairs, steps=3, out=tmp_path / "c", cancel=token, **TINY)
    assert r.cancelled and r.steps == 0 and (tmp_path / "c" / "resume.pt").is_file()
    with pytest.raises(TrainingError, match="not a napari-lfdeblur resume file"):
        train(pairs, steps=3, resume=tmp_path / "c" / "last.pt", **TINY)
    with pytest.raises(TrainingError, match="no resume file"):
        train(pairs, steps=3, resume=tmp_path / "nothing", **TINY)
    with pytest.raises(TrainingError, match="is for"):
        train(pairs, steps=3, out=tmp_path / "c", resume=True, **{**TINY, "model": 8})


def test_finetune_with_shift_tolerant_loss_keeps_history(pairs, tmp_path):
    p1 = train(pairs, steps=2, out=tmp_path / "p1", **TINY)
    p2 = finetune(pairs, model=p1.last, loss="shift_l1", steps=2, out=tmp_path / "p2",
                  **{k: v for k, v in TINY.items() if k != "model"})
    s = p2.summary
    assert s["phase"] == "feature" and s["loss"] == "shift_l1" and s["lr"] == 5e-5
    assert s["previous"]["phase"] == "pixel" and s["previous"]["steps"] == 2


def test_feature_phase_without_vgg_weights_is_a_clear_error(pairs, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(TrainingError, match="vgg19-dcbb9e9d.pth"):
        train(pairs, phase="feature", steps=1, **TINY)


def test_on_the_fly_procedural_data(tmp_path):
    from napari_lfdeblur.training import open_pairs

    data = open_pairs("synthetic", patch=32, views=5, size=48, pool=2)
    r = train(data, val=0.5, steps=2, val_every=2, val_patch=32, out=None, **TINY)
    assert r.steps == 2 and len(r.validations) == 1 and r.last is None
    assert "procedural" in r.summary["data"] and r.summary["n_val"] == 16


def test_data_loader_workers_give_the_same_run(tmp_path):
    from napari_lfdeblur.training import open_pairs

    # light fields refocused on the fly: the CPU work that workers take off the training process
    data = open_pairs("synthetic", patch=32, views=5, size=48, pool=2)
    here = train(data, steps=4, out=None, **TINY)
    workers = train(data, steps=4, out=None, num_workers=2, **TINY)
    np.testing.assert_array_equal(workers.losses, here.losses)


def test_bad_arguments(pairs):
    with pytest.raises(TrainingError, match="multiple of 8"):
        train(pairs, steps=1, **{**TINY, "patch": 30})
    with pytest.raises(TrainingError, match="phase"):
        train(pairs, steps=1, phase="gan", **TINY)
    with pytest.raises(TrainingError, match="steps"):
        train(pairs, steps=0, **TINY)
    with pytest.raises(TrainingError, match="model"):
        train(pairs, steps=1, **{**TINY, "model": 3.5})
    with pytest.raises(TrainingError, match="finetune needs"):
        finetune(pairs, model=None)
    with pytest.raises(TrainingError, match="num_workers must be 0"):
        train(pairs, steps=1, num_workers=-1, **TINY)
    with pytest.raises(TrainingError, match="threads must be a positive number"):
        train(pairs, steps=1, threads=-4, **TINY)


def test_out_that_is_a_file_is_refused_before_training(pairs, tmp_path):
    (tmp_path / "notes.txt").write_text("a file")
    steps = []
    with pytest.raises(TrainingError, match="is a file; a training run writes a folder"):
        train(pairs, steps=2, out=tmp_path / "notes.txt", callback=steps.append, **TINY)
    assert steps == []  # refused up front (it failed at the first checkpoint, with FileExistsError)
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_summary_json_is_valid_json_with_null_for_missing_scores(pairs, tmp_path):
    import json

    def no_nan(name):
        raise AssertionError(f"summary.json holds {name}")

    train(pairs, steps=2, out=tmp_path / "run", **TINY)  # no validation: no PSNR to report
    text = (tmp_path / "run" / "summary.json").read_text()
    summary = json.loads(text, parse_constant=no_nan)
    assert summary["val_psnr"] is None and summary["best_psnr"] is None and summary["steps"] == 2


def test_resume_from_a_folder_without_checkpoint_says_so(pairs, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "log.csv").write_text("step,loss\n")  # a run killed before its first checkpoint
    with pytest.warns(RuntimeWarning, match="has no checkpoint to resume from.*starting from step 1"):
        r = train(pairs, steps=2, out=tmp_path / "run", resume=True, **TINY)
    assert r.steps == 2


def test_sigterm_saves_and_stops_like_ctrl_c(pairs, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    script = f"""
import os, signal, sys
import torch
torch.set_num_threads(1)
from napari_lfdeblur.training import train

def kill_at_step_3(event):
    if event.kind == "step" and event.step == 3:
        os.kill(os.getpid(), signal.SIGTERM)

try:
    train({str(pairs)!r}, steps=1000, out={str(out)!r}, callback=kill_at_step_3, model=4, batch=2, patch=32,
          device="cpu", seed=3)
except KeyboardInterrupt as e:
    print("stopped:", type(e).__name__)
    sys.exit(143)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 143 and "stopped: Terminated" in r.stdout, (r.returncode, r.stderr[-2000:])
    assert r.returncode != -signal.SIGTERM
    state = torch.load(out / "resume.pt", weights_only=True)  # the steps done are kept: --resume continues
    assert state["step"] >= 3 and (out / "last.pt").is_file()


def test_learning_rate_schedules():
    assert lr_at(0, 100, 1.0) == pytest.approx(1.0)
    assert lr_at(50, 100, 1.0) == pytest.approx(0.505)
    assert lr_at(99, 100, 1.0, min_lr=0.0) < 0.01
    assert lr_at(0, 100, 1.0, warmup=10) == pytest.approx(0.1)
    assert [lr_at(i, 100, 1.0, "step") for i in (0, 49, 50, 75)] == [1.0, 1.0, 0.5, 0.25]
    assert lr_at(70, 100, 0.3, "constant") == 0.3


# ---------------------------------------------------------------- finetune resume, pair sizes, resumed data
def _tiny_vgg(tmp_path):
    """A random narrow VGG19 in torchvision's layout: the feature loss without the ImageNet download."""
    from napari_lfdeblur.training.vgg import VGG19Features

    torch.manual_seed(0)
    net = VGG19Features(layers=("relu5_1",), widths=[4, 4, 8, 8] + [8] * 4 + [16] * 8)
    torch.save(net.state_dict(), tmp_path / "vgg19-tiny.pth")
    return tmp_path / "vgg19-tiny.pth"


def _lfdof_folder(root):
    """Two ground truths with three inputs each, every input at its own exposure (as real LFDOF shots differ)."""
    rng = np.random.default_rng(1)
    for i in range(2):
        sharp = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        (root / "ground_truth").mkdir(parents=True, exist_ok=True)
        (root / "input").mkdir(exist_ok=True)
        Image.fromarray(sharp).save(root / "ground_truth" / f"s{i}.png")
        for k, (gain, offset) in enumerate([(0.5, 64), (0.7, 20), (0.4, 100)]):
            Image.fromarray((sharp * gain + offset).astype(np.uint8)).save(root / "input" / f"s{i}_{k}.png")
    return root


def test_finetune_resume_continues_exactly(tiny_pair_folder, tmp_path):
    """As train's: a finetune stopped at step 3 and resumed gives the uninterrupted run's losses and weights.

    It was off (by about a grey level on real LFDOF shots): the exposure-matched target of a ground truth
    shared by several inputs was cached for whichever input came first, which depends on where the run starts.
    """
    from napari_lfdeblur.network.checkpoint import save_model
    from napari_lfdeblur.network.drbnet import DRBNet
    from napari_lfdeblur.training import open_pairs

    torch.manual_seed(0)
    start = save_model(DRBNet(base=4), tmp_path / "start.pt")
    lfdof = _lfdof_folder(tmp_path / "lfdof")
    opts = {**{k: v for k, v in TINY.items() if k != "model"}, "model": start, "steps": 6,
            "loss": "vgg+0.1*shift_l1", "vgg_weights": _tiny_vgg(tmp_path)}

    def data():  # opened afresh for each session, as a new process would
        return open_pairs([tiny_pair_folder, lfdof], patch=32, match_exposure=True)

    straight = finetune(data(), out=tmp_path / "a", **opts)
    token = CancelToken()
    first = finetune(data(), out=tmp_path / "b", cancel=token,
                     callback=lambda e: isinstance(e, Step) and e.step == 3 and token.cancel(), **opts)
    assert first.cancelled and first.steps == 3
    second = finetune(data(), out=tmp_path / "b", resume=True, **opts)
    assert second.steps == 6 and second.summary["phase"] == "feature"
    np.testing.assert_array_equal(second.losses, straight.losses)
    for a, b in zip(second.model.state_dict().values(), straight.model.state_dict().values()):
        assert torch.equal(a, b)


def _flat_pairs(root, sizes):
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name, (h, w) in sizes.items():
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        Image.fromarray(img).save(root / "sharp" / f"{name}.png")
        Image.fromarray(img // 2 + 64).save(root / "blur" / f"{name}.png")
    return root


def test_pairs_smaller_than_the_patch_are_refused_or_left_out(tmp_path):
    """finetune trained on 1x1 pairs (edge-padded to flat patches) and reported success; train did too."""
    tiny = _flat_pairs(tmp_path / "tiny", {"dot": (1, 1), "speck": (1, 1)})
    with pytest.raises(TrainingError, match=r"no training pair is as large as the 32-px patch: .*dot\.png \(1x1 px\)"
                                            r".*at least 8x8 px"):
        finetune(tiny, steps=1, loss="shift_l1", **TINY)
    with pytest.raises(TrainingError, match=r"32-px patch: .*small\.png \(24x20 px\).*patch=16 or less"):
        train(_flat_pairs(tmp_path / "small", {"small": (20, 24)}), steps=1, **TINY)
    # some pairs fine: the others are named and left out
    mixed = _flat_pairs(tmp_path / "mixed", {"big1": (40, 40), "big2": (48, 40), "dot": (1, 1)})
    with pytest.warns(RuntimeWarning, match=r"1 of the 3 training pairs are smaller than the 32-px patch and are "
                                            r"left out: .*dot\.png \(1x1 px\)"):
        r = finetune(mixed, steps=1, loss="shift_l1", **TINY)
    assert r.steps == 1 and r.summary["n_train"] == 2


def test_resume_with_other_data_is_refused(pairs, tmp_path):
    """--resume with another data folder continued without a word: the run would match no uninterrupted one."""
    other = _flat_pairs(tmp_path / "other", {f"o{i}": (48, 48) for i in range(8)})
    token = CancelToken()
    train(pairs, steps=4, out=tmp_path / "run", cancel=token,
          callback=lambda e: isinstance(e, Step) and e.step == 2 and token.cancel(), **TINY)
    with pytest.raises(TrainingError, match=r"was trained on pair folder .*pairs \(dpdd layout, 8 pairs.*; you gave "
                                            r"pair folder .*other .*same data, or train in a new output folder"):
        train(other, steps=4, out=tmp_path / "run", resume=True, **TINY)
    with pytest.raises(TrainingError, match=r"with the validation you gave it would train on .*6 pairs.*same val="):
        train(pairs, steps=4, out=tmp_path / "run", resume=True, val=0.25, **TINY)
    import shutil

    moved = shutil.copytree(pairs, tmp_path / "elsewhere" / "pairs")  # the same files in another place
    r = train(moved, steps=4, out=tmp_path / "run", resume=True, **TINY)  # the same data: it continues
    assert r.steps == 4 and not r.cancelled


def test_a_full_disk_while_saving_resume_pt_is_one_output_error(pairs, tmp_path, monkeypatch):
    """torch's zip writer, given a path, reports a full disk only as its own RuntimeError (a raw traceback);
    given our file object, the ENOSPC reaches the atomic write, which says it in one line."""
    import errno
    import os

    from napari_lfdeblur.errors import OutputError

    real_save = torch.save

    class Full:
        def write(self, b):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self):
            pass

    def save(obj, f, **kw):
        if "resume" not in str(getattr(f, "name", f)):
            return real_save(obj, f, **kw)
        if isinstance(f, (str, os.PathLike)):  # as torch does for a path on a full disk
            raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file")
        return real_save(obj, Full(), **kw)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(OutputError, match="No space left on device") as e:
        train(pairs, steps=2, out=tmp_path / "run", **TINY)
    assert "\n" not in str(e.value) and "enforce fail" not in str(e.value)
    assert not (tmp_path / "run" / "resume.pt").exists()
