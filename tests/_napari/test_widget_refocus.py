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
    _batch_of_pairs(widget, folder, tmp_path / "pairs")
    qtbot.waitUntil(lambda: widget.pairs_button.enabled and len(widget.last_pairs) > 0, timeout=60000)
    scenes = {r["scene"] for r in read_manifest(tmp_path / "pairs")}
    assert len(scenes) == 2


def _batch_of_pairs(widget, folder, out):
    """Generate pairs from every light field in ``folder`` (one aperture, two focus planes) into ``out``."""
    widget.live.value = False
    widget.source.value = "folder of light fields"
    widget.folder_in.value = str(folder)
    widget.folder_out.value = str(out)
    widget.apertures.value = "1.0"
    widget.n_focus.value = 2
    widget.generate_pairs()


# ---------------------------------------------------------------- through the Plugins menu: batches, focal range
def _text(status: str) -> str:
    """A status as the user reads it (an error's status is rich text: a details link, line breaks)."""
    import html
    import re

    return html.unescape(re.sub(r"<br>", "\n", re.sub(r"<a [^>]*>[^<]*</a>", "", status)))


def test_a_folder_batch_goes_on_past_a_bad_light_field_and_says_what_it_skipped(viewer_with_lf, qtbot, tmp_path,
                                                                                lightfields_and_a_bad_entry):
    from napari_lfdeblur import read_manifest

    viewer, layer, _ = viewer_with_lf
    folder = lightfields_and_a_bad_entry  # a raw lenslet image without its centres file between two light fields

    _, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Refocus & pairs")
    _batch_of_pairs(w, folder, tmp_path / "pairs")
    qtbot.waitUntil(lambda: w.pairs_button.enabled and not w.busy, timeout=60000)
    said = _text(w.status.value)
    assert {r["scene"] for r in read_manifest(tmp_path / "pairs")} == {"a_scene", "c_scene"}, said
    n = len(w.last_pairs)
    assert n >= 2 and f"{n} pairs from 2 of 3 light fields, written to {tmp_path / 'pairs'}" in said, said
    assert "Skipped 1 of 3: b_raw_lenslet: No light field found" in said, said
    assert "pattern=" not in said and "'Light field' widget" in said, said  # advice the user can follow here
    assert [name for name, _ in w.last_skipped] == ["b_raw_lenslet"]
    assert w.progress.value == w.progress.max


def test_the_focal_stack_spans_the_scenes_estimated_focal_range_and_can_be_widened(make_napari_viewer, qtbot):
    """The Lytro sample has no disparity of its own: the dock estimates its range (about -0.8 .. -0.5 px per
    view) instead of spanning -4 .. 4, where 7 of 9 planes were blur far from any object."""
    viewer = make_napari_viewer()
    layer = viewer.open_sample("napari-lfdeblur", "lytro_plants")[0]  # File › Open Sample
    _, w = viewer.window.add_plugin_dock_widget("napari-lfdeblur", "Refocus & pairs")
    w.live.value = False
    w.layer.value = layer
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    assert "estimated from its views" in w.status.value, w.status.value
    lo, hi = w.disparity.min, w.disparity.max
    assert -1.5 < lo < -0.7 and -0.6 < hi < 0.0 and hi - lo >= 0.5, (lo, hi)  # around the scene, with a margin
    assert lo <= w.disparity.value <= hi and w.stack_button.enabled
    w.n_slices.value = 9
    w.add_focal_stack()
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    planes = viewer.layers[f"{layer.name} focal stack"].metadata["disparities"]
    assert len(planes) == 9 and planes[0] == pytest.approx(lo) and planes[-1] == pytest.approx(hi)

    # the user widens it: the slider and the next stack follow
    w.focal_range.value = "-3, 1"
    assert (w.disparity.min, w.disparity.max) == (-3.0, 1.0)
    w.n_slices.value = 5
    w.add_focal_stack()
    qtbot.waitUntil(lambda: not w.busy, timeout=60000)
    planes = viewer.layers[f"{layer.name} focal stack"].metadata["disparities"]
    assert planes == pytest.approx([-3.0, -2.0, -1.0, 0.0, 1.0])
    w.focal_range.value = "far"
    assert _text(w.status.value).startswith("Error") and (w.disparity.min, w.disparity.max) == (-3.0, 1.0)


def test_a_batch_stopped_by_its_pair_folder_says_what_it_had_written(tmp_path):
    """A full disk stops the batch (every light field would fail alike), with the pairs written before it."""
    from napari_lfdeblur._napari._widget_refocus import describe_batch
    from napari_lfdeblur.errors import LightFieldError, OutputError
    from napari_lfdeblur.lightfield.batch import PairBatch

    batch = PairBatch(5, tmp_path / "pairs", made=20, used=2)
    batch.skipped.append(("raw", LightFieldError("No light field found in raw.")))
    batch.error = OutputError(f"cannot write the pair folder {tmp_path / 'pairs'}: No space left on device; free "
                              "some space or write elsewhere")
    said = describe_batch(batch)
    assert said.startswith("Error: cannot write") and "free some space or write elsewhere." in said
    assert f"20 pairs from 2 of 5 light fields were written to {tmp_path / 'pairs'} before it" in said
    assert "Skipped 1 of 5: raw: No light field found in raw." in said
