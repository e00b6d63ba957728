"""``lfdeblur demo --gui``: the demo's results as layers in napari, with the plugin's widgets docked
(:func:`populate_viewer` without ``napari.run``, for tests)."""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication, QDockWidget

from ._layers import lightfield_layers, set_or_add_stack
from ._models import DEFAULT, FROM_FILE


def populate_viewer(viewer, demo) -> dict:
    """Add the demo's layers to a napari ``viewer`` (only the plants light field visible) and dock the plugin's
    widgets; returns the widgets by name."""
    _add_layers(viewer, demo)
    plants_layer = viewer.layers["Lytro plants"]
    viewer.layers.selection.active = plants_layer
    widgets = open_docks(viewer)
    _raise_dock(widgets["Light field"])  # its tab in front: the story starts there
    widgets["Light field"].layer.value = plants_layer
    _set_up_refocus(widgets["Refocus & pairs"], plants_layer, demo)
    _set_up_deblur(widgets["Deblur"], viewer, demo)
    viewer.reset_view()  # fit the images to the canvas the docks left
    return widgets


def _add_layers(viewer, demo) -> None:
    def add(data, **kwargs):
        return viewer.add_image(data, visible=False, contrast_limits=(0.0, 1.0), rgb=np.shape(data)[-1] == 3, **kwargs)

    for lf, name in ((demo.procedural, "procedural light field"), (demo.plants, "Lytro plants")):
        for data, kwargs, _ in lightfield_layers(lf, name=name):
            kwargs.setdefault("visible", name == "Lytro plants")
            viewer.add_image(data, **kwargs)

    def add_stack(images, name, axis, like=None):  # on a slider of its own, not riding on the light field's u
        stack = np.stack([np.asarray(i, dtype=np.float32) for i in images])
        return set_or_add_stack(viewer, name, stack, axis, like=like, visible=False, contrast_limits=(0.0, 1.0))

    for name, planes in demo.focal.items():
        layer = add_stack([img for _, img in planes], f"{name} focal stack", "focus")
        layer.metadata["disparities"] = [d for d, _ in planes]
    for name, pairs in demo.pairs.items():
        if pairs:
            b = add_stack([p.blurred for p in pairs], f"{name} pairs: blurred", "pair")
            add_stack([p.sharp for p in pairs], f"{name} pairs: sharp", "pair", like=b)
            b.metadata["pairs"] = [p.info for p in pairs]
    for case in demo.cases:
        add(case.sharp, name=f"{case.name}: sharp")
        if case.restored is not None:
            add(case.restored, name=f"{case.name}: deblurred", metadata={"deblurred_from": f"{case.name}: blurry"})
        add(case.blurred, name=f"{case.name}: blurry", metadata={"scores": case.scores})


def _set_up_refocus(refocus, plants_layer, demo) -> None:
    refocus.layer.value = plants_layer
    lo, hi = demo.ranges.get("Lytro plants", (refocus.disparity.min, refocus.disparity.max))
    pad = 0.5 * max(hi - lo, 0.5)
    with refocus.disparity.changed.blocked():  # no preview until the user moves the slider
        refocus.disparity.min, refocus.disparity.max = round(lo - pad, 2), round(hi + pad, 2)
        refocus.disparity.value = round(lo, 2)


def _set_up_deblur(deblur, viewer, demo) -> None:
    if demo.cases:
        deblur.layer.value = viewer.layers[f"{demo.cases[-1].name}: blurry"]
    if isinstance(demo.model, str):
        from ..network.checkpoint import default_model_path

        if Path(demo.model).resolve() == default_model_path().resolve():
            deblur.model.value = DEFAULT
        else:
            deblur.model.value = FROM_FILE
            deblur.model_path.value = demo.model


WIDGETS = ("Light field", "Refocus & pairs", "Deblur", "Train")


def open_docks(viewer, names=WIDGETS) -> dict:
    """Open the plugin's widgets the way Plugins › Light-field deblurring does, tabbed in one dock area."""
    widgets = {}
    for i, name in enumerate(names):
        _, widgets[name] = viewer.window.add_plugin_dock_widget("napari-lfdeblur", name, tabify=i > 0)
    return widgets


def _raise_dock(widget) -> None:
    """Bring the dock (tab) holding a magicgui ``widget`` to the front."""
    w = widget.native
    while w is not None and not isinstance(w, QDockWidget):
        w = w.parentWidget()
    if w is not None:
        QApplication.processEvents()  # a tabified dock raises only once the tabs are laid out
        w.raise_()


def open_gui(demo):  # pragma: no cover - interactive
    viewer = napari.Viewer(title="napari-lfdeblur demo")
    populate_viewer(viewer, demo)
    QTimer.singleShot(300, viewer.reset_view)  # once the window is laid out: fit the images to the canvas
    napari.run()
