"""napari writer contribution: File › Save Layers streams an image layer to OME-Zarr or TIFF, chunk by chunk
(napari's own writers hold the whole layer in memory; a lazy deblurred one may be a 20000² pyramid)."""

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
