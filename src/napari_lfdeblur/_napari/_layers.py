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
    """(data, kwargs, "image") for a light field: sliders browse v and u.  Contrast limits are fixed to [0, 1] so
    napari never computes the min/max of a lazy array (which would decode every view)."""
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


def attached_lightfield(layer) -> LightField | None:
    """The LightField a reader or the Light field widget attached to a layer, if any."""
    lf = getattr(layer, "metadata", {}).get("lightfield") if layer is not None else None
    return lf if isinstance(lf, LightField) else None


def disparity_layer(lf: LightField, name: str | None = None) -> tuple | None:
    d = lf.disparity
    if d is None:
        return None
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
    disp = disparity_layer(lf)
    return [lightfield_layer(lf, name)] + ([disp] if disp is not None else [])


def saved_image_layer(levels: list, info) -> tuple:
    """An image saved by this plugin (an OME-Zarr pyramid, finest level first) as the layer it was: colour
    channels last (OME-Zarr keeps them first on disk), every level, contrast limits from a sample of the
    coarsest one (napari would otherwise compute them from a whole lazy array, on the GUI thread)."""
    import numpy as np

    from ..inference.normalize import pixel_sample

    rgb = bool(info.rgb) and levels[0].shape[-1] in (3, 4)
    if rgb and np.dtype(levels[0].dtype) == np.uint8:
        limits = (0.0, 255.0)
    else:  # a store with one level (not written here) may be huge: a sample, not the whole array
        sample = pixel_sample(levels[-1])
        lo, hi = (float(v) for v in (np.nanmin(sample), np.nanmax(sample)))
        limits = (lo, hi if hi > lo else lo + 1.0)
    kwargs = {"name": info.stem, "rgb": rgb, "multiscale": len(levels) > 1, "contrast_limits": limits,
              "metadata": {"source": str(info.path)}}
    return (levels if len(levels) > 1 else levels[0], kwargs, "image")


def layer_snapshot(layer):
    """What :func:`layer_images` reads from an image layer, taken in the GUI thread so that a worker
    can convert the images without touching the layer (whose contrast limits may change meanwhile)."""
    from types import SimpleNamespace

    return SimpleNamespace(name=layer.name, data=layer.data, multiscale=bool(getattr(layer, "multiscale", False)),
                           rgb=bool(getattr(layer, "rgb", False)),
                           contrast_limits=tuple(float(v) for v in layer.contrast_limits))


def layer_images(layer, limit: int = 64) -> list:
    """The sharp images an image layer holds, as float32 in [0, 1] with the layer's contrast limits (what
    the user sees): one RGB(A) or grey image, or the planes of a stack (at most ``limit``, evenly spread).
    Multiscale layers give their full-resolution level."""
    import numpy as np

    from ..errors import LFDeblurError

    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    rgb = bool(getattr(layer, "rgb", False))
    plane_ndim = 3 if rgb else 2
    if data.ndim < plane_ndim:
        raise LFDeblurError(f"layer {layer.name!r} is not an image ({data.ndim}-D data).")
    lead = data.shape[: data.ndim - plane_ndim]
    count = int(np.prod(lead)) if lead else 1
    picks = np.unique(np.linspace(0, count - 1, min(count, limit)).round().astype(int))
    lo, hi = (float(v) for v in layer.contrast_limits)
    scale = 1.0 / (hi - lo) if hi > lo else 1.0
    out = []
    for k in picks:
        plane = np.asarray(data[np.unravel_index(k, lead)] if lead else data)
        if rgb and plane.dtype == np.uint8:
            out.append(plane[..., :3])  # napari draws uint8 RGB as it is
        else:
            out.append(np.clip((plane.astype(np.float32) - lo) * scale, 0.0, 1.0))
    return out


def stack_on_own_axis(viewer, stack, label: str, rgb: bool) -> tuple:
    """(data, kwargs) for a stack (N, Y, X[, C]) whose first axis gets a slider of its own.

    napari lines layers up by their trailing axes, so a focal stack beside a (v, u, y, x) light field would
    ride on its u slider: the stack gets a length-1 axis under every slider already there, stretched over
    that slider's whole range.
    """
    k = max(viewer.dims.ndim - 2, 0)
    ranges = viewer.dims.range[:k]
    data = stack.reshape(stack.shape[:1] + (1,) * k + stack.shape[1:])
    kwargs = {
        "rgb": rgb,
        "scale": (1.0, *(r.stop - r.start + r.step for r in ranges), 1.0, 1.0),
        "translate": (0.0, *((r.start + r.stop) / 2 for r in ranges), 0.0, 0.0),
        "axis_labels": (label, *viewer.dims.axis_labels[:k], "y", "x"),
    }
    return data, kwargs


def _expanded(stack, layer):
    """``stack`` with the length-1 axes that give it ``layer``'s layout, or None if it cannot have it."""
    rgb = stack.ndim == 4
    extra = layer.ndim - (stack.ndim - rgb)
    if extra < 0 or bool(layer.rgb) != rgb:
        return None
    return stack.reshape(stack.shape[:1] + (1,) * extra + stack.shape[1:])


def set_or_add(viewer, name: str, data, **kwargs):
    """Update the layer ``name`` in place (the user's view is kept) or add it."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_image(data, name=name, **kwargs)


def set_or_add_stack(viewer, name: str, stack, label: str, like=None, **kwargs):
    """Show a stack on its own slider: update the layer ``name`` in place (the user's view is kept) or add it.

    ``like``: a stack layer whose slider this one shares (the sharp images of pairs beside the blurred ones).
    """
    if name in viewer.layers:
        layer = viewer.layers[name]
        data = _expanded(stack, layer)
        if data is not None:
            layer.data = data
            return layer
        viewer.layers.remove(layer)
    data = _expanded(stack, like) if like is not None else None
    if data is not None:
        own = {"rgb": bool(like.rgb), "scale": like.scale, "translate": like.translate, "axis_labels": like.axis_labels}
    else:
        data, own = stack_on_own_axis(viewer, stack, label, stack.ndim == 4)
    return viewer.add_image(data, name=name, **own, **kwargs)
