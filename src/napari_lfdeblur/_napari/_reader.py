"""napari reader contribution: light-field folders and files, and OME-Zarr images as the image they were (napari's
own reader shows their ``(c, y, x)`` levels as a three-plane grey stack).

``get_reader`` never raises: it returns None for anything else, so that other readers get their turn, and says why
in napari's notifications (napari itself only reports that the plugin "refused the file")."""

from __future__ import annotations

import logging

from ..errors import LFDeblurError
from ._layers import lightfield_layers, saved_image_layer

log = logging.getLogger(__name__)


def _decline(path, reason: str) -> None:
    message = f"napari-lfdeblur: {path} is not a light field it can read: {reason}"
    log.info(message)
    try:
        from napari.utils.notifications import show_info

        show_info(message)
    except Exception:  # noqa: BLE001 - a notification must never break reading
        pass


def _saved_image(path):
    """A reader for an OME-Zarr image (what *Save result…* and File › Save Layers write), or None."""
    from pathlib import Path

    from ..io import is_ome_zarr_image, open_image_levels

    p = Path(path)
    if p.name.lower().endswith(".lf.zarr") or not is_ome_zarr_image(p):
        return None
    try:
        levels, info = open_image_levels(p)
    except Exception as e:  # a reader must never raise into napari
        _decline(path, f"{type(e).__name__}: {e}")
        return None
    if info.axes is not None and set(info.axes) & set("vu"):
        return None  # a light field's views

    def reader(_path):
        return [saved_image_layer(levels, info)]

    return reader


def get_reader(path):
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    saved = _saved_image(path)
    if saved is not None:
        return saved
    try:
        from ..lightfield.readers import read_lightfield

        lf = read_lightfield(path)
    except LFDeblurError as e:
        _decline(path, str(e))
        return None
    except Exception as e:  # a reader must never raise into napari
        _decline(path, f"{type(e).__name__}: {e}")
        return None

    def reader(_path):
        return lightfield_layers(lf)

    return reader
