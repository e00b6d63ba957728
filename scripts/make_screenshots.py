"""Make the README/docs screenshots in a real napari window.

Run under a virtual X server on a machine without a screen:

    xvfb-run -a python scripts/make_screenshots.py [--out docs/images]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "images"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    import napari
    from qtpy.QtWidgets import QApplication

    from napari_lfdeblur._napari._widget_lightfield import LightFieldWidget

    viewer = napari.Viewer(title="napari-lfdeblur", show=True)
    viewer.window.resize(1400, 860)
    viewer.open_sample("napari-lfdeblur", "lytro_plants")
    layer = viewer.layers["Lytro plants"]
    widget = LightFieldWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Light field", area="right")
    widget.layer.value = layer
    widget._update_summary()
    viewer.dims.set_point(0, 4)
    viewer.dims.set_point(1, 7)
    for _ in range(5):
        QApplication.processEvents()
    path = out / "screenshot_lightfield.png"
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")

    # Refocus & pairs: a refocused preview at the flowers' plane, and a focal stack
    from napari_lfdeblur._napari._widget_refocus import RefocusWidget

    refocus = RefocusWidget(viewer)
    viewer.window.remove_dock_widget("all")
    viewer.window.add_dock_widget(refocus, name="Refocus & pairs", area="right")
    refocus.live.value = False
    refocus.layer.value = layer
    refocus.disparity.value = -1.0
    refocus.aperture.value = 1.0
    refocus.preview_now()
    layer.visible = False
    for _ in range(5):
        QApplication.processEvents()
    path = out / "screenshot_refocus.png"
    viewer.screenshot(str(path), canvas_only=False)
    print(f"wrote {path}")
    viewer.close()


if __name__ == "__main__":
    main()
