"""napari reader contribution: light-field folders and light-field files.

The manifest's patterns claim light-field files only (``*.lf.npy``,
``*.lf.tif``, ``*.lf.zarr``, ``*.lf.h5``, ESLF PNGs) and every folder
(``accepts_directories: true``): ordinary photos and arrays stay with
napari's own reader and open without a question.  ``get_reader`` returns None
for anything that is not a light field, so that other readers get their
turn, and says why in napari's notifications (napari itself only reports that
the plugin "refused the file").  It never raises.
"""

from __future__ import annotations

import logging

from ..errors import LFDeblurError
from ._layers import lightfield_layers

log = logging.getLogger(__name__)


def _decline(path, reason: str) -> None:
    message = f"napari-lfdeblur: {path} is not a light field it can read: {reason}"
    log.info(message)
    try:
        from napari.utils.notifications import show_info

        show_info(message)
    except Exception:  # noqa: BLE001 - a notification must never break reading
        pass


def get_reader(path):
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
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
