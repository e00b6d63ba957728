"""The Refocus & pairs widget in a real viewer, on a procedural light field with known disparity."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer_with_lf(make_napari_viewer):
    from napari_lfdeblur import synthetic_lightfield
    from napari_lfdeblur._napari._layers import lightfield_layers

    viewer = make_napari_viewer()
    lf = synthetic_lightfield(seed=2, views=5, size=96, disparity_range=(-1.5, 1.5))
    data, kwargs, _ = lightfield_layers(lf, name="scene")[0]
    layer = viewer.add_image(data, **kwargs)
    return viewer, layer, lf


def test_live_preview_follows_slider(viewer_with_lf, qtbot):
    from napari_lfdeblur._napari._widget_refocus import RefocusWidget

    viewer, layer, lf = viewer_with_lf
    widget = RefocusWidget(viewer)
    widget.layer.value = layer
    # slider bounds come from the ground-truth disparity
    assert widget.disparity.min <= float(lf.disparity.min()) and widget.disparity.max >= float(lf.disparity.max())
    widget.disparity.value = 0.5
    qtbot.waitUntil(lambda: "scene refocused" in viewer.layers, timeout=20000)
    qtbot.waitUntil(lambda: not widget._preview.busy, timeout=20000)
    preview = viewer.layers["scene refocused"]
    assert preview.data.shape == (96, 96, 3)
    assert preview.metadata["disparity"] == pytest.approx(0.5)
    # in focus where the scene's disparity is 0.5: matches the centre view better than elsewhere
    centre = lf.center_view()
    err = np.abs(preview.data - centre).mean(axis=-1)
    near = np.abs(lf.disparity - 0.5) < 0.1
    far = np.abs(lf.disparity - 0.5) > 1.0
    if near.sum() > 50 and far.sum() > 50:
        assert err[near].mean() < err[far].mean()


def test_focal_stack_disparity_and_pairs(viewer_with_lf, qtbot, tmp_path):
    from napari_lfdeblur._napari._widget_refocus import RefocusWidget

    viewer, layer, lf = viewer_with_lf
    widget = RefocusWidget(viewer)
    widget.live.value = False
    widget.layer.value = layer
    widget.n_slices.value = 4
    widget.add_focal_stack()
    qtbot.waitUntil(lambda: "scene focal stack" in viewer.layers or "Error" in widget.status.value, timeout=30000)
    assert "Error" not in widget.status.value, widget.status.value
    stack = viewer.layers["scene focal stack"]
    assert np.squeeze(np.asarray(stack.data)).shape == (4, 96, 96, 3) and stack.axis_labels[0] == "focus"

    widget.estimate_disparity_map()
    qtbot.waitUntil(lambda: "scene disparity (estimated)" in viewer.layers, timeout=60000)
    est = viewer.layers["scene disparity (estimated)"].data
    assert est.shape == (96, 96)
    assert np.median(np.abs(est - lf.disparity)) < 0.3

    widget.apertures.value = "0.5, 1.0"
    widget.n_focus.value = 2
    widget.folder_out.value = str(tmp_path / "pairs")
    widget.generate_pairs()
    qtbot.waitUntil(lambda: widget.pairs_button.enabled and "pairs: blurred" in viewer.layers, timeout=60000)
    blurred = viewer.layers["pairs: blurred"].data
    assert np.squeeze(blurred).ndim == 4 and blurred.shape[0] == len(widget.last_pairs) >= 2
    assert (tmp_path / "pairs" / "manifest.csv").exists()
    assert len(list((tmp_path / "pairs" / "blur").glob("*.png"))) == len(widget.last_pairs)
    assert widget.progress.value == widget.progress.max


def test_cancel_stops_pair_generation(viewer_with_lf, qtbot):
    from napari_lfdeblur._napari._widget_refocus import RefocusWidget

    viewer, layer, _ = viewer_with_lf
    widget = RefocusWidget(viewer)
    widget.live.value = False
    widget.layer.value = layer
    widget.n_focus.value = 20
    widget.apertures.value = "0.3, 0.6, 1.0"
    widget.generate_pairs()
    widget.cancel()
    qtbot.waitUntil(lambda: widget.pairs_button.enabled, timeout=60000)
    assert len(widget.last_pairs) < 60
    assert "cancel" in widget.status.value


def test_pairs_from_a_folder_of_lightfields(viewer_with_lf, qtbot, tmp_path):
    from napari_lfdeblur import read_manifest, synthetic_lightfield
    from napari_lfdeblur._napari._widget_refocus import RefocusWidget

    viewer, layer, _ = viewer_with_lf
    folder = tmp_path / "lfs"
    folder.mkdir()
    for seed in (3, 4):
        lf = synthetic_lightfield(seed=seed, views=5, size=64, disparity_range=(-1.5, 1.5))
        np.save(folder / f"scene{seed}.npy", lf.data)
    widget = RefocusWidget(viewer)
    widget.live.value = False
    widget.layer.value = layer
    widget.source.value = "folder of light fields"
    widget.folder_in.value = str(folder)
    widget.folder_out.value = str(tmp_path / "pairs")
    widget.apertures.value = "1.0"
    widget.n_focus.value = 2
    widget.generate_pairs()
    qtbot.waitUntil(lambda: widget.pairs_button.enabled and len(widget.last_pairs) > 0, timeout=60000)
    scenes = {r["scene"] for r in read_manifest(tmp_path / "pairs")}
    assert len(scenes) == 2
