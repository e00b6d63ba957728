"""Layers › Filter › *Deblur defocus…*: the Deblur dock, opened on the selected image layer."""

from __future__ import annotations

import napari  # the viewer annotation must resolve at run time: napari injects the viewer by it

DOCK = ("napari-lfdeblur", "Deblur")


def deblur_selected(viewer: napari.viewer.Viewer):
    """Open (or bring forward) the Deblur dock with the selected image layer picked as its input."""
    from napari.layers import Image

    _, widget = viewer.window.add_plugin_dock_widget(*DOCK)
    active = viewer.layers.selection.active
    if isinstance(active, Image) and not active.metadata.get("deblurred_from"):
        widget.layer.value = active
        widget.status.value = f"{active.name!r} picked: Preview visible region or Deblur layer"
    else:
        widget.status.value = "Select an image layer in the layer list, then pick it here as 'image'."
    return widget
