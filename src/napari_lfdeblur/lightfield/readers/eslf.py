"""Lenslet-sliced ESLF images (the Stanford Lytro archive format): one V x U macro-pixel per microlens,
``eslf[y * V + v, x * U + u] = view(v, u)[y, x]``, so the (Y*V, X*U, C) image holds the (V, U, Y, X, C) light
field.  Reading is eager (one file)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ...errors import LightFieldError
from ..core import LightField
from ._common import views_pair
from ._views import probe_image, read_view_image

DEFAULT_VIEWS = 14


def lightfield_array_to_eslf(data: np.ndarray) -> np.ndarray:
    """(V, U, Y, X, C) array -> (Y*V, X*U, C) ESLF image."""
    V, U, Y, X, C = data.shape
    return np.ascontiguousarray(np.transpose(data, (2, 0, 3, 1, 4))).reshape(Y * V, X * U, C)


_NAME_VIEWS = re.compile(r"(\d+)x(\d+)[._-]?eslf\.[a-z0-9]+$", re.IGNORECASE)


def views_from_name(name: str) -> tuple[int, int] | None:
    """(V, U) from a file name such as ``plants_10x10.eslf.png`` or ``scene.8x8_eslf.png``; None without a tag."""
    m = _NAME_VIEWS.search(name)
    return (int(m.group(1)), int(m.group(2))) if m else None


def read_eslf(path: str | os.PathLike, views=None, lazy: bool = True) -> LightField:
    """Read a lenslet-sliced ESLF image.

    Parameters
    ----------
    path
        The ESLF image (PNG, or any image format Pillow/tifffile reads).
    views
        Views per macro-pixel, ``V`` or ``(V, U)``.  None: a ``VxU`` tag just
        before the ESLF suffix in the file name (``scene_10x10.eslf.png``),
        else 14 x 14 (Lytro Illum) when the image size allows it, else an
        error asking for it.
    lazy
        Ignored: the single image is decoded at once.

    Returns
    -------
    LightField
        (V, U, Y, X, C) float32 in [0, 1], sample (v, u) of macro-pixel (y, x)
        at ``data[v, u, y, x]``.
    """
    path = Path(path)
    H, W = probe_image(path).shape  # a header check before decoding a large image
    if views is None:
        views = views_from_name(path.name)
    if views is None:
        if H % DEFAULT_VIEWS or W % DEFAULT_VIEWS:
            raise LightFieldError(
                f"{path.name} is {H}x{W} pixels, not a multiple of 14 (the Lytro Illum's 14x14 views per "
                "macro-pixel). If it is an ESLF image pass views=(V, U) (the image size must be divisible by "
                "them); a single photo is not a light field."
            )
        views = DEFAULT_VIEWS
    V, U = views_pair(views, "the views per macro-pixel, a number such as 14 or a pair (V, U)")
    if H % V or W % U:
        raise LightFieldError(
            f"{path.name} is {H}x{W} pixels, which is not divisible into macro-pixels of {V}x{U} views; "
            "check views=(V, U)."
        )
    if H // V < 2 or W // U < 2:
        raise LightFieldError(f"{path.name} ({H}x{W}) with {V}x{U} views leaves views under 2 pixels; check views=.")
    img = read_view_image(path)
    # (Y*V, X*U, C) -> (V, U, Y, X, C), made contiguous before the float conversion: copying uint8 is 4x cheaper
    views_u8 = np.ascontiguousarray(img.reshape(H // V, V, W // U, U, -1).transpose(1, 3, 0, 2, 4))
    meta = {
        "source": str(path),
        "format": "eslf",
        "angular_spacing": None,
        "disparity_range": None,
        "source_dtype": str(img.dtype),
        "views_per_macropixel": (V, U),
    }
    # LightField converts the samples to float32 [0, 1] by the one value rule (a float TIFF is checked there)
    return LightField(data=views_u8, metadata=meta)


def write_eslf(lf: LightField, path: str | os.PathLike) -> Path:
    """Write a light field as a lenslet-sliced ESLF image.

    Parameters
    ----------
    lf
        The light field, (V, U, Y, X, C) in [0, 1]; every view must be present
        (ESLF has no way to mark a missing view).
    path
        Output file: ``.png`` (8 bit, exact round trip of uint8 data) or
        ``.tif``/``.tiff`` (16 bit).  Written atomically.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    from ...io.write import save_image

    if not isinstance(lf, LightField):
        raise LightFieldError(f"write_eslf needs a LightField, got {type(lf).__name__}; use read_lightfield first.")
    if not lf.view_mask.all():
        missing = int((~lf.view_mask).sum())
        raise LightFieldError(
            f"The light field has {missing} missing views; ESLF cannot mark them. Crop to a complete grid first."
        )
    return save_image(path, lightfield_array_to_eslf(np.asarray(lf.compute().data, dtype=np.float32)))
