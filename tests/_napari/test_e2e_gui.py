"""End to end in a real napari window (run under Xvfb): every widget in order, as a user would.

load a light field -> refocus preview -> pairs -> train a few steps -> deblur lazily with the model just
trained -> compare; the layers are checked after each step and a screenshot of the whole window is saved.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _assert_screenshot(path):
    import imageio.v3 as iio

    assert path.exists() and path.stat().st_size > 10_000, path
    img = iio.imread(path)
    assert img.ndim == 3 and min(img.shape[:2]) > 300
    pixels = img[..., :3].reshape(-1, 3)
    assert pixels.std(axis=0).max() > 10, f"{path.name} is (nearly) one colour"
    assert len(np.unique(pixels[:: max(1, len(pixels) // 50_000)], axis=0)) > 200, f"{path.name} has few colours"


def test_gui_end_to_end(make_napari_viewer, qtbot, tmp_path, one_torch_thread):
    import dask.array as da

    from napari_lfdeblur import synthetic_lightfield
    from napari_lfdeblur.training.metrics import psnr

    shots = tmp_path / "screenshots"
    shots.mkdir()

    def screenshot(name: str):
        qtbot.wait(100)  # let napari draw
        path = shots / f"{name}.png"
        viewer.screenshot(str(path), canvas_only=False)
        _assert_screenshot(path)
        return path

    def dock(name: str):  # Plugins › Light-field deblurring › name
        tabify = len(viewer.window.dock_widgets) > 0
        return viewer.window.add_plugin_dock_widget("napari-lfdeblur", name, tabify=tabify)[1]

    # a small procedural light field on disk: exact all-in-focus centre view
    lf_true = synthetic_lightfield(seed=11, views=5, size=96, disparity_range=(-1.0, 1.0))
    np.save(tmp_path / "scene.npy", lf_true.data)

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1280, 800)

    # 1. Light field: load the file in a worker; the layer browses views with v/u sliders
    lfw = dock("Light field")
    lfw.is_file.value = True
    lfw.path.value = str(tmp_path / "scene.npy")
    lfw.load()
    qtbot.waitUntil(lambda: "scene" in viewer.layers and lfw.load_button.enabled, timeout=30_000)
    lf_layer = viewer.layers["scene"]
    assert lf_layer.data.shape == (5, 5, 96, 96, 3) and lf_layer.rgb
    assert tuple(lf_layer.axis_labels) == ("v", "u", "y", "x")
    assert "5 x 5" in lfw.summary.value
    viewer.dims.set_point(1, 0)  # the leftmost view
    screenshot("01_lightfield")

    # 2. Refocus & pairs: the live preview follows the disparity slider
    rfw = dock("Refocus & pairs")
    rfw.layer.value = lf_layer
    rfw.disparity.value = 0.5
    qtbot.waitUntil(lambda: "scene refocused" in viewer.layers, timeout=30_000)
    qtbot.waitUntil(lambda: not rfw._preview.busy, timeout=30_000)
    preview = viewer.layers["scene refocused"]
    assert preview.data.shape == (96, 96, 3) and preview.data.dtype == np.float32
    assert preview.metadata["disparity"] == pytest.approx(0.5)
    lf_layer.visible = False
    screenshot("02_refocus")

    # 3. pairs from this light field, written as a pair folder
    rfw.live.value = False
    rfw.apertures.value = "0.5, 1.0"
    rfw.n_focus.value = 2
    rfw.folder_out.value = str(tmp_path / "pairs")
    rfw.generate_pairs()
    qtbot.waitUntil(lambda: rfw.pairs_button.enabled and "pairs: blurred" in viewer.layers, timeout=60_000)
    blurred_layer, sharp_layer = viewer.layers["pairs: blurred"], viewer.layers["pairs: sharp"]
    n_pairs = len(rfw.last_pairs)
    assert n_pairs >= 2
    assert blurred_layer.data.shape == sharp_layer.data.shape and blurred_layer.data.shape[0] == n_pairs
    assert blurred_layer.data.shape[-1] == 3 and blurred_layer.data.dtype == np.float32
    assert (tmp_path / "pairs" / "manifest.csv").exists()
    preview.visible = False
    screenshot("03_pairs")

    # 4. Train: a few steps of a 4-wide network on the pair folder just written
    tw = dock("Train")
    tw.source.value = "pair folder"
    tw.folder.value = str(tmp_path / "pairs")
    tw.net_width.value = 4
    tw.device.value = "cpu"
    tw.patch.value = 32
    tw.batch.value = 1
    tw.steps.value = 4
    assert tw.val_fraction.value == 0.15  # the default: one scene, so a band of every pair is held out
    tw.out.value = str(tmp_path / "run")
    tw.start()
    qtbot.waitUntil(lambda: tw.result is not None or tw.status.value.startswith("Error"), timeout=120_000)
    assert tw.result is not None, tw.status.value
    qtbot.waitUntil(lambda: tw.start_button.enabled, timeout=30_000)
    assert tw.result.steps == 4 and tw.progress.value == 4
    assert tw.curves.psnrs and "held out" in tw.result.summary["val_data"]
    assert (tmp_path / "run" / "last.pt").exists()
    trained = next(c for c in tw.start_from.choices if str(c).startswith("trained: run"))
    screenshot("04_train")

    # 5. Deblur lazily with the model just trained: a dask layer napari computes as it draws
    dw = dock("Deblur")
    assert trained in dw.model.choices
    dw.model.value = trained
    dw.device.value = "cpu"
    dw.layer.value = blurred_layer
    dw.lazy.value = True
    dw.run()  # made in a worker: the viewer stays usable meanwhile
    qtbot.waitUntil(lambda: "pairs: blurred deblurred" in viewer.layers, timeout=60_000)
    result = viewer.layers["pairs: blurred deblurred"]
    assert isinstance(result.data, da.Array)
    assert result.data.shape == blurred_layer.data.shape and result.data.dtype == np.float32
    assert result.metadata["deblurred_from"] == "pairs: blurred"
    assert "lazy result" in dw.status.value or "tiles deblurred" in dw.status.value  # napari may draw at once
    screenshot("05_deblur_lazy")

    # 6. compare: before / after / target side by side, and the result toggled off and on
    restored = np.asarray(result.data)
    assert np.isfinite(restored).all() and restored.min() >= -0.01 and restored.max() <= 1.01
    sharp = np.asarray(sharp_layer.data)
    before = [psnr(b, s) for b, s in zip(np.asarray(blurred_layer.data), sharp)]
    after = [psnr(r, s) for r, s in zip(restored, sharp)]
    assert all(np.isfinite(before)) and all(np.isfinite(after))
    assert np.abs(restored - np.asarray(blurred_layer.data)).mean() > 1e-4  # the network did something
    for layer in viewer.layers:
        layer.visible = layer.name in ("pairs: blurred", "pairs: blurred deblurred", "pairs: sharp")
    dw.side_by_side.value = True
    assert (getattr(viewer, "canvas", None) or viewer).grid.enabled
    screenshot("06_compare")
    dw.show_result.value = False
    assert not result.visible
    dw.show_result.value = True
    assert result.visible

    assert sorted(p.name for p in shots.glob("*.png")) == [
        "01_lightfield.png", "02_refocus.png", "03_pairs.png", "04_train.png", "05_deblur_lazy.png",
        "06_compare.png",
    ]
