"""TrainConfig: the one home of the training options, their defaults and their checks.

The CLI, the Train widget and scripts/train_default.py read their defaults from it; train() and finetune()
build it; a run's summary records it and gives it back.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import subprocess
import sys

import numpy as np
import pytest

from napari_lfdeblur.errors import TrainingError
from napari_lfdeblur.training.config import (
    DEFAULT_LOSS,
    DEFAULT_LR,
    FINETUNE_PHASE,
    INTERACTIVE_STEPS,
    MAX_BATCH,
    MAX_PATCH,
    MAX_STEP_PIXELS,
    MAX_STEPS,
    NEW_NETWORK_BASE,
    SUGGESTED_VAL_FRACTION,
    TrainConfig,
    amp_choice,
)

D = TrainConfig()


# ---------------------------------------------------------------- one home for the defaults
@pytest.mark.parametrize("command", ["train", "finetune"])
def test_the_cli_parser_defaults_are_the_configs(command):
    from napari_lfdeblur.cli import build_parser

    argv = [command, "synthetic", "-o", "run"] + (["--model", "m.pt"] if command == "finetune" else [])
    a = build_parser().parse_args(argv)
    assert (a.steps, a.batch, a.patch, a.lr, a.schedule) == (D.steps, D.batch, D.patch, D.lr, D.schedule)
    assert (a.device, a.seed, a.workers, a.threads, a.val_every) == (D.device, D.seed, D.num_workers, D.threads,
                                                                      D.val_every)
    assert a.amp == amp_choice(D.amp) == "auto"
    if command == "train":
        assert a.phase == D.phase and a.base == NEW_NETWORK_BASE


def test_the_cli_help_gives_the_configs_defaults():
    from napari_lfdeblur.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    train_help = " ".join(sub.choices["train"].format_help().split())
    finetune_help = " ".join(sub.choices["finetune"].format_help().split())
    assert f"default {D.steps}" in train_help and f"default {D.patch}" in train_help
    assert f"{DEFAULT_LR['pixel']:g} in the pixel phase" in train_help
    assert f"(default {DEFAULT_LR[FINETUNE_PHASE]:g})" in finetune_help


def test_the_config_and_the_cli_parser_load_no_torch():
    code = ("import sys\n"
            "from napari_lfdeblur.training.config import TrainConfig\n"
            "from napari_lfdeblur.cli import build_parser\n"
            "TrainConfig(steps=3).to_dict()\n"
            "build_parser().parse_args(['train', 'synthetic', '-o', 'run'])\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_cli_builds_the_config(monkeypatch, tmp_path):
    import napari_lfdeblur.training as training
    from napari_lfdeblur.cli import main

    calls = []

    class Result:
        cancelled, steps, total, last, best = False, 0, 0, None, None

    def fake(data, **kw):
        calls.append(kw)
        return Result()

    monkeypatch.setattr(training, "train", fake)
    monkeypatch.setattr(training, "finetune", fake)
    assert main(["train", "synthetic", "-o", str(tmp_path / "a"), "--steps", "7", "--patch", "64", "--amp", "off",
                 "--workers", "2", "--resume"]) == 0
    assert main(["finetune", "synthetic", "-o", str(tmp_path / "b"), "--model", "m.pt", "--lr", "1e-5"]) == 0
    (t, f) = (c["config"] for c in calls)
    assert t == TrainConfig(steps=7, patch=64, amp=False, num_workers=2, out=tmp_path / "a", resume=True)
    assert calls[0]["model"] == {"base": NEW_NETWORK_BASE, "input_detail": True}
    assert f == TrainConfig(phase=FINETUNE_PHASE, lr=1e-5, out=tmp_path / "b")
    assert calls[1]["model"] == "m.pt"


def test_a_bad_option_on_the_command_line_is_refused_before_the_data_is_read(tmp_path, capsys):
    from napari_lfdeblur.cli import main

    # a folder that does not exist: the patch is refused first, in the command line's words
    assert main(["train", str(tmp_path / "nothing"), "-o", str(tmp_path / "run"), "--patch", "30"]) == 2
    assert "patch must be a multiple of 8" in capsys.readouterr().err


@pytest.mark.gui
def test_the_train_widgets_starting_values_are_the_configs(make_napari_viewer, monkeypatch, tmp_path):
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Train")
    assert (w.batch.value, w.patch.value) == (D.batch, D.patch)
    assert w.lr.value == pytest.approx(D.learning_rate) and D.learning_rate == DEFAULT_LR["pixel"]
    assert w.device.value == D.device and w.amp.value is True and D.amp is True
    assert w.net_width.value == NEW_NETWORK_BASE
    # a short run with validation, unlike the API's and the CLI's defaults
    assert w.steps.value == INTERACTIVE_STEPS and w.val_fraction.value == pytest.approx(SUGGESTED_VAL_FRACTION)
    w.phase.value = w.phase.choices[1]
    assert w.lr.value == pytest.approx(DEFAULT_LR["feature"])
    w.phase.value = w.phase.choices[0]
    assert w.lr.value == pytest.approx(DEFAULT_LR["pixel"])
    w.source.value = w.source.choices[0]  # (the feature phase chose a pair folder)

    # Start hands train() one TrainConfig (and the data, the validation share and the network beside it)
    started = {}
    monkeypatch.setattr(type(w), "start_job", lambda self, func, **kw: started.update(kw))
    w.out.value = str(tmp_path / "run")
    w.steps.value = 40
    w.start()
    config = started["config"]
    assert isinstance(config, TrainConfig) and config.steps == 40 and config.out == tmp_path / "run"
    assert config.replace(steps=D.steps, lr=None, out=None, val_every=None, val_samples=0) == TrainConfig()
    assert started["data"] == "synthetic" and started["val"] == pytest.approx(SUGGESTED_VAL_FRACTION)
    assert started["model"] == {"base": NEW_NETWORK_BASE, "input_detail": True}


@pytest.fixture
def script(train_default_script):
    return train_default_script


def test_the_default_model_script_builds_its_phases_from_the_config(script, tmp_path):
    args = script.parse(["--stage2", "steps=100,patch=256,lr=1e-4", "--stage2", "steps=50,warmup=5,seed=2"])
    assert (args.batch, args.patch, args.seed, args.device, args.workers, args.base) == (
        D.batch, D.patch, D.seed, D.device, D.num_workers, NEW_NETWORK_BASE)
    p1 = script.phase1_config(args, tmp_path / "phase1", "procedural")
    assert p1 == TrainConfig(phase="pixel", loss="l1", steps=args.steps1, lr=args.lr1, val_every=args.steps1 // 6,
                             out=tmp_path / "phase1", resume=True, checkpoint_minutes=5.0, description="procedural")
    s1, s2 = (script.stage_config(args, st) for st in args.stages2)
    assert (s1.phase, s1.loss, s1.steps, s1.patch, s1.lr, s1.val_every) == (FINETUNE_PHASE, "shift_l1", 100, 256,
                                                                           1e-4, 20)
    assert (s2.steps, s2.warmup, s2.seed, s2.patch, s2.lr) == (50, 5, 2, args.patch, args.lr2)
    with pytest.raises(TrainingError, match="multiple of 8"):
        script.stage_config(args, {**args.stages2[0], "patch": 100})


# ---------------------------------------------------------------- per-phase defaults
def test_the_phase_decides_what_none_means():
    from napari_lfdeblur.training import make_loss

    assert TrainConfig().learning_rate == DEFAULT_LR["pixel"]
    assert TrainConfig(phase="feature").learning_rate == DEFAULT_LR["feature"]
    assert TrainConfig(phase="feature", lr=1e-3).learning_rate == 1e-3
    assert str(make_loss(None, "pixel")) == DEFAULT_LOSS["pixel"]
    assert TrainConfig(steps=50).validation_interval() == 5 and TrainConfig(steps=5).validation_interval() == 1
    assert TrainConfig(steps=50, val_every=7).checkpoint_interval(validating=True) == 7
    assert TrainConfig(steps=50, val_every=7).checkpoint_interval(validating=False) == 5
    assert TrainConfig(steps=50, checkpoint_every=3).checkpoint_interval(validating=True) == 3


def test_the_schedule_function_defaults_are_the_configs():
    from napari_lfdeblur.training import lr_at

    lr = inspect.signature(lr_at).parameters
    assert [lr[k].default for k in ("schedule", "warmup", "min_lr", "milestones", "gamma")] == [
        D.schedule, D.warmup, D.min_lr, D.milestones, D.gamma]


# ---------------------------------------------------------------- checks
NAN, INF = float("nan"), float("inf")

#: for every option, values it refuses: each one a TrainingError that names the option, the value and its default.
#: A new option without an entry here fails test_every_option_has_a_check.
BAD = {
    "phase": ["gan", None, 1],
    "loss": [3, "", "   ", ["l1"]],
    "steps": [0, -1, 2.5, True, "100", MAX_STEPS + 1],
    "batch": [0, -4, 2.5, MAX_BATCH + 1],
    "patch": [30, 8, 0, True, 128.0, 2056, 1048576],  # 1048576: 3 TiB of pairs
    "lr": [0, -1e-4, NAN, INF, "fast", True, 10.0, 10**400],
    "schedule": ["linear", None],
    "warmup": [-5, 2.5, None],
    "min_lr": [-1, 1.5, NAN, INF, None, "0.1"],  # -1: a negative learning rate at the end of the run
    "milestones": ["abc", "0.5", 0.5, None, {"a": 0.5}, [0.75, 0.5], [0.5, 0.5], [0, 0.5], [0.5, 1.0], [1.5],
                   [NAN], [-0.2], [True]],
    "gamma": [NAN, 0, -0.5, 1.5, INF, None],
    "weight_decay": [-1, NAN, INF, 2.0, None],
    "grad_clip": [-1, -1e-3, NAN, INF, "1.0", True],  # -1 flipped the gradients: loss 0.30 -> 147,093
    "device": ["cdua", "cuda:x", "cuda 1", "", 3],
    "amp": ["fp64", "", None, 1],
    "seed": [-1, 2**32, 1.5, None],
    "num_workers": [-1, 1.0, 1000],
    "threads": [0, -2, 1.5, 4096],
    "distributed": ["yes", 1, None],
    "channels_last": [1, None, "True"],
    "compile": ["", 1, None],
    "val_every": [0, -1, 2.5, MAX_STEPS + 1],
    "val_patch": [0, 8, 32.0, 8192, 1048576],
    "val_batch": [0, -1, 1.5, 4096],
    "val_samples": [-1, 1000, 0.5],
    "val_seed": [-1, 2**32, None],
    "out": ["", 3],
    "resume": ["", 1, 2.5],
    "checkpoint_every": [0, -5, 1.5],
    "checkpoint_minutes": [-1, NAN, INF, "10"],
    "log_every": [0, -1, 2.5],
    "description": [3, b"text"],
    "max_shift": [-1, 100, 1.5],
    "multiscale": [1, "yes"],
    "vgg_weights": ["", 3],
    "vgg_download": [1, None, "yes"],
}


def _said(message: str, name: str, value) -> None:
    """One message: the option, the value given, what the option takes, and its default (what to do)."""
    shown = repr(value)
    assert message.startswith(f"{name} must be "), message
    assert f"got {shown if len(shown) <= 80 else shown[:77]}" in message, message
    assert f"leave {name} out: its default is {getattr(D, name)!r}" in message, message


@pytest.mark.parametrize("name, value", [(n, v) for n, vs in BAD.items() for v in vs])
def test_bad_options_are_refused_with_what_to_do(name, value):
    with pytest.raises(TrainingError) as e:
        TrainConfig(**{name: value})
    _said(str(e.value), name, value)
    with pytest.raises(TrainingError) as e:
        TrainConfig().replace(**{name: value})  # a change is checked like a new config
    _said(str(e.value), name, value)


def test_every_option_has_a_check():
    names = [f.name for f in dataclasses.fields(TrainConfig)]
    assert [n for n in names if n not in BAD] == [], "options without a refused value in BAD"
    assert [n for n in BAD if n not in names] == []
    # the check sits beside the default, in the field itself
    assert [f.name for f in dataclasses.fields(TrainConfig) if not callable(f.metadata.get("check"))] == []


@pytest.mark.parametrize("options, kept", [
    ({"patch": 16}, {"patch": 16}),
    ({"patch": MAX_PATCH, "batch": 16}, {"patch": MAX_PATCH, "batch": 16}),
    ({"batch": MAX_BATCH, "patch": 256}, {"batch": MAX_BATCH}),
    ({"steps": np.int64(MAX_STEPS)}, {"steps": MAX_STEPS}),
    ({"lr": 1}, {"lr": 1.0}),
    ({"lr": np.float32(1e-4)}, {"lr": pytest.approx(1e-4)}),
    ({"min_lr": 0}, {"min_lr": 0.0}),  # the cosine schedule down to zero
    ({"min_lr": 1}, {"min_lr": 1.0}),
    ({"gamma": 1}, {"gamma": 1.0}),
    ({"milestones": []}, {"milestones": ()}),
    ({"milestones": [0.1, 0.9]}, {"milestones": (0.1, 0.9)}),
    ({"milestones": np.array([0.25, 0.5])}, {"milestones": (0.25, 0.5)}),
    ({"weight_decay": 1e-4}, {"weight_decay": 1e-4}),
    ({"grad_clip": 0}, {"grad_clip": None}),  # the trainer reads 0 as off: the config says off one way
    ({"grad_clip": None}, {"grad_clip": None}),
    ({"grad_clip": 1000}, {"grad_clip": 1000.0}),
    ({"checkpoint_minutes": 0}, {"checkpoint_minutes": None}),
    ({"warmup": 10, "steps": 5}, {"warmup": 10}),
    ({"seed": 2**32 - 1, "val_seed": 7}, {"seed": 2**32 - 1, "val_seed": 7}),
    ({"device": "cuda:1"}, {"device": "cuda:1"}),
    ({"device": "CPU"}, {"device": "CPU"}),
    ({"device": None}, {"device": None}),
    ({"amp": "BFloat16"}, {"amp": "bfloat16"}),
    ({"amp": "float16"}, {"amp": "float16"}),
    ({"amp": "off"}, {"amp": False}),
    ({"threads": 1, "num_workers": 8}, {"threads": 1, "num_workers": 8}),
    ({"distributed": False}, {"distributed": False}),
    ({"val_patch": None, "val_batch": 8, "val_samples": 4}, {"val_patch": None, "val_batch": 8}),
    ({"val_patch": 4096}, {"val_patch": 4096}),
    ({"resume": "runs/a/resume.pt"}, {"resume": "runs/a/resume.pt"}),
    ({"max_shift": 0, "multiscale": False}, {"max_shift": 0, "multiscale": False}),
    ({"log_every": 1, "description": "plants"}, {"log_every": 1}),
])
def test_the_values_a_run_can_need_are_taken(options, kept):
    cfg = TrainConfig(**options)
    assert {k: getattr(cfg, k) for k in kept} == kept
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_the_options_are_checked_with_torch_objects_too():
    import torch

    cfg = TrainConfig(device=torch.device("cpu"), loss=torch.nn.L1Loss())
    assert cfg.device == torch.device("cpu") and isinstance(cfg.loss, torch.nn.L1Loss)
    with pytest.raises(TrainingError, match="loss must be"):
        TrainConfig(loss=torch.nn.L1Loss)  # the class, not a module


def test_one_steps_pairs_must_fit_in_memory():
    TrainConfig(batch=16, patch=MAX_PATCH)  # 64 Mpx: the most
    with pytest.raises(TrainingError, match=r"batch \* patch² must be at most .* got batch=32, patch=2048") as e:
        TrainConfig(batch=32, patch=MAX_PATCH)
    assert "lower batch or patch" in str(e.value)
    assert MAX_STEP_PIXELS == 16 * MAX_PATCH**2


def test_the_options_are_checked_in_every_door(tmp_path):
    """train(), finetune(), TrainConfig.from_dict and Trainer refuse a bad option before the data is read (the
    data here does not exist: a check that came later would say so instead)."""
    from napari_lfdeblur.training import finetune, train
    from napari_lfdeblur.training.trainer import Trainer

    nothing = tmp_path / "nothing"
    with pytest.raises(TrainingError, match="grad_clip must be a positive number"):
        train(nothing, grad_clip=-1, steps=1)
    with pytest.raises(TrainingError, match="min_lr must be a number from 0 to 1"):
        train(nothing, config=TrainConfig(steps=1), min_lr=-1)
    with pytest.raises(TrainingError, match="gamma must be"):
        finetune(nothing, model=tmp_path / "m.pt", gamma=NAN)
    with pytest.raises(TrainingError, match="warmup must be"):
        Trainer(nothing, warmup=-5)
    with pytest.raises(TrainingError, match="milestones must be"):
        TrainConfig.from_dict({**D.to_dict(), "milestones": "abc"})
    with pytest.raises(TrainingError, match="val_batch must be"):
        TrainConfig.from_dict({"val_batch": 0})
    assert not nothing.exists() and not (tmp_path / "m.pt").exists()


def test_unknown_options_name_the_close_one():
    from napari_lfdeblur.training import train

    with pytest.raises(TypeError, match="unknown training option 'stepz' \\(did you mean 'steps'\\?\\)"):
        train("synthetic", stepz=3)
    with pytest.raises(TypeError, match="unknown training option"):
        TrainConfig().replace(learning_rate=1e-3)
    with pytest.raises(TrainingError, match="unknown training option 'futur'"):
        TrainConfig.from_dict({**D.to_dict(), "futur": 1})
    with pytest.raises(TrainingError, match="config must be a TrainConfig"):
        train("synthetic", config={"steps": 3})


# ---------------------------------------------------------------- recorded and made again
def test_a_config_round_trips_through_its_dict_and_json(tmp_path):
    from napari_lfdeblur.network.checkpoint import _check_plain

    cfg = TrainConfig(phase="feature", loss="vgg+0.1*shift_l1", steps=np.int64(300), patch=192, lr=3e-5,
                      schedule="step", milestones=[0.3, 0.9], grad_clip=None, amp="bfloat16", threads=2,
                      out=tmp_path / "run", resume=True, checkpoint_minutes=None, vgg_weights=tmp_path / "vgg.pth")
    d = cfg.to_dict()
    _check_plain(d, "config")  # what a checkpoint can hold
    assert d["out"] == str(tmp_path / "run") and d["milestones"] == [0.3, 0.9] and type(d["steps"]) is int
    again = TrainConfig.from_dict(json.loads(json.dumps(d)))
    assert again.to_dict() == d
    assert again == cfg.replace(vgg_weights=str(tmp_path / "vgg.pth"))  # a path option comes back as its text
    assert TrainConfig(amp="auto") == TrainConfig(amp=True) and TrainConfig(amp="off").amp is False
    assert TrainConfig.from_dict({"steps": 9}) == TrainConfig(steps=9)  # options it lacks keep their defaults
    assert TrainConfig.from_dict(D.to_dict()) == D


@pytest.fixture
def pairs(tiny_pair_folder):
    return tiny_pair_folder


def test_the_run_summary_records_the_config(pairs, tmp_path, one_torch_thread):
    from napari_lfdeblur.network.checkpoint import load_model
    from napari_lfdeblur.network.record import record_of
    from napari_lfdeblur.training import finetune, train

    cfg = TrainConfig(steps=5, batch=1, patch=32, device="cpu", seed=1, out=tmp_path / "p1", lr=1e-4)
    r = train(pairs, model=4, config=cfg, steps=2)  # a keyword changes the config
    ran = cfg.replace(steps=2)
    assert r.total == 2 and r.summary["config"] == ran.to_dict()
    assert TrainConfig.from_dict(r.summary["config"]) == ran
    assert json.loads((tmp_path / "p1" / "summary.json").read_text())["config"] == ran.to_dict()
    assert record_of(load_model(r.last, device="cpu")).training["config"] == ran.to_dict()
    assert r.summary["lr"] == 1e-4 and r.summary["loss"] == DEFAULT_LOSS["pixel"]

    # finetune: the feature phase and its learning rate unless told otherwise; the previous run's config is kept
    r2 = finetune(pairs, model=r.last, loss="shift_l1", steps=1, batch=1, patch=32, device="cpu")
    assert r2.summary["config"]["phase"] == FINETUNE_PHASE and r2.summary["config"]["lr"] is None
    assert r2.summary["lr"] == DEFAULT_LR[FINETUNE_PHASE]
    assert r2.summary["previous"]["config"] == ran.to_dict()
    # a config given to finetune is run as it is
    r3 = finetune(pairs, model=r.last, config=cfg.replace(out=None, steps=1, loss="shift_l1"))
    assert r3.summary["phase"] == "pixel" and r3.summary["config"]["loss"] == "shift_l1"
