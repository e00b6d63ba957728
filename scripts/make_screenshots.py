"""Make the README/docs screenshots in a real napari window.

Run under a virtual X server on a machine without a screen:

    xvfb-run -a python scripts/make_screenshots.py [--out docs/images] [--only deblur train] [--model CKPT]

Writes ``screenshot_lightfield.png`` (Light field widget), ``screenshot_refocus.png``
(Refocus & pairs), ``screenshot_deblur.png`` (Deblur: a refocused image and its
lazily deblurred result side by side) and ``screenshot_train.png`` (Train: a short
run on procedural light fields with its live curves).  The Deblur screenshot
uses the shipped default model, or ``--model``; without either it is skipped
(and the Train run starts from a new network instead of continuing that model).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

SHOTS = ("lightfield", "refocus", "deblur", "train")


def _settle(seconds: float = 0.3):
    from qtpy.QtWidgets import QApplication

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        QApplication.processEvents()
        time.sleep(0.02)


def _wait(condition, timeout: float = 600.0, what: str = "the job"):
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError(f"{what} did not finish in {timeout:.0f} s")
        _settle(0.1)


def _open_only(viewer, name: str):
    """Open the plugin's widget ``name`` alone, as Plugins › Light-field deblurring › ``name`` does."""
    viewer.window.remove_dock_widget("all")
    _, widget = viewer.window.add_plugin_dock_widget("napari-lfdeblur", name)
    return widget


def _shoot(viewer, out: Path, name: str) -> Path:
    _settle(0.5)
    path = out / f"screenshot_{name}.png"
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "images"))
    parser.add_argument("--only", nargs="+", choices=SHOTS, default=list(SHOTS), help="which screenshots to make")
    parser.add_argument("--model", default=None,
                        help="checkpoint for the Deblur screenshot (default: the shipped default model)")
    parser.add_argument("--train-steps", type=int, default=20, help="steps of the Train screenshot's run")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import napari
    import torch

    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))

    viewer = napari.Viewer(title="napari-lfdeblur", show=True)
    viewer.window.resize(1366, 768)  # a laptop's screen
    viewer.open_sample("napari-lfdeblur", "lytro_plants")
    layer = viewer.layers["Lytro plants"]
    widget = _open_only(viewer, "Light field")
    widget.layer.value = layer
    viewer.dims.set_point(0, 4)
    viewer.dims.set_point(1, 7)
    if "lightfield" in args.only:
        _shoot(viewer, out, "lightfield")

    # Refocus & pairs: a refocused preview in front of the flowers' plane (they are sharpest at about -0.66):
    # the defocused image the Deblur screenshot deblurs
    refocus = _open_only(viewer, "Refocus & pairs")
    refocus.live.value = False
    refocus.layer.value = layer
    _wait(lambda: refocus._estimating is None, what="the focal range estimate")  # the slider spans it then
    refocus.disparity.value = -1.0
    refocus.aperture.value = 1.0
    refocused = refocus.preview_now()
    layer.visible = False
    if "refocus" in args.only:
        _shoot(viewer, out, "refocus")

    if "deblur" in args.only:
        _deblur_shot(viewer, out, args.model)
    if "train" in args.only:
        _train_shot(viewer, out, args.train_steps, refocused, args.model)
    viewer.close()


def _deblur_shot(viewer, out: Path, model):
    """A refocused (defocused) image of the plants and its lazy deblurred result, side by side."""
    from napari_lfdeblur import refocus, sample_lightfield
    from napari_lfdeblur._napari._models import DEFAULT, FROM_FILE
    from napari_lfdeblur.network.checkpoint import default_model_path

    if model is None and not default_model_path().exists():
        print(f"skipping screenshot_deblur.png: no default model ({default_model_path()}); pass --model CKPT")
        return None
    lf = sample_lightfield("lytro_plants").compute()
    far_end = -0.49  # of the plants' focal range, -0.80 .. -0.49 px/view (estimate_disparity_range)
    blurry = refocus(lf, far_end + 0.15, aperture=1.0)  # just outside the scene: everything slightly defocused
    for lyr in viewer.layers:
        lyr.visible = False
    src = viewer.add_image(blurry, name="plants refocused", rgb=True, contrast_limits=(0, 1))

    w = _open_only(viewer, "Deblur")
    if model is None:
        w.model.value = DEFAULT
    else:
        w.model.value = FROM_FILE
        w.model_path.value = str(model)
    w.device.value = "cpu"
    w.layer.value = src
    w.lazy.value = True
    w.run()
    w.side_by_side.value = True
    _settle(0.5)
    viewer.reset_view()
    camera = getattr(viewer, "scene", viewer).camera  # napari >= 0.9: viewer.scene.camera
    camera.zoom *= 0.95  # both images whole, with a margin
    _settle(1.0)
    return _shoot(viewer, out, "deblur")


def _train_shot(viewer, out: Path, steps: int, sample_layer, model=None):
    """A short phase-1 run on procedural light fields: progress, loss and validation PSNR curves.

    It continues from the default model (or ``--model``) when there is one, so that
    the sample prediction it shows looks like a deblurred image; else a new 8-wide network.
    """
    from napari_lfdeblur._napari._models import DEFAULT, FROM_FILE
    from napari_lfdeblur.network.checkpoint import default_model_path

    for lyr in list(viewer.layers):
        if lyr.metadata.get("deblurred_from") or lyr.name == "plants refocused":
            viewer.layers.remove(lyr)
    (getattr(viewer, "canvas", None) or viewer).grid.enabled = False
    sample_layer.visible = True
    w = _open_only(viewer, "Train")
    with tempfile.TemporaryDirectory() as tmp:
        if model is not None:
            w.start_from.value = FROM_FILE
            w.start_path.value = str(model)
        elif default_model_path().exists():
            w.start_from.value = DEFAULT
        else:
            w.net_width.value = 8
        w.device.value = "cpu"
        w.steps.value = steps
        w.batch.value = 2
        w.patch.value = 64
        w.val_fraction.value = 0.15
        w.out.value = str(Path(tmp) / "run-demo")
        w.start()
        _wait(lambda: w.result is not None or w.status.value.startswith("Error"), what="training")
        if w.result is None:
            raise RuntimeError(w.status.value)
        _wait(lambda: w.start_button.enabled, what="training")
        viewer.reset_view()
        return _shoot(viewer, out, "train")


if __name__ == "__main__":
    main()
