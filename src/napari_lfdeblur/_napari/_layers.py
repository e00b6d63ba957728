"""Turning project objects into napari layer-data tuples (one place for names and axes)."""

from __future__ import annotations

from pathlib import Path

from ..lightfield.core import LightField

LF_AXES = ("v", "u", "y", "x")


def lightfield_name(lf: LightField) -> str:
    name = lf.metadata.get("name")
    if name:
        return str(name)
    src = lf.metadata.get("source")
    if src:
        p = Path(str(src))
        return p.stem.replace(".eslf", "") if p.suffix else p.name
    return "light field"


def lightfield_layer(lf: LightField, name: str | None = None) -> tuple:
    """(data, kwargs, "image") for a light field: sliders browse v and u.

    RGB light fields become an rgb image layer over (v, u, y, x); greyscale ones
    drop the channel axis.  Contrast limits are fixed to [0, 1] so napari never
    computes the min/max of a lazy array (which would decode every view).
    """
    data = lf.data
    rgb = lf.channels in (3, 4)
    if lf.channels == 1:
        data = data[..., 0]
    elif not rgb:
        raise ValueError(f"cannot show a light field with {lf.channels} channels as one layer")
    kwargs = {
        "name": name or lightfield_name(lf),
        "rgb": rgb,
        "contrast_limits": (0.0, 1.0),
        "axis_labels": LF_AXES,
        "metadata": {"lightfield": lf, "source": str(lf.metadata.get("source", ""))},
    }
    return data, kwargs, "image"


def disparity_layer(lf: LightField, name: str | None = None) -> tuple | None:
    if lf.disparity is None:
        return None
    d = lf.disparity
    lo, hi = float(d.min()), float(d.max())
    kwargs = {
        "name": name or f"{lightfield_name(lf)} disparity (ground truth)",
        "colormap": "turbo",
        "contrast_limits": (lo, hi if hi > lo else lo + 1e-3),
        "visible": False,
        "metadata": {"units": "px per view step"},
    }
    return d, kwargs, "image"


def lightfield_layers(lf: LightField, name: str | None = None) -> list[tuple]:
    layers = [lightfield_layer(lf, name)]
    disp = disparity_layer(lf)
    if disp is not None:
        layers.append(disp)
    return layers
