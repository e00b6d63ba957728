"""The Deblur widget in a real viewer: preview, lazy layer, eager run with progress and cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.gui


@pytest.fixture
def checkpoint(tmp_path):
    from napari_lfdeblur import DRBNet, save_model

    torch.manual_seed(0)
    return save_model(DRBNet(base=4), tmp_path / "tiny.pt")


@pytest.fixture
def widget(make_napari_viewer, checkpoint):
    from napari_lfdeblur._napari._models import FROM_FILE
    from napari_lfdeblur._napari._widget_deblur import DeblurWidget

    torch.set_num_threads(1)
    viewer = make_napari_viewer(show=True)  # a drawn canvas keeps the visible region up to date
    w = DeblurWidget(viewer)
    viewer.window.add_dock_widget(w)
    w.model.value = FROM_FILE
    w.model_path.value = str(checkpoint)
    w.device.value = "cpu"
    w.tile.value = 256
    return viewer, w


def _camera(viewer):
    """napari 0.9 moved the camera to viewer.scene; older releases keep viewer.camera."""
    return getattr(viewer, "scene", viewer).camera


def _photo(h=300, w=420):
    from skimage import data

    return np.ascontiguousarray(np.tile(data.astronaut(), (2, 2, 1))[:h, :w])


def test_lazy_layer_is_dask_and_matches_eager(widget, qtbot):
    import dask.array as da

    from napari_lfdeblur import deblur

    viewer, w = widget
    img = _photo()
    layer = viewer.add_image(img, name="photo")
    w.layer.value = layer
    w.lazy.value = True
    w.precision.value = "float32"  # chunks and whole-image tiles then differ only by summation order
    w.run()  # made in a worker (deblur_for_viewer): the viewer stays usable meanwhile
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60000)
    result = viewer.layers["photo deblurred"]
    assert isinstance(result.data, da.Array)
    assert result.name == "photo deblurred" and result.data.shape == img.shape and result.data.dtype == np.uint8
    expected = deblur(img, model=str(w.model_path.value), device="cpu", tile=256, dtype="float32")
    assert np.abs(np.asarray(result.data).astype(int) - expected.astype(int)).max() <= 2


def test_lazy_layer_runs_pytorch(widget, qtbot, monkeypatch):
    """Lazy chunks come in many shapes; OpenVINO compiles a graph per shape (about a second each): lazy
    results run PyTorch whatever "auto" would pick."""
    import importlib

    deblur_module = importlib.import_module("napari_lfdeblur.inference.deblur")
    viewer, w = widget
    asked = []
    real = deblur_module.resolve_runtime
    monkeypatch.setattr(deblur_module, "resolve_runtime",
                        lambda model, device, dtype, backend, *a: (asked.append(backend),
                                                                    real(model, device, dtype, backend, *a))[1])
    w.layer.value = viewer.add_image(_photo(), name="photo")
    w.lazy.value = True
    w.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60000)
    assert asked == ["torch"]


def test_eager_run_progress_and_toggle(widget, qtbot):
    viewer, w = widget
    layer = viewer.add_image(_photo(), name="photo")
    w.layer.value = layer
    w.lazy.value = False
    w.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60000)
    qtbot.waitUntil(lambda: w.run_button.enabled, timeout=60000)
    assert w.progress.value == w.progress.max > 1  # several tiles
    out = viewer.layers["photo deblurred"]
    assert isinstance(out.data, np.ndarray) and out.data.shape == layer.data.shape
    w.show_result.value = False
    assert not out.visible
    w.side_by_side.value = True
    assert (getattr(viewer, "canvas", None) or viewer).grid.enabled


def test_cancel_leaves_viewer_unchanged(widget, qtbot):
    viewer, w = widget
    layer = viewer.add_image(_photo(600, 800), name="big")
    w.layer.value = layer
    w.lazy.value = False
    w.run()
    w.cancel()
    qtbot.waitUntil(lambda: w.run_button.enabled, timeout=60000)
    assert "big deblurred" not in viewer.layers
    assert "cancel" in w.status.value


def test_preview_visible_region(widget, qtbot):
    viewer, w = widget
    layer = viewer.add_image(_photo(), name="photo")
    w.layer.value = layer
    _camera(viewer).zoom = 4.0  # only part of the image is on screen
    _camera(viewer).center = (150, 200)
    qtbot.wait(200)  # let the canvas redraw, which updates the layer's visible corners
    w.preview()
    qtbot.waitUntil(lambda: "photo deblurred (preview)" in viewer.layers, timeout=60000)
    prev = viewer.layers["photo deblurred (preview)"]
    assert prev.data.shape[0] < 300 or prev.data.shape[1] < 420
    assert all(t % 8 == 0 for t in prev.translate)


def test_bad_layer_reports_error(widget, qtbot):
    viewer, w = widget
    layer = viewer.add_image(np.full((40, 40), np.nan, np.float32), name="nan")
    w.layer.value = layer
    w.lazy.value = False
    w.run()
    qtbot.waitUntil(lambda: w.status.value.startswith("Error"), timeout=30000)
    assert "NaN" in w.status.value
    assert len(viewer.layers) == 1  # nothing half-made was added


def test_large_lazy_layer_is_multiscale_and_computes_only_what_is_drawn(widget, qtbot, monkeypatch):
    import dask.array as da

    from napari_lfdeblur.inference import runtime
    from napari_lfdeblur.inference.tile_plan import DEFAULT_OVERLAP

    viewer, w = widget
    calls = []
    real = runtime.run_torch
    monkeypatch.setattr(runtime, "run_torch", lambda t, r: (calls.append(t.shape), real(t, r))[1])
    big = da.random.RandomState(0).randint(0, 255, (6000, 6000, 3), chunks=(1024, 1024, 3)).astype(np.uint8)
    layer = viewer.add_image(big, name="big", rgb=True, contrast_limits=(0, 255), multiscale=False, visible=False)
    w.layer.value = layer
    w.lazy.value = True
    at_show = []  # the network calls made when the result is handed to napari
    show = type(w)._show_lazy
    monkeypatch.setattr(type(w), "_show_lazy", lambda *a: (at_show.append(list(calls)), show(*a))[1])
    worker = w.run()  # the overview is computed in a worker: the viewer stays usable meanwhile
    assert "big deblurred" not in viewer.layers
    qtbot.waitUntil(lambda: "big deblurred" in viewer.layers, timeout=120000)
    assert worker is not None
    result = viewer.layers["big deblurred"]
    # 2x2 means, and levels sqrt(2) apart among the small ones held in memory
    assert result.multiscale
    assert [lvl.shape[0] for lvl in result.data] == [6000, 3000, 2121, 1500, 1061, 750, 530, 375, 265, 187]
    # before the layer was added, only the coarsest level (napari's thumbnail) went through the network
    halo = DEFAULT_OVERLAP
    assert at_show == [[(1, 187, 187, 3)]]
    qtbot.waitUntil(lambda: result.loaded and len(calls) > 1, timeout=120000)  # napari draws the whole-image view
    drawn = result.data_level
    assert drawn >= 2  # a coarse level, about the canvas's size
    # zoomed out, only chunks of that level were deblurred: one 512-px chunk (plus halo) per network call,
    # nothing from the finer levels
    side = result.data[drawn].shape[0]
    assert all(max(s[1:3]) <= min(side, 512 + 2 * halo) for s in calls[1:]), calls
    assert sum(s[1] * s[2] for s in calls[1:]) <= (side + 4 * halo) ** 2


def test_multiscale_input_keeps_its_levels_and_only_the_thumbnail_is_deblurred_up_front(widget, qtbot, monkeypatch):
    """A multiscale layer (an OME-Zarr pyramid): its own levels are deblurred as they are, none read whole."""
    import dask.array as da

    from napari_lfdeblur.inference import runtime

    viewer, w = widget
    calls = []
    real = runtime.run_torch
    monkeypatch.setattr(runtime, "run_torch", lambda t, r: (calls.append(t.shape), real(t, r))[1])
    rng = da.random.RandomState(1)
    own = [rng.randint(0, 255, (n, n), chunks=512).astype(np.uint8) for n in (2048, 1024, 512)]
    layer = viewer.add_image(own, name="pyr", contrast_limits=(0, 255), multiscale=True, visible=False)
    w.layer.value = layer
    w.lazy.value = True
    at_show = []
    show = type(w)._show_lazy
    monkeypatch.setattr(type(w), "_show_lazy", lambda *a: (at_show.append(list(calls)), show(*a))[1])
    w.run()
    qtbot.waitUntil(lambda: "pyr deblurred" in viewer.layers, timeout=60000)
    result = viewer.layers["pyr deblurred"]
    assert [lvl.shape[0] for lvl in result.data] == [2048, 1024, 724, 512, 362, 256]
    assert at_show == [[(1, 256, 256, 3)]]  # greyscale goes through the network as RGB


# ---------------------------------------------------------------- scores against a sharp reference
def _blurred_photo(img):
    from scipy.ndimage import uniform_filter

    return uniform_filter(img.astype(np.float64), size=(7, 7, 1)).round().astype(np.uint8)


def _score_lines(text: str) -> dict[str, float]:
    """{'input': psnr, 'deblurred': psnr, 'change': dB} from the scores label's table."""
    import re

    return {name: float(psnr) for name, psnr in re.findall(r"<tr><td>(\w+)</td><td[^>]*>&nbsp;([-+\d.]+)</td>", text)}


def _scored(w) -> bool:
    return "deblurred</td>" in w.scores.value


def test_reference_scores_after_eager_run(widget, qtbot):
    from napari_lfdeblur.evaluation import compare

    viewer, w = widget
    sharp = _photo()
    blurred = _blurred_photo(sharp)
    layer = viewer.add_image(blurred, name="blurred")
    viewer.add_image(sharp, name="sharp")
    assert w.reference.value is None  # optional: nothing is scored unless asked
    w.layer.value = layer
    w.reference.value = viewer.layers["sharp"]
    w.lazy.value = False
    w.run()
    qtbot.waitUntil(lambda: _scored(w), timeout=60000)
    got = _score_lines(w.scores.value)
    assert "'sharp' (whole image 300x420 px)" in w.scores.value
    out = viewer.layers["blurred deblurred"].data
    assert got["input"] == pytest.approx(compare(blurred, sharp)["psnr"], abs=0.01)
    assert got["deblurred"] == pytest.approx(compare(out, sharp)["psnr"], abs=0.01)


def test_reference_scores_preview_region(widget, qtbot):
    from napari_lfdeblur.evaluation import compare

    viewer, w = widget
    sharp = _photo()
    blurred = _blurred_photo(sharp)
    layer = viewer.add_image(blurred, name="blurred")
    w.reference.value = viewer.add_image(sharp, name="sharp")
    w.layer.value = layer
    _camera(viewer).zoom = 4.0
    _camera(viewer).center = (150, 200)
    qtbot.wait(200)
    w.preview()
    qtbot.waitUntil(lambda: _scored(w), timeout=60000)
    prev = viewer.layers["blurred deblurred (preview)"]
    (y0, x0), (h, w_) = (int(t) for t in prev.translate), prev.data.shape[:2]
    assert f"preview {h}x{w_} px" in w.scores.value and h < 300
    region = (slice(y0, y0 + h), slice(x0, x0 + w_))
    got = _score_lines(w.scores.value)
    assert got["input"] == pytest.approx(compare(blurred[region], sharp[region])["psnr"], abs=0.01)
    assert got["deblurred"] == pytest.approx(compare(prev.data, sharp[region])["psnr"], abs=0.01)


def test_reference_scores_lazy_result_on_the_visible_region_only(widget, qtbot):
    import dask.array as da

    viewer, w = widget
    sharp = _photo(600, 800)
    computed = []  # reference chunks read for the scores

    def mark(block, block_info=None):
        computed.append(block_info[0]["chunk-location"])
        return block

    ref = da.from_array(sharp, chunks=(200, 200, 3)).map_blocks(mark, dtype=np.uint8)
    layer = viewer.add_image(_blurred_photo(sharp), name="blurred")
    w.reference.value = viewer.add_image(ref, name="sharp", contrast_limits=(0, 255), visible=False)
    w.layer.value = layer
    _camera(viewer).zoom = 4.0
    _camera(viewer).center = (300, 400)
    qtbot.wait(200)
    computed.clear()
    w.lazy.value = True
    w.run()
    qtbot.waitUntil(lambda: "blurred deblurred" in viewer.layers, timeout=60000)
    assert isinstance(viewer.layers["blurred deblurred"].data, da.Array)  # the result stays lazy
    qtbot.waitUntil(lambda: _scored(w), timeout=60000)
    assert "visible region" in w.scores.value
    assert 0 < len(set(computed)) < 12  # only the chunks on screen, not the 3x4 of the whole reference


def test_reference_of_another_size_is_explained(widget, qtbot):
    viewer, w = widget
    layer = viewer.add_image(_photo(), name="photo")
    w.reference.value = viewer.add_image(_photo(200, 420), name="small")
    w.layer.value = layer
    w.lazy.value = False
    w.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60000)
    assert "same size" in w.scores.value


def test_tile_auto_from_the_plugins_menu_deblurs_a_fitting_photo_whole(make_napari_viewer, checkpoint, qtbot,
                                                                       network_calls):
    """The dock's tile defaults to auto: on the CPU the memory plan, one network call for a photo that fits
    (the old default of 512-px squares made 2 x 2 calls for this 600 x 840 photo)."""
    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    assert w.tile.value == 0 and w.tile.native.currentText() == "auto"
    w.lazy.value = False
    w.layer.value = viewer.add_image(_photo(600, 840), name="photo")
    w.run()
    qtbot.waitUntil(lambda: "photo deblurred" in viewer.layers, timeout=60000)
    assert network_calls == [(600, 840)]


def _plugins_menu_deblur(make_napari_viewer, checkpoint):
    """The Deblur dock as a user opens it (Plugins menu), in a laptop-sized window, with a tiny model on the CPU."""
    from napari_lfdeblur._napari._models import FROM_FILE

    torch.set_num_threads(1)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(1366, 768)
    _, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Deblur")
    w.model.value = FROM_FILE
    w.model_path.value = str(checkpoint)
    w.device.value = "cpu"
    return viewer, w


def _preview(viewer, w, qtbot, name: str, zoom: float | None = None, center=None):
    """Zoom (None: the whole image), press Preview visible region, and return the preview layer."""
    if zoom is None:
        viewer.reset_view()
    else:
        _camera(viewer).zoom = zoom
        _camera(viewer).center = center
    qtbot.wait(300)  # the canvas redraws
    w.preview()
    qtbot.waitUntil(lambda: f"{name} deblurred (preview)" in viewer.layers, timeout=60000)
    return viewer.layers[f"{name} deblurred (preview)"]


def test_preview_of_a_zoomed_out_image_runs_at_screen_resolution(make_napari_viewer, checkpoint, qtbot,
                                                                 network_calls):
    """Zoomed out on a big image, Preview deblurs about one pixel per screen pixel (block means of the visible
    region), placed over the region it shows, not every full-resolution pixel (43 s for a 4096² photo on two
    cores before, for a picture the screen shrinks anyway)."""
    from napari_lfdeblur._napari._view import canvas_size

    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    shapes = network_calls
    big = np.tile(_photo(512, 512), (4, 4, 1))  # 2048 x 2048
    w.layer.value = viewer.add_image(big, name="big")
    prev = _preview(viewer, w, qtbot, "big")
    f = int(prev.scale[0])
    height, width = canvas_size(viewer)
    assert f >= 2 and prev.scale[1] == f  # several data pixels per screen pixel: averaged in f x f blocks
    assert prev.data.shape[:2] == (2048 // f, 2048 // f) and min(prev.data.shape[:2]) >= min(height, width)
    assert sum(h * w_ for h, w_ in shapes) == (2048 // f) ** 2  # the network saw the small image only
    # over the region it shows: each pixel at the centre of its block
    np.testing.assert_allclose(prev.translate, [(f - 1) / 2] * 2)
    assert f"1/{f} resolution" in w.status.value


def test_preview_of_a_multiscale_layer_reads_the_level_on_screen(make_napari_viewer, checkpoint, qtbot,
                                                                 network_calls):
    """A multiscale layer (an OME-Zarr pyramid) previews from the level napari draws (it was refused before)."""
    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    shapes = network_calls
    full = np.tile(_photo(512, 512), (4, 4, 1))
    levels = [full, full[::2, ::2], full[::4, ::4], full[::8, ::8]]
    layer = viewer.add_image(levels, name="pyramid", multiscale=True, rgb=True)
    w.layer.value = layer
    prev = _preview(viewer, w, qtbot, "pyramid")
    level = layer.data_level
    assert level > 0  # zoomed out: napari draws a coarse level
    blocks = prev.scale[0] / 2 ** level  # the level's pixels, averaged in blocks if still finer than the screen
    assert blocks == int(blocks) >= 1 and prev.scale[1] == prev.scale[0]
    assert 2048 - prev.scale[0] < prev.data.shape[0] * prev.scale[0] <= 2048  # the whole image is on screen
    assert sum(h * w_ for h, w_ in shapes) == prev.data.shape[0] * prev.data.shape[1]
    assert "resolution" in w.status.value
    # zoomed in on a hidden pyramid (the deblurred layer shown over it): the level follows the view
    viewer.layers.remove(prev)
    layer.visible = False
    prev = _preview(viewer, w, qtbot, "pyramid", zoom=4.0, center=(1000, 1000))
    assert tuple(prev.scale) == (1, 1) and max(prev.data.shape[:2]) < 1024


def test_preview_zoomed_in_is_full_resolution(make_napari_viewer, checkpoint, qtbot):
    """Zoomed in (fewer data pixels than screen pixels), Preview deblurs the visible crop as it is."""
    from napari_lfdeblur import deblur

    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    img = _photo()
    w.layer.value = viewer.add_image(img, name="photo")
    prev = _preview(viewer, w, qtbot, "photo", zoom=4.0, center=(150, 200))
    assert tuple(prev.scale) == (1, 1)
    y0, x0 = (int(t) for t in prev.translate)
    h, w_ = prev.data.shape[:2]
    assert h < 300 and w.status.value == f"preview of {h}x{w_} px"
    expected = deblur(img[y0:y0 + h, x0:x0 + w_], model=str(w.model_path.value), device="cpu")
    np.testing.assert_array_equal(prev.data, expected)


def test_preview_covers_the_view_not_napari_s_chunk_widened_corners(make_napari_viewer, checkpoint, qtbot):
    """napari widens a lazy layer's corner pixels to whole chunks: a 1024-px view of a pyramid in 1024-px
    chunks read as 2048 px, and was previewed from level 1 at half the screen's resolution."""
    import dask.array as da

    from napari_lfdeblur._napari._view import canvas_size

    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    full = np.tile(_photo(512, 512), (8, 8, 1))  # 4096 x 4096
    levels = [da.from_array(full[::f, ::f], chunks=(1024, 1024, 3)) for f in (1, 2, 4, 8)]
    layer = viewer.add_image(levels, name="pyramid", multiscale=True, rgb=True, contrast_limits=(0, 255))
    w.layer.value = layer
    qtbot.wait(300)  # the window and the dock settle: the canvas's size
    height, width = canvas_size(viewer)
    # 1024 image rows on screen (a bit more than one per screen row), not on the chunk grid
    prev = _preview(viewer, w, qtbot, "pyramid", zoom=height / 1024, center=(1500, 1500))
    assert tuple(prev.scale) == (1, 1)  # full resolution: the view has about one image pixel per screen pixel
    rows, cols = prev.data.shape[:2]
    assert canvas_size(viewer) == (height, width)
    assert 1024 <= rows <= 1024 + 16 and abs(cols - 1024 * width / height) <= 16
    assert abs(prev.translate[0] - (1500 - 512)) <= 8


def test_a_late_score_of_an_older_request_never_replaces_the_newest(make_napari_viewer, checkpoint, qtbot,
                                                                    monkeypatch):
    """Preview, then Deblur layer: the preview's scoring finishes last, and is dropped (it replaced the
    whole layer's score and stayed)."""
    import threading

    from napari_lfdeblur import evaluation

    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    sharp = _photo()
    w.layer.value = viewer.add_image(_blurred_photo(sharp), name="blurred")
    w.reference.value = viewer.add_image(sharp, name="sharp")
    release, calls = threading.Event(), []
    real = evaluation.compare

    def slow_first(*a, **kw):  # the first request's scoring (one worker thread) waits until the second is shown
        calls.append(threading.get_ident())
        if calls[0] == threading.get_ident():
            assert release.wait(60)
        return real(*a, **kw)

    monkeypatch.setattr(evaluation, "compare", slow_first)
    _preview(viewer, w, qtbot, "blurred", zoom=4.0, center=(150, 200))
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=60000)
    w.lazy.value = False
    w.run()
    qtbot.waitUntil(lambda: _scored(w), timeout=60000)  # the whole layer's scores (calls 3, 4) shown
    assert "whole image" in w.scores.value
    newest = w.scores.value
    release.set()
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)  # the preview's scoring has finished too
    qtbot.wait(100)
    assert w.scores.value == newest


def test_scores_are_a_table_in_view_at_1366x768(make_napari_viewer, checkpoint, qtbot):
    """The score table sits under the buttons, inside the dock's visible height, its rows unbroken."""
    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    sharp = _photo()
    w.layer.value = viewer.add_image(_blurred_photo(sharp), name="blurred")
    w.reference.value = viewer.add_image(sharp, name="sharp")
    w.lazy.value = False
    w.run()
    qtbot.waitUntil(lambda: _scored(w), timeout=60000)
    qtbot.wait(200)
    got = _score_lines(w.scores.value)
    assert set(got) == {"input", "deblurred", "change"}
    assert got["change"] == pytest.approx(got["deblurred"] - got["input"], abs=0.011)
    label, scroll = w.scores.native, w.native
    bottom = label.mapTo(scroll, label.rect().bottomLeft()).y()
    top_of_table = label.mapTo(scroll, label.rect().topLeft()).y()
    assert bottom <= scroll.viewport().height(), (bottom, scroll.viewport().height())  # no scrolling to see it
    assert label.width() >= 0.8 * scroll.viewport().width()  # the full width, no name column beside it
    assert top_of_table > w.run_button.native.mapTo(scroll, w.run_button.native.rect().bottomLeft()).y()


def test_an_offline_authors_download_says_it_short_with_the_dock_s_way_out_and_copyable_details(
        make_napari_viewer, checkpoint, qtbot, monkeypatch, tmp_path):
    """The API's 700-character offline message is one sentence in the dock, plus the dock's own option; the
    whole text opens in a box it can be copied from."""
    import re

    from napari_lfdeblur._napari import _models
    from napari_lfdeblur._napari._models import AUTHORS, DEFAULT
    from napari_lfdeblur._napari._workers import open_details

    monkeypatch.setenv("LFDEBLUR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LFDEBLUR_AUTHORS_URL", "http://127.0.0.1:9/single_image_defocus_deblurring.pth")  # refused
    monkeypatch.setattr(_models, "confirm_authors_download", lambda parent: True)
    viewer, w = _plugins_menu_deblur(make_napari_viewer, checkpoint)
    w.model.value = AUTHORS
    qtbot.waitUntil(lambda: w.status.value.startswith("Error"), timeout=60000)
    shown = re.sub(r"<[^>]+>", "", w.status.value)
    full = w.status.native.property("lfdeblur_details")
    assert "127.0.0.1:9" in full and len(full) > len(shown)
    assert len(shown) < 260, shown  # a sentence and the way out, not the whole manual
    assert "checkpoint file" in shown and "load_model" not in shown
    assert w.model.value == DEFAULT
    box = open_details(w.status.native)
    assert box.text() == full and box.isVisible()
    box.close()
