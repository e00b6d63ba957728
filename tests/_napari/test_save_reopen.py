"""A deblurred result saved from napari reopens as the image it was: File › Save Layers (this plugin's
streaming writer), File › Open (napari's reader dialog for a folder, this plugin's reader), and
Layers › Filter › Deblur defocus…."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gui

PLUGIN = "napari-lfdeblur"


@pytest.fixture
def lazy_result(make_napari_viewer, tmp_path, qtbot):
    """A viewer holding a lazy deblurred RGB layer (a tiny random DRBNet), as the Deblur dock adds it."""
    from napari_lfdeblur import DRBNet, save_model
    from napari_lfdeblur._napari._models import FROM_FILE

    torch.manual_seed(0)
    torch.set_num_threads(1)
    ckpt = save_model(DRBNet(base=4), tmp_path / "tiny.pt")
    viewer = make_napari_viewer(show=True)
    _, w = viewer.window.add_plugin_dock_widget(PLUGIN, "Deblur")
    w.model.value, w.model_path.value, w.device.value = FROM_FILE, str(ckpt), "cpu"
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:200, 0:260]
    photo = np.clip(np.stack([xx / 260, yy / 200, 0.5 + 0.4 * np.sin(xx / 9)], -1) * 255
                    + rng.normal(0, 8, (200, 260, 3)), 0, 255).astype(np.uint8)
    w.layer.value = viewer.add_image(photo, name="photo")
    w.lazy.value = True
    w.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60000)
    return viewer, viewer.layers["photo deblurred"]


def _save_through_the_dialog(viewer, path, monkeypatch, pick: str):
    """File › Save Selected Layers…: the user types ``path`` and picks the filter containing ``pick``."""
    from qtpy.QtWidgets import QFileDialog

    def answer(self, parent, caption, directory, filter, options=None):  # noqa: A002 - Qt's name
        chosen = next(f for f in filter.split(";;") if pick in f)
        return str(path), chosen

    monkeypatch.setattr(QFileDialog, "getSaveFileName", answer)
    viewer.window._qt_viewer._save_layers_dialog(selected=True)


def _open_through_file_open(viewer, path, monkeypatch):
    """File › Open of ``path`` as napari's GUI does it; for a folder napari asks which reader, and the user
    presses OK on the reader the dialog has selected ("remember" left unticked)."""
    from napari._qt.dialogs.qt_reader_dialog import QtReaderDialog

    asked = []

    def press_ok(self):
        asked.append(self._get_plugin_choice())
        return True

    monkeypatch.setattr(QtReaderDialog, "exec_", press_ok)
    before = len(viewer.layers)
    viewer.window._qt_viewer._qt_open([str(path)], stack=False)
    return viewer.layers[before:], asked


def test_a_lazy_result_saved_by_file_save_as_ome_zarr_reopens_identical(lazy_result, tmp_path, monkeypatch):
    viewer, layer = lazy_result
    viewer.layers.selection.active = layer
    target = tmp_path / "result.ome.zarr"
    _save_through_the_dialog(viewer, target, monkeypatch, pick="streamed")
    assert (target / ".zattrs").exists() or (target / "zarr.json").exists()
    expected = np.asarray(layer.data)
    added, asked = _open_through_file_open(viewer, target, monkeypatch)
    assert asked == ["Light-field deblurring"]  # napari asks, as for any folder, with this plugin selected
    assert len(added) == 1
    back = added[0]
    assert back.rgb and back.name == "result"
    data = back.data[0] if back.multiscale else back.data
    np.testing.assert_array_equal(np.asarray(data), expected)


def test_a_result_saved_as_tiff_reopens_with_napari_s_own_reader_and_no_question(lazy_result, tmp_path,
                                                                                  monkeypatch):
    viewer, layer = lazy_result
    viewer.layers.selection.active = layer
    target = tmp_path / "result.tif"
    _save_through_the_dialog(viewer, target, monkeypatch, pick="streamed")
    expected = np.asarray(layer.data)
    added, asked = _open_through_file_open(viewer, target, monkeypatch)
    assert not asked  # one reader for a .tif: napari asks nothing
    assert len(added) == 1 and added[0].rgb
    np.testing.assert_array_equal(np.asarray(added[0].data), expected)


def test_saving_over_an_ordinary_folder_named_like_ome_zarr_keeps_its_files(lazy_result, tmp_path, monkeypatch):
    viewer, layer = lazy_result
    viewer.layers.selection.active = layer
    folder = tmp_path / "holiday.ome.zarr"
    folder.mkdir()
    (folder / "IMG_0001.jpg").write_bytes(b"a photo")
    with pytest.raises(Exception, match="holiday.ome.zarr"):
        _save_through_the_dialog(viewer, folder, monkeypatch, pick="streamed")
    assert [p.name for p in folder.iterdir()] == ["IMG_0001.jpg"]
    assert (folder / "IMG_0001.jpg").read_bytes() == b"a photo"


def test_layers_filter_menu_opens_the_deblur_dock_on_the_selected_layer(make_napari_viewer):
    from app_model.types import MenuItem
    from napari._app_model import get_app_model

    viewer = make_napari_viewer()
    photo = viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="photo")
    viewer.layers.selection.active = photo
    model = get_app_model()
    ours = [i for i in model.menus.get_menu("napari/layers/filter")
            if isinstance(i, MenuItem) and i.command.id == "napari-lfdeblur.deblur_selected"]
    assert ours and ours[0].command.title.startswith("Deblur defocus…")
    model.commands.execute_command("napari-lfdeblur.deblur_selected").result()
    docks = len(viewer.window._dock_widgets)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, "Deblur")  # the dock the menu opened
    assert len(viewer.window._dock_widgets) == docks
    assert widget.layer.value is photo


def test_a_grey_float_ome_zarr_opens_with_contrast_limits_from_its_values(tmp_path):
    """Not 8-bit colour: the limits come from a sample of the data, as napari would show it."""
    from napari_lfdeblur._napari._reader import get_reader
    from napari_lfdeblur.io import save_image_streaming

    image = np.linspace(-2.0, 5.0, 300 * 400, dtype=np.float32).reshape(300, 400)
    path = save_image_streaming(image, tmp_path / "grey.ome.zarr")
    (data, kwargs, kind), = get_reader(str(path))(str(path))
    assert kind == "image" and not kwargs["rgb"] and not kwargs["multiscale"]
    assert kwargs["contrast_limits"] == pytest.approx((-2.0, 5.0), abs=1e-3)
    np.testing.assert_array_equal(np.asarray(data), image)
