"""The plugin through the doors a napari user opens: Plugins menu, File › Open, File › Open Sample, the docks' size."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.gui

PLUGIN = "napari-lfdeblur"
WIDGETS = ("Light field", "Refocus & pairs", "Deblur", "Train")
LAPTOP_HEIGHT = 768


@pytest.mark.parametrize("name", WIDGETS)
def test_widget_opens_from_plugins_menu_and_fits_a_laptop(make_napari_viewer, name):
    """Plugins › Light-field deblurring › name: napari injects the viewer; the dock scrolls on a short screen."""
    viewer = make_napari_viewer()
    dock, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    viewer.add_image(np.zeros((8, 8)), name="probe")
    assert "probe" in widget._viewer.layers  # napari injected this viewer (behind its public-only proxy)
    assert dock.minimumSizeHint().height() < LAPTOP_HEIGHT // 2


def test_all_four_docks_fit_a_laptop_screen(make_napari_viewer):
    viewer = make_napari_viewer()
    for name in WIDGETS:
        viewer.window.add_plugin_dock_widget(PLUGIN, name)
    # napari stacks the docks in the right-hand area: the window must still fit 768 px
    assert viewer.window._qt_window.minimumSizeHint().height() <= LAPTOP_HEIGHT


@pytest.mark.parametrize("key, shape", [("lytro_plants", (10, 10)), ("synthetic", (9, 9))])
def test_samples_open_from_file_open_sample(make_napari_viewer, key, shape):
    viewer = make_napari_viewer()
    layers = viewer.open_sample(PLUGIN, key)
    assert tuple(layers[0].data.shape[:2]) == shape
    assert viewer.dims.axis_labels[:2] == ("v", "u")


def _ordinary_files(folder: Path) -> list[Path]:
    import imageio.v3 as iio
    import tifffile
    rng = np.random.default_rng(0)
    photo = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    paths = [folder / "photo.tif", folder / "photo.png", folder / "plain.npy", folder / "plain.h5"]
    tifffile.imwrite(paths[0], photo)
    iio.imwrite(paths[1], photo)
    np.save(paths[2], photo[..., 0])
    import h5py

    with h5py.File(paths[3], "w") as f:
        f["image"] = photo[..., 0]
    return paths


def test_ordinary_photos_open_with_napari_and_no_question(make_napari_viewer, tmp_path):
    """File › Open on a photo: only napari's reader is compatible, so napari asks nothing.

    (A ``.zarr`` is a folder, and napari offers every folder to every reader that accepts folders, so
    opening one still asks, as any folder does: see docs/lightfield-formats.md.)"""
    from napari.plugins import _npe2

    viewer = make_napari_viewer()
    for path in _ordinary_files(tmp_path):
        assert PLUGIN not in _npe2.get_readers(str(path)), path.name
        if path.suffix == ".h5":
            continue  # napari's own reader cannot open .h5 either; what matters is that nobody asks
        layers = viewer.open(str(path))  # raises MultipleReaderError where the GUI would show the dialog
        assert layers and layers[0].source.reader_plugin == "napari", path.name


def test_lightfield_files_and_folders_are_offered_to_the_plugin(make_napari_viewer, tmp_path):
    from napari.plugins import _npe2

    from napari_lfdeblur import synthetic_lightfield

    lf = synthetic_lightfield(seed=1, views=3, size=32)
    path = tmp_path / "scene.lf.npy"
    np.save(path, np.asarray(lf.data))
    viewer = make_napari_viewer()
    assert PLUGIN in _npe2.get_readers(str(path))
    assert PLUGIN in _npe2.get_readers(str(tmp_path))
    layers = viewer.open(str(path), plugin=PLUGIN)  # what the "Choose reader" dialog does
    assert layers[0].data.shape == (3, 3, 32, 32, 3)


def test_declined_path_says_why(monkeypatch, tmp_path):
    """napari only says the plugin 'refused the file'; the reason comes as a notification."""
    import napari.utils.notifications as notifications

    from napari_lfdeblur._napari._reader import get_reader

    shown = []
    monkeypatch.setattr(notifications, "show_info", shown.append)
    path = tmp_path / "flat.lf.npy"
    np.save(path, np.zeros((20, 30), np.float32))
    assert get_reader(str(path)) is None
    assert shown and "flat.lf.npy" in shown[0] and "not a light field" in shown[0]


def test_data_tests_skip_before_the_viewer_without_shared_data(tmp_path):
    """The README's test command on a machine without ../shared: skips, not teardown errors."""
    tests = next(p for p in Path(__file__).resolve().parents if p.name == "tests")
    env = {**os.environ, "LFDEBLUR_SHARED_DATA": str(tmp_path / "absent")}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         f"{tests / '_napari' / 'test_gui.py'}::test_open_hci_folder_through_plugin",
         f"{tests / '_napari' / 'test_gui.py'}::test_lightfield_widget_loads_folder"],
        capture_output=True, text=True, env=env, cwd=tests.parent, timeout=600,
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "2 skipped" in out and "error" not in out.lower().split("short test summary")[-1], out[-3000:]


def test_a_long_layer_name_does_not_widen_the_docks_past_the_screen(make_napari_viewer, qtbot):
    """Layer pickers size to the dock, not to their longest entry (the scroll area would clip the body)."""
    viewer = make_napari_viewer(show=True)  # combo boxes size to their entries when first shown
    viewer.add_image(np.zeros((8, 8)), name="a layer named after a whole file path " * 6)
    for name in WIDGETS:
        _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
        qtbot.wait(50)
        # the window (layer list, canvas, dock) must still fit a 1366-px laptop screen
        assert viewer.window._qt_window.minimumSizeHint().width() <= 1366, name
        viewer.window.remove_dock_widget("all")


@pytest.mark.parametrize("name", WIDGETS)
def test_dock_rows_are_not_cut_off_on_a_laptop(make_napari_viewer, qtbot, name):
    """At 1366 x 768 every row of a dock fits its width, a long status message included: the scroll area has no
    horizontal bar, so a body wider than the dock hid the combo boxes' arrows and the end of each message."""
    from qtpy.QtWidgets import QLabel

    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, name)
    messages = [label for label in widget.native.findChildren(QLabel) if label.wordWrap()]
    assert messages, "the dock has a status line"
    for label in messages:
        label.setText("huge deblurred: 5 of 2068 tiles deblurred; napari computes the ones you look at")
    qtbot.wait(100)
    scroll = widget.native
    assert scroll.widget().minimumSizeHint().width() <= scroll.viewport().width(), name
