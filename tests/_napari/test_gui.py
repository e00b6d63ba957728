"""The plugin inside a real napari viewer (needs an X server: run under Xvfb)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_open_hci_folder_through_plugin(make_napari_viewer, hci_antinous):
    viewer = make_napari_viewer()
    layers = viewer.open(str(hci_antinous), plugin="napari-lfdeblur")
    lf_layer = layers[0]
    assert lf_layer.data.shape == (9, 9, 512, 512, 3)
    assert lf_layer.rgb
    assert tuple(viewer.dims.axis_labels) == ("v", "u", "y", "x")
    # browsing views: move the u slider and the displayed slice changes
    viewer.dims.set_point(0, 4)
    viewer.dims.set_point(1, 0)
    left = np.asarray(lf_layer._slice.image.view).copy()
    viewer.dims.set_point(1, 8)
    right = np.asarray(lf_layer._slice.image.view).copy()
    assert left.shape[:2] == (512, 512)
    assert np.abs(left - right).mean() > 1e-3


def test_sample_data_plants(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-lfdeblur", "lytro_plants")
    layer = viewer.layers["Lytro plants"]
    assert layer.data.shape == (10, 10, 256, 256, 3)
    assert layer.metadata["lightfield"].grid == (10, 10)


def test_lightfield_widget_loads_folder(make_napari_viewer, qtbot, lytro_checkerboard):
    from napari_lfdeblur._napari._widget_lightfield import LightFieldWidget

    viewer = make_napari_viewer()
    widget = LightFieldWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.path.value = str(lytro_checkerboard)
    worker = widget.load()
    qtbot.waitUntil(lambda: len(viewer.layers) >= 1, timeout=30000)
    qtbot.waitUntil(lambda: widget.load_button.enabled, timeout=30000)
    layer = viewer.layers[0]
    assert layer.data.shape[:2] == (7, 7)
    assert layer.metadata["lightfield"].metadata["format"] == "grid"
    assert "7 x 7" in widget.summary.value
    # epipolar-plane images through the centre views
    epis = widget.show_epi()
    assert epis[0].data.shape[:2] == (7, layer.data.shape[3])
    assert epis[1].data.shape[:2] == (layer.data.shape[2], 7)
    assert worker is not None


def test_lightfield_widget_reports_bad_folder(make_napari_viewer, qtbot, tmp_path):
    from napari_lfdeblur._napari._widget_lightfield import LightFieldWidget

    viewer = make_napari_viewer()
    widget = LightFieldWidget(viewer)
    (tmp_path / "readme.txt").write_text("no views here")
    widget.path.value = str(tmp_path)
    widget.load()
    qtbot.waitUntil(lambda: widget.summary.value.startswith("Error"), timeout=30000)
    assert len(viewer.layers) == 0


def test_lightfield_widget_uses_plain_layer(make_napari_viewer):
    from napari_lfdeblur._napari._widget_lightfield import LightFieldWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(1)
    layer = viewer.add_image(rng.random((5, 5, 40, 48)).astype(np.float32), name="plain stack")
    widget = LightFieldWidget(viewer)
    widget.layer.value = layer
    lf = widget.use_layer()
    assert lf.grid == (5, 5) and lf.view_shape == (40, 48) and lf.channels == 1
    assert "5 x 5" in widget.summary.value
