"""napari writer contribution: File › Save Layers streams an image layer to OME-Zarr or TIFF.

napari's own writers hold the whole layer in memory; a lazy deblurred layer
(a dask array, perhaps a pyramid over a 20000² image) is computed chunk by
chunk here instead, through the same :func:`~napari_lfdeblur.io.save_image_streaming`
as the Deblur dock's *Save result…* and ``lfdeblur deblur -o``: written
atomically, an existing folder that is not an OME-Zarr image refused.  The
reader (``_reader.py``) opens the OME-Zarr back as the image it was.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def write_image(path: str, data, meta: dict) -> list[str]:
    """Write one image layer (its full-resolution level) to ``path``; the files written."""
    from napari.utils import progress as napari_progress

    from ..io import save_image_streaming

    full = data[0] if meta.get("multiscale") else data
    bar = napari_progress(total=0, desc=f"saving {meta.get('name') or 'layer'}")

    def report(done: int, total: int) -> None:
        bar.total = max(total, 1)
        bar.n = done
        bar.refresh()

    try:
        written = save_image_streaming(full, path, rgb=bool(meta.get("rgb")), progress=report)
    finally:
        bar.close()
    log.info("saved %s to %s", meta.get("name"), written)
    return [str(written)]
