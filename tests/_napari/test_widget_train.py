"""The Train widget in a real viewer: a short run with live curves, Stop, and the result offered for deblurring."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gui


@pytest.fixture
def train_widget(make_napari_viewer, tmp_path):
    from napari_lfdeblur._napari._widget_train import TrainWidget

    torch.set_num_threads(1)
    viewer = make_napari_viewer()
    w = TrainWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.net_width.value = 4
    w.device.value = "cpu"
    w.patch.value = 32
    w.batch.value = 1
    w.out.value = str(tmp_path / "run")
    return viewer, w


def _start_then_stop(w, qtbot, steps: int, after: int):
    """Start a run of ``steps``, press Stop once ``after`` steps are done, wait until it has stopped."""
    w.steps.value = steps
    w.start()
    qtbot.waitUntil(lambda: w.progress.value >= after, timeout=120000)
    w.stop()
    qtbot.waitUntil(lambda: w.start_button.enabled, timeout=120000)


def test_short_run_curves_and_model_registration(train_widget, qtbot):
    from napari_lfdeblur._napari._models import model_choices

    viewer, w = train_widget
    w.steps.value = 6
    assert w.arguments()["model"] == {"base": 4, "input_detail": True}  # a new network starts as the identity
    w.paper_arch.value = True
    assert w.arguments()["model"] == {"base": 4, "input_detail": False}
    w.paper_arch.value = False
    w.amp.value = False
    assert w.arguments()["amp"] is False
    w.amp.value = True  # the default: mixed precision where the device computes it fast
    assert w.arguments()["amp"] is True
    w.start()
    qtbot.waitUntil(lambda: w.result is not None or w.status.value.startswith("Error"), timeout=120000)
    assert w.result is not None, w.status.value
    assert w.result.steps == 6
    from napari_lfdeblur.network.precision import autocast_dtype

    expected = autocast_dtype(True, "cpu")
    assert w.result.summary["amp"] == (str(expected).removeprefix("torch.") if expected else "off")
    assert len(w.curves.losses) == 6 and all(loss > 0 for loss in w.curves.losses)
    assert w.curves.psnrs, "validation ran and was plotted"
    assert w.progress.value == 6
    assert any(name.startswith("training sample") for name in [lyr.name for lyr in viewer.layers])
    assert Path(w.result.last).exists()
    assert any(c.startswith("trained:") for c in model_choices())
    from napari_lfdeblur import load_model

    assert load_model(w.result.last, device="cpu").config == {
        "arch": "DRBNet", "base": 4, "res_blocks": 2, "input_detail": True}


def test_stop_leaves_a_valid_checkpoint(train_widget, qtbot):
    from napari_lfdeblur import load_model

    viewer, w = train_widget
    _start_then_stop(w, qtbot, steps=10_000, after=1)
    assert w.result is not None and w.result.cancelled
    assert 1 <= w.result.steps < 10_000
    model = load_model(w.result.last, device="cpu")
    assert model.config["base"] == 4
    assert "stopped" in w.status.value


def test_missing_folder_is_reported(train_widget, qtbot):
    viewer, w = train_widget
    w.source.value = "pair folder"
    w.start()
    assert w.status.value.startswith("Error")
    assert w.start_button.enabled


def test_pair_folder_with_exposure_matching(train_widget, dpdd_pairs):
    """The option shows for pair folders only and hands the trainer exposure-matched pairs."""
    viewer, w = train_widget
    assert w.match_exposure.native.isHidden()  # (the viewer is not shown: ask Qt whether it is hidden)
    w.source.value = "pair folder"
    assert not w.match_exposure.native.isHidden()
    w.folder.value = str(dpdd_pairs)
    assert w.arguments()["data"] == str(dpdd_pairs)
    w.match_exposure.value = True
    data = w.arguments()["data"]
    assert "exposure matched" in data.describe() and data.patch == 32


def test_light_field_layer_trains_with_validation_on_a_held_out_band(train_widget, qtbot):
    """The default validation fraction works on one light-field layer: a band of its views is held out."""
    from napari_lfdeblur._napari._layers import lightfield_layer
    from napari_lfdeblur.lightfield.synthetic import synthetic_lightfield

    viewer, w = train_widget
    data, kwargs, _ = lightfield_layer(synthetic_lightfield(seed=3, views=5, size=96, disparity_range=(-1, 1)))
    layer = viewer.add_image(data, **kwargs)
    w.source.value = "light-field layer"
    w.reset_choices()
    w.lf_layer.value = layer
    assert w.val_fraction.value == 0.15
    w.steps.value = 4
    w.start()
    qtbot.waitUntil(lambda: w.result is not None or w.status.value.startswith("Error"), timeout=120000)
    assert w.result is not None, w.status.value
    assert w.curves.psnrs, "validation ran on the held-out band and was plotted"
    assert "held out" in w.result.summary["val_data"]


def test_stop_then_start_continues_the_run_and_never_overwrites_it(train_widget, qtbot):
    viewer, w = train_widget
    w.val_fraction.value = 0.0  # (no validation: this is about the run's folder and steps)
    _start_then_stop(w, qtbot, steps=40, after=2)
    stopped_at = w.result.steps
    assert w.result.cancelled and stopped_at < 40
    assert w.resume.value, "after Stop, Start continues the run"
    # unticked, Start refuses the folder instead of overwriting the stopped run's checkpoints
    w.resume.value = False
    w.start()
    qtbot.waitUntil(lambda: w.start_button.enabled and w.status.value.startswith("Error"), timeout=120000)
    assert "already holds a training run" in w.status.value
    w.resume.value = True
    w.result = None
    w.start()
    qtbot.waitUntil(lambda: w.result is not None or w.status.value.startswith("Error"), timeout=120000)
    assert w.result is not None and not w.result.cancelled, w.status.value
    assert w.result.steps == 40 and w.progress.value == 40
    assert len(w.curves.losses) == 40  # the curve goes on where it stopped


def test_a_finished_run_keeps_its_default_folder_and_the_next_start_gets_a_new_one(train_widget, qtbot,
                                                                                    tmp_path, monkeypatch):
    from napari_lfdeblur._napari import _widget_train

    monkeypatch.setattr(_widget_train, "_RUNS_HOME", tmp_path / "lfdeblur-runs")
    viewer, w = train_widget
    first = _widget_train._new_run_folder()
    w.out.value = str(first)
    w.val_fraction.value = 0.0  # (no validation: this is about the run's folder)
    w.steps.value = 2
    w.start()
    qtbot.waitUntil(lambda: w.result is not None and w.start_button.enabled, timeout=120000)
    assert (first / "last.pt").exists()
    second = Path(str(w.out.value))
    assert second != first and second.parent == first.parent and not second.exists()
    assert not w.resume.value


def test_procedural_scenes_textured_with_an_image_layer(train_widget, qtbot):
    """A layer of the user's own sharp images textures the procedural light fields (what the user sees)."""
    import numpy as np

    from napari_lfdeblur._napari._layers import layer_images
    from napari_lfdeblur._napari._widget_train import Prepared

    viewer, w = train_widget
    rng = np.random.default_rng(0)
    stack = rng.uniform(100, 4000, (3, 80, 90)).astype(np.float32)  # a microscope-like float stack
    layer = viewer.add_image(stack, name="my cells", contrast_limits=(100, 4000))
    assert w.source.value == "procedural light fields" and not w.texture_layer.native.isHidden()
    w.reset_choices()
    assert w.texture_layer.value is None  # bundled textures unless a layer is picked
    assert w.arguments()["data"] == "synthetic"
    w.texture_layer.value = layer
    data = w.arguments()["data"]
    # converted in the worker when the run starts, from a snapshot taken now (not in the GUI thread)
    assert isinstance(data, Prepared) and "my cells" in data.what
    layer.contrast_limits = (0, 1)  # a change after Start does not reach the run
    snapshot = data.make.args[0]
    np.testing.assert_allclose(layer_images(snapshot)[1], (stack[1] - 100) / 3900, atol=1e-6)
    scenes = data.make()
    assert "textured with 3 of your images" in scenes.describe()
    layer.contrast_limits = (100, 4000)
    planes = layer_images(layer)
    assert len(planes) == 3 and planes[0].shape == (80, 90)
    np.testing.assert_allclose(planes[1], (stack[1] - 100) / 3900, atol=1e-6)
    w.val_fraction.value = 0.0  # (no validation: this is about the textures reaching the run)
    w.steps.value = 3
    w.start()
    qtbot.waitUntil(lambda: w.result is not None or w.status.value.startswith("Error"), timeout=120000)
    assert w.result is not None, w.status.value
    assert "textured with 3 of your images" in w.result.summary["data"]
    w.source.value = "pair folder"
    assert w.texture_layer.native.isHidden()


# ---------------------------------------------------------------- what a refused Start leaves, the ETA
def _text(status: str) -> str:
    """A status as the user reads it (an error's status is rich text: a details link, line breaks)."""
    import html
    import re

    return html.unescape(re.sub(r"<br>", "\n", re.sub(r"<a [^>]*>[^<]*</a>", "", status)))


@pytest.fixture
def train_dock(make_napari_viewer, tmp_path):
    """The Train dock as a user opens it (Plugins › Light-field deblurring › Train), set for a tiny CPU run."""
    torch.set_num_threads(1)
    viewer = make_napari_viewer()
    _, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Train")
    w.net_width.value, w.device.value, w.patch.value, w.batch.value = 4, "cpu", 32, 1
    w.out.value = str(tmp_path / "my-run")  # a folder of the user's: a finished run keeps it
    return viewer, w


def test_a_refused_start_keeps_the_last_runs_curves_progress_and_status(train_dock, qtbot, tmp_path):
    viewer, w = train_dock
    w.steps.value = 3
    w.start()
    qtbot.waitUntil(lambda: w.result is not None and w.start_button.enabled, timeout=120000)
    assert not w.resume.value
    shown = (list(w.curves.losses), list(w.curves.psnrs), w.progress.value, w.progress.max)
    finished = w.status.value
    assert shown[2] == shown[3] == 3 and len(shown[0]) == 3 and finished.startswith("finished at step 3")

    # 1. the output folder holds that run and 'resume' is unticked: refused at once, in the dock's words
    w.start()
    assert w.start_button.enabled and not w.busy  # nothing was started
    said = _text(w.status.value)
    assert said.startswith("Error") and "already holds a training run" in said, said
    assert "tick 'resume from output folder'" in said.lower() and "empty output folder" in said, said
    assert "resume=" not in said and "--resume" not in said, said
    assert finished in said  # the finished run's status is still there, below why Start was refused
    assert (list(w.curves.losses), list(w.curves.psnrs), w.progress.value, w.progress.max) == shown

    # 2. refused by the run itself (a pair folder without pairs): the same, once the worker has said so
    w.source.value = "pair folder"
    empty = tmp_path / "no-pairs"
    empty.mkdir()
    w.folder.value = str(empty)
    w.out.value = str(tmp_path / "another-run")
    w.start()
    qtbot.waitUntil(lambda: w.start_button.enabled and not w.busy, timeout=120000)
    said = _text(w.status.value)
    assert said.startswith("Error") and finished in said and said.count("not started") == 1, said
    assert (list(w.curves.losses), list(w.curves.psnrs), w.progress.value, w.progress.max) == shown


def test_the_eta_waits_for_the_steady_pace_of_the_run(train_dock, monkeypatch):
    """The first step carries the start-up (10 s here, then 1 s a step): the dock's ETA leaves it out."""
    from functools import partial

    from napari_lfdeblur._napari import _widget_train
    from napari_lfdeblur.cli.progress import StepClock
    from napari_lfdeblur.training.events import Started, Step

    viewer, w = train_dock
    now = [0.0]
    monkeypatch.setattr(_widget_train, "StepClock", partial(StepClock, clock=lambda: now[0]))
    w.handle_event(Started(0, total=300, model={"base": 4}))
    said = []
    for step, t in enumerate([10.0, 11.0, 12.0, 13.0, 14.0, 15.0], start=1):
        now[0] = t
        # the trainer's own figure: a running average that starts at the first step's 10 s
        w.handle_event(Step(step, total=300, loss=0.1, seconds_per_step=10.0, eta=10.0 * (300 - step)))
        said.append(w.status.value)
    assert all("ETA …" in s for s in said[:4]), said
    assert "ETA 4:54" in said[-1] and "1.00 steps/s" in said[-1], said  # 294 steps left at 1 s each
    assert not any("49:" in s or "ETA 8:" in s for s in said), said
