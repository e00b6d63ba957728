"""napari reader contribution: light-field folders and array files.

napari offers every folder (``accepts_directories: true``) and the listed
file patterns; ``get_reader`` returns None for anything that is not a light
field so that other readers get their turn.  It never raises.
"""

from __future__ import annotations

import logging

from ..errors import LFDeblurError
from ._layers import lightfield_layers

log = logging.getLogger(__name__)


def get_reader(path):
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        from ..lightfield.readers import read_lightfield

        lf = read_lightfield(path)
    except LFDeblurError as e:
        log.debug("napari-lfdeblur: %s is not a light field: %s", path, e)
        return None
    except Exception as e:  # a reader must never raise into napari
        log.warning("napari-lfdeblur: could not inspect %s: %s", path, e)
        return None

    def reader(_path):
        return lightfield_layers(lf)

    return reader
