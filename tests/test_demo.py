"""``lfdeblur demo``: figures, outputs and scores, without and with a model, and the ``--gui`` viewer contents."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_lfdeblur.cli import main


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A fixed-seed, untrained 4-wide DRBNet standing in for the shipped model."""
    import torch

    from napari_lfdeblur import DRBNet, save_model

    torch.manual_seed(0)
    return save_model(DRBNet(base=4), tmp_path_factory.mktemp("model") / "tiny.pt")


@pytest.fixture(scope="module")
def demo_with_model(tmp_path_factory, tiny_checkpoint, one_torch_thread):
    """The demo run once with the tiny network in the default model's place (as if it were installed)."""
    from napari_lfdeblur.demo import run_demo
    from napari_lfdeblur.network import checkpoint

    out = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(checkpoint, "default_model_path", lambda: tiny_checkpoint)
        return run_demo(out)


def _imread(path):
    import imageio.v3 as iio

    return iio.imread(path).astype(np.float64)


def test_demo_without_a_model_says_how_to_get_one(tmp_path, monkeypatch, capsys, one_torch_thread):
    from napari_lfdeblur.network import checkpoint

    monkeypatch.setattr(checkpoint, "default_model_path", lambda: tmp_path / "weights" / "default.pt")
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "No default model is installed" in printed and "lfdeblur demo --model" in printed
    assert "10 x 10" in printed and "11 x 11" in printed  # both light fields summarised

    summary = json.loads((out / "summary.json").read_text())
    assert summary["deblur"]["model"] is None and "skipped" in summary["deblur"]
    for name in ("procedural", "plants"):  # the blurry inputs are still scored against their targets
        assert 10 < summary["deblur"][name]["psnr_before"] < 45
        assert (out / f"{name}_blurry.png").exists() and (out / f"{name}_sharp.png").exists()
        assert not (out / f"{name}_deblurred.png").exists()
    for fig in ("demo_lightfield.png", "demo_deblur.png"):
        assert (out / fig).stat().st_size > 20_000
    assert not list(out.rglob("*.part*")), "no temporary files are left behind"

    # the focal range: planes inside it, and one outside
    lo, hi = summary["focal_range"]["Lytro plants"]["lo"], summary["focal_range"]["Lytro plants"]["hi"]
    planes = summary["focal_range"]["Lytro plants"]["planes"]
    assert lo < hi and all(lo - 1e-3 <= d <= hi + 1e-3 for d in planes[:-1]) and planes[-1] > hi
    centre = _imread(out / "plants_centre.png")
    inside = _imread(out / f"plants_refocus_{planes[0]:+.2f}.png")
    outside = _imread(out / f"plants_refocus_{planes[-1]:+.2f}.png")
    # refocused inside the scene's range is much closer to the all-in-focus view than outside it
    assert np.abs(inside - centre).mean() < 0.6 * np.abs(outside - centre).mean()

    # the pairs: a pair folder with both light fields in it
    from napari_lfdeblur import read_manifest

    records = read_manifest(out / "pairs")
    assert len(records) == sum(summary["pairs"].values()) >= 6
    assert {r["scene"] for r in records} == {"plants", "procedural"}
    assert len(list((out / "pairs" / "blur").glob("*.png"))) == len(records)


def test_demo_deblurs_and_scores_before_and_after(demo_with_model, tiny_checkpoint):
    demo = demo_with_model
    out = demo.out
    scores = json.loads((out / "summary.json").read_text())["deblur"]
    assert scores["model"] == str(tiny_checkpoint)
    for name in ("procedural", "plants"):
        s = scores[name]
        assert {"psnr_before", "psnr_after", "ssim_before", "ssim_after"} <= set(s)
        assert all(np.isfinite(s[k]) for k in ("psnr_before", "psnr_after", "ssim_before", "ssim_after"))
        restored = _imread(out / f"{name}_deblurred.png")
        assert restored.shape == _imread(out / f"{name}_blurry.png").shape
    for case in demo.cases:
        assert case.restored is not None and case.restored.shape == case.sharp.shape
    assert (out / "demo_deblur.png").stat().st_size > 20_000
    assert demo.report["seconds"] < 120


def test_demo_cli_model_option_prints_the_table(tmp_path, tiny_checkpoint, capsys, one_torch_thread):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--model", str(tiny_checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert f"Deblurring with the model {tiny_checkpoint}" in printed
    from napari_lfdeblur.network.precision import cpu_has_native_bf16

    assert f"on cpu ({'bfloat16' if cpu_has_native_bf16() else 'float32'})" in printed  # the precision it ran in
    assert "PSNR blurry -> deblurred" in printed and "SSIM blurry -> deblurred" in printed
    assert printed.count(" dB ") >= 2
    assert (out / "plants_deblurred.png").exists() and (out / "procedural_deblurred.png").exists()


@pytest.mark.gui
def test_demo_gui_populates_a_viewer(make_napari_viewer, demo_with_model, tiny_checkpoint):
    import napari

    from napari_lfdeblur._napari._demo_gui import populate_viewer
    from napari_lfdeblur._napari._models import FROM_FILE

    viewer = make_napari_viewer()
    widgets = populate_viewer(viewer, demo_with_model)

    names = [layer.name for layer in viewer.layers]
    expected = [
        "procedural light field", "procedural light field disparity (ground truth)", "Lytro plants",
        "Lytro plants focal stack", "procedural light field focal stack",
        "Lytro plants pairs: blurred", "Lytro plants pairs: sharp",
        "procedural light field pairs: blurred", "procedural light field pairs: sharp",
        "procedural: sharp", "procedural: deblurred", "procedural: blurry",
        "plants: sharp", "plants: deblurred", "plants: blurry",
    ]
    assert sorted(names) == sorted(expected)
    plants = viewer.layers["Lytro plants"]
    assert plants.data.shape == (10, 10, 256, 256, 3) and plants.rgb and plants.visible
    assert viewer.layers["procedural light field"].data.shape == (11, 11, 256, 256, 3)
    assert tuple(plants.axis_labels) == ("v", "u", "y", "x")
    stack = viewer.layers["Lytro plants focal stack"]
    assert np.squeeze(np.asarray(stack.data)).shape == (4, 256, 256, 3) and len(stack.metadata["disparities"]) == 4
    assert stack.axis_labels[0] == "focus" and viewer.dims.axis_labels[0] != "u"  # its own slider
    blurred = viewer.layers["procedural light field pairs: blurred"]
    assert blurred.data.shape[0] == len(demo_with_model.pairs["procedural light field"])
    assert blurred.data.shape == viewer.layers["procedural light field pairs: sharp"].data.shape
    deblurred = viewer.layers["plants: deblurred"]
    assert deblurred.data.shape == viewer.layers["plants: blurry"].data.shape
    assert deblurred.data.dtype == np.float32 and deblurred.metadata["deblurred_from"] == "plants: blurry"
    assert sum(layer.visible for layer in viewer.layers) == 1  # only the plants light field at first

    assert set(widgets) == {"Light field", "Refocus & pairs", "Deblur", "Train"}
    assert {f"{name} (napari-lfdeblur)" for name in widgets} <= set(viewer.window.dock_widgets)  # the Plugins menu's
    from qtpy.QtWidgets import QTabBar

    tabs = [t for t in viewer.window._qt_window.findChildren(QTabBar) if t.count() == 4]
    assert tabs and tabs[0].tabText(tabs[0].currentIndex()).startswith("Light field")  # the story starts there
    assert widgets["Light field"].layer.value is plants and "10 x 10" in widgets["Light field"].summary.value
    refocus = widgets["Refocus & pairs"]
    assert refocus.layer.value is plants
    lo, hi = demo_with_model.ranges["Lytro plants"]
    assert refocus.disparity.min <= lo < hi <= refocus.disparity.max
    assert "Lytro plants refocused" not in viewer.layers  # no preview until the slider moves
    deblur = widgets["Deblur"]
    assert deblur.layer.value is viewer.layers["plants: blurry"]
    assert deblur.model.value == FROM_FILE and str(deblur.model_path.value) == str(tiny_checkpoint)
    assert isinstance(viewer, napari.Viewer)


def test_detail_crop_is_where_the_error_drops_most():
    """The figure's magnified detail: the square with the largest summed error reduction, edges included."""
    from napari_lfdeblur.demo import _detail_crop

    rng = np.random.default_rng(0)
    gain = rng.normal(0, 0.01, (200, 150))
    gain[120:150, 5:35] += 1.0  # the model helps here
    gain[10:40, 100:130] -= 1.0  # and hurts here
    ys, xs = _detail_crop(gain, 32)
    assert ys.stop - ys.start == 32 and xs.stop - xs.start == 32
    assert ys.start <= 120 and ys.stop >= 150 and xs.start <= 5 and xs.stop >= 35
    corner = np.zeros((100, 100))
    corner[-20:, -20:] = 1.0  # at the very edge: the crop stays inside the image
    ys, xs = _detail_crop(corner, 64)
    assert (ys.stop, xs.stop) == (100, 100)
    assert _detail_crop(np.ones((40, 30)), 64) == (slice(0, 30), slice(0, 30))  # crop no bigger than the image
