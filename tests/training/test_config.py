"""TrainConfig: the one home of the training options, their defaults and their checks.

The CLI, the Train widget and scripts/train_default.py read their defaults from it; train() and finetune()
build it; a run's summary records it and gives it back.
"""

from __future__ import annotations

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
@pytest.mark.parametrize("options, match", [
    ({"phase": "gan"}, "phase must be one of"),
    ({"schedule": "linear"}, "schedule must be one of"),
    ({"steps": 0}, "steps must be a positive integer"),
    ({"batch": 2.5}, "batch must be a positive integer"),
    ({"patch": True}, "patch must be a positive integer"),
    ({"patch": 30}, "patch must be a multiple of 8"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"lr": float("nan")}, "lr must be a positive number"),
    ({"lr": "fast"}, "lr must be a positive number"),
    ({"num_workers": -1}, "num_workers must be 0"),
    ({"threads": 0}, "threads must be a positive number"),
])
def test_bad_options_are_refused_with_what_to_do(options, match):
    with pytest.raises(TrainingError, match=match):
        TrainConfig(**options)
    with pytest.raises(TrainingError, match=match):
        TrainConfig().replace(**options)  # a change is checked like a new config


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
    from napari_lfdeblur.training import finetune, train

    cfg = TrainConfig(steps=5, batch=1, patch=32, device="cpu", seed=1, out=tmp_path / "p1", lr=1e-4)
    r = train(pairs, model=4, config=cfg, steps=2)  # a keyword changes the config
    ran = cfg.replace(steps=2)
    assert r.total == 2 and r.summary["config"] == ran.to_dict()
    assert TrainConfig.from_dict(r.summary["config"]) == ran
    assert json.loads((tmp_path / "p1" / "summary.json").read_text())["config"] == ran.to_dict()
    assert load_model(r.last, device="cpu").training_summary["config"] == ran.to_dict()
    assert r.summary["lr"] == 1e-4 and r.summary["loss"] == DEFAULT_LOSS["pixel"]

    # finetune: the feature phase and its learning rate unless told otherwise; the previous run's config is kept
    r2 = finetune(pairs, model=r.last, loss="shift_l1", steps=1, batch=1, patch=32, device="cpu")
    assert r2.summary["config"]["phase"] == FINETUNE_PHASE and r2.summary["config"]["lr"] is None
    assert r2.summary["lr"] == DEFAULT_LR[FINETUNE_PHASE]
    assert r2.summary["previous"]["config"] == ran.to_dict()
    # a config given to finetune is run as it is
    r3 = finetune(pairs, model=r.last, config=cfg.replace(out=None, steps=1, loss="shift_l1"))
    assert r3.summary["phase"] == "pixel" and r3.summary["config"]["loss"] == "shift_l1"
