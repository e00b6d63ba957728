"""The widgets' state, as a user meets it through the Plugins menu: what they show, keep, write and stop."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PLUGIN = "napari-lfdeblur"


@pytest.fixture
def scene(make_napari_viewer):
    """A viewer holding a small procedural light field, as File › Open would leave it."""
    from napari_lfdeblur import synthetic_lightfield
    from napari_lfdeblur._napari._layers import lightfield_layers

    viewer = make_napari_viewer()
    lf = synthetic_lightfield(seed=2, views=5, size=96, disparity_range=(-1.5, 1.5))
    data, kwargs, _ = lightfield_layers(lf, name="scene")[0]
    return viewer, viewer.add_image(data, **kwargs), lf


def _open(viewer, name):
    return viewer.window.add_plugin_dock_widget(PLUGIN, name)


def test_lightfield_widget_reads_an_open_layer_and_shows_epis(scene):
    viewer, layer, lf = scene
    _, w = _open(viewer, "Light field")
    assert w.layer.value is layer
    assert "views" in w.summary.value.lower() or "grid" in w.summary.value.lower(), w.summary.value
    assert w.epi_row.value == lf.view_shape[0] // 2
    epis = w.show_epi()
    assert all(e.visible for e in epis)
    # beside the views, not over them
    assert epis[0].translate[0] > lf.view_shape[0] and epis[1].translate[1] > lf.view_shape[1]


def _refocus(viewer, layer):
    """The Refocus & pairs widget from the Plugins menu, on ``layer``, without the live preview."""
    _, w = _open(viewer, "Refocus & pairs")
    w.live.value = False
    w.layer.value = layer
    return w


def _wait_idle(qtbot, w, timeout=60_000):
    qtbot.waitUntil(lambda: not w.busy, timeout=timeout)
    qtbot.wait(50)


def test_focal_stack_gets_its_own_slider(scene, qtbot):
    viewer, layer, lf = scene
    w = _refocus(viewer, layer)
    w.n_slices.value = 4
    w.add_focal_stack()
    _wait_idle(qtbot, w)
    stack = viewer.layers["scene focal stack"]
    assert viewer.dims.axis_labels[:3] == ("focus", "v", "u")
    assert np.squeeze(np.asarray(stack.data)).shape == (4, 96, 96, 3)
    # the u slider browses the light field, the focus slider the stack
    viewer.dims.set_point(2, 4)
    viewer.dims.set_point(0, 0)
    first = np.asarray(stack._slice.image.raw).copy()
    viewer.dims.set_point(0, 3)
    last = np.asarray(stack._slice.image.raw)
    assert first.shape == (96, 96, 3) and not np.allclose(first, last)
    assert w.progress.value == 4


def test_cancelled_pairs_are_kept_and_written(scene, qtbot, tmp_path):
    viewer, layer, lf = scene
    w = _refocus(viewer, layer)
    w.apertures.value = "0.5, 1.0"
    w.n_focus.value = 8
    out = tmp_path / "pairs"
    w.folder_out.value = str(out)
    w.progress.changed.connect(lambda v: w.cancel() if v >= 3 else None)
    w.generate_pairs()
    _wait_idle(qtbot, w)
    n = len(w.last_pairs)
    assert 0 < n < 16, w.status.value
    assert len(list((out / "blur").iterdir())) == n == len(list((out / "sharp").iterdir()))
    assert f"{n} pairs" in w.status.value and "cancelled" in w.status.value and str(out) in w.status.value
    pairs = viewer.layers["pairs: blurred"]
    assert pairs.axis_labels[0] == "pair" and pairs.data.shape[0] == n


def test_unwritable_pair_folder_is_refused_before_work(scene, tmp_path):
    viewer, layer, lf = scene
    w = _refocus(viewer, layer)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    w.folder_out.value = str(blocker / "pairs")
    assert w.generate_pairs() is None
    assert w.status.value.startswith("Error") and "write" in w.status.value
    assert not w.busy


def test_disparity_estimation_reports_progress(scene, qtbot):
    viewer, layer, lf = scene
    w = _refocus(viewer, layer)
    w.estimate_disparity_map()
    _wait_idle(qtbot, w)
    assert "scene disparity (estimated)" in viewer.layers
    assert w.progress.max > 1 and w.progress.value == w.progress.max


def test_closing_the_train_dock_stops_its_run(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    dock, w = _open(viewer, "Train")
    w.net_width.value = 4
    w.steps.value = 100_000
    w.batch.value = 1
    w.patch.value = 32
    w.device.value = "cpu"
    w.out.value = str(tmp_path / "run")
    w.start()
    qtbot.waitUntil(lambda: w.progress.value >= 1, timeout=120_000)
    viewer.window.remove_dock_widget(dock)
    assert w.closed and w._token.cancelled
    qtbot.waitUntil(lambda: not w.busy, timeout=120_000)
    assert (tmp_path / "run" / "last.pt").exists()  # stopped cleanly: the steps done are kept


def test_deblur_keeps_napari_preferences_and_shows_tile_progress(make_napari_viewer, qtbot, monkeypatch, tmp_path):
    from napari.settings import get_settings

    from napari_lfdeblur._napari import _rendering, _widget_deblur

    settings = get_settings()
    saved = []  # what each save would write to the user's settings file
    monkeypatch.setattr(type(settings), "save", lambda self, *a, **k: saved.append(self._save_dict()))
    assert not settings.experimental.async_
    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    src = viewer.add_image((rng.random((300, 300)) * 255).astype(np.uint8), name="photo")
    _, w = _open(viewer, "Deblur")
    w.layer.value = src
    w.device.value = "cpu"
    w.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60_000)
    result = viewer.layers["photo deblurred"]
    assert settings.experimental.async_  # on for this session ...
    settings.appearance.highlight.highlight_thickness += 1  # ... while napari saves another preference
    assert saved and not any("async_" in d.get("experimental", {}) for d in saved)  # never written
    np.asarray(result.data)  # what napari does as it draws every chunk
    qtbot.waitUntil(lambda: "tiles deblurred" in w.status.value and "(all)" in w.status.value, timeout=30_000)

    # Save result…: streamed to OME-Zarr with progress
    out = tmp_path / "photo.ome.zarr"
    monkeypatch.setattr(_widget_deblur, "ask_save_path", lambda parent, suggested: str(out))
    w.save_result()
    _wait_idle(qtbot, w)
    assert out.exists() and "saved" in w.status.value, w.status.value
    import zarr

    np.testing.assert_array_equal(np.asarray(zarr.open(str(out), mode="r")["0"]), np.asarray(result.data))
    # a cancelled save leaves nothing
    tif = tmp_path / "photo.tif"
    w.save_result(path=str(tif))
    w.cancel()
    _wait_idle(qtbot, w)
    assert not tif.exists() or "saved" in w.status.value

    _rendering.restore()
    assert not settings.experimental.async_
    assert not any("async_" in d.get("experimental", {}) for d in saved)


def test_model_list_entry_loads_the_weights_it_names(tmp_path):
    """A run continued after its entry was made rewrites last.pt; the entry keeps loading its own step."""
    import torch

    from napari_lfdeblur import load_model, train
    from napari_lfdeblur._napari._widget_train import _keep_model

    common = dict(model={"base": 4}, steps=2, batch=1, patch=32, device="cpu", out=str(tmp_path / "run"),
                  val=None, amp=False)
    first = train("synthetic", **common)
    kept, label = _keep_model(first)
    assert "step 2" in label and "run" in label
    before = {k: v.clone() for k, v in load_model(kept).state_dict().items()}
    train("synthetic", **{**common, "steps": 4}, resume=True)
    after = load_model(kept).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    last = load_model(str(tmp_path / "run" / "last.pt")).state_dict()
    assert any(not torch.equal(before[k], last[k]) for k in before)


def test_pairs_blurred_and_sharp_share_one_slider(scene, qtbot, tmp_path):
    viewer, layer, lf = scene
    w = _refocus(viewer, layer)
    w.apertures.value = "0.5, 1.0"
    w.n_focus.value = 2
    w.generate_pairs()
    _wait_idle(qtbot, w)
    blurred, sharp = viewer.layers["pairs: blurred"], viewer.layers["pairs: sharp"]
    assert blurred.data.shape == sharp.data.shape and blurred.axis_labels == sharp.axis_labels
    assert viewer.dims.axis_labels.count("pair") == 1


def test_unwritable_run_folder_is_refused_at_start(make_napari_viewer, qtbot, tmp_path):
    viewer = make_napari_viewer()
    _, w = _open(viewer, "Train")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    w.net_width.value = 4
    w.device.value = "cpu"
    w.out.value = str(blocker / "run")
    w.start()
    _wait_idle(qtbot, w)
    assert w.status.value.startswith("Error") and "cannot write" in w.status.value, w.status.value
    assert w.result is None and w.progress.value == 0


_CLOSE_VIEWER_MID_RUN = """
import sys, time
import napari
from qtpy.QtWidgets import QApplication
out = sys.argv[1]
viewer = napari.Viewer(show=False)
_, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Train")
w.net_width.value, w.steps.value, w.batch.value, w.patch.value, w.device.value = 4, 100000, 1, 32, "cpu"
w.out.value = out
w.start()
end = time.time() + 300
while w.progress.value < 2 and time.time() < end:
    QApplication.processEvents(); time.sleep(0.05)
token = w._token
viewer.close()
for _ in range(40):
    QApplication.processEvents(); time.sleep(0.05)
print("cancelled", token.cancelled)
"""


def test_closing_the_viewer_mid_run_stops_it_without_qt_errors(tmp_path):
    """The run stops and keeps its steps; no callback touches a deleted widget (it printed a Qt RuntimeError)."""
    import os
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _CLOSE_VIEWER_MID_RUN, str(tmp_path / "run")], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "cancelled True" in run.stdout
    assert "RuntimeError" not in run.stderr and "Traceback" not in run.stderr, run.stderr[-3000:]
    assert (tmp_path / "run" / "last.pt").exists()
