"""What is on screen: the part of a layer the canvas shows, and the resolution it is shown at.

A preview deblurs what the user sees.  Zoomed out on a big image, the
canvas shows many data pixels per screen pixel: deblurring all of them at
full resolution took 43 s for a 4096² photo on two CPU cores, and would take
minutes for a 20000² one, to show a picture the screen then shrinks.  So the
region is read from the level napari draws (multiscale layers) and averaged
down in blocks until it has about one pixel per screen pixel, as napari
itself picks a level: the network sees at most a few canvases of pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def canvas_size(viewer) -> tuple[int, int]:
    """The canvas's (height, width) in screen pixels (napari >= 0.9 keeps it on ``viewer.canvas``)."""
    canvas = getattr(viewer, "canvas", None)
    size = getattr(canvas, "size", None) if canvas is not None else None
    return tuple(int(s) for s in (size if size is not None else viewer._canvas_size))


def _level(layer) -> int:
    return int(layer.data_level) if getattr(layer, "multiscale", False) else 0


def visible_region(layer, viewer) -> tuple[tuple[slice, ...], tuple[float, ...]]:
    """Index into ``layer.data`` (into the level napari draws, for a multiscale layer) for what is on screen,
    and the offset of that crop in the level's pixels.

    Non-displayed axes take the current slider position; displayed axes the
    layer's visible corner pixels (napari keeps them up to date on pan/zoom,
    in the coordinates of the level it draws).
    """
    level = _level(layer)
    shape = layer.data[level].shape if getattr(layer, "multiscale", False) else layer.data.shape
    corners = np.asarray(layer.corner_pixels)  # (2, layer ndim)
    step = viewer.dims.current_step
    offset = len(step) - layer.ndim
    displayed = set(viewer.dims.displayed)
    factors = _level_factors(layer, level)
    index: list = []
    origin: list[float] = []
    for ax in range(layer.ndim):
        world_ax = ax + offset
        if world_ax in displayed:
            lo, hi = int(corners[0, ax]), int(corners[1, ax]) + 1
            lo = max(lo, 0) // 8 * 8  # on the network's 1/8 grid, like the full result's tiles
            hi = min(max(hi, lo + 1), shape[ax])
            index.append(slice(lo, hi))
            origin.append(float(lo))
        else:
            pos = round(layer.world_to_data(viewer.dims.point)[ax] / factors[ax])
            pos = int(np.clip(pos, 0, shape[ax] - 1))
            index.append(slice(pos, pos + 1))
            origin.append(float(pos))
    return tuple(index), tuple(origin)


def _level_factors(layer, level: int) -> np.ndarray:
    if not getattr(layer, "multiscale", False):
        return np.ones(layer.ndim)
    return np.asarray(layer.downsample_factors[level], dtype=float)


@dataclass(frozen=True)
class ScreenRegion:
    """The visible part of a layer at screen resolution: ``index`` into level ``level`` of its data, then
    ``factor`` x ``factor`` block means over its last two (Y, X) axes."""

    level: int
    index: tuple[slice, ...]
    origin: tuple[float, ...]
    factor: int
    level_factor: float = 1.0  # the level's downsampling along Y

    @property
    def full_resolution(self) -> bool:
        return self.level == 0 and self.factor == 1

    @property
    def downsampling(self) -> float:
        """How many full-resolution pixels one pixel of the region spans along Y (level and blocks)."""
        return self.factor * self.level_factor

    def crop(self, layer):
        """The region's data before the block means: a view or a lazy slice (read it in a worker)."""
        data = layer.data[self.level] if getattr(layer, "multiscale", False) else layer.data
        return data[self.index]

    def placement(self, layer) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """``(scale, translate)`` that put an image of the region's pixels where the region is on screen."""
        step = _level_factors(layer, self.level) * np.asarray(layer.scale, dtype=float)
        translate = np.asarray(layer.translate, dtype=float) + np.asarray(self.origin) * step
        scale = step.copy()
        for ax in (layer.ndim - 2, layer.ndim - 1):
            scale[ax] *= self.factor
            translate[ax] += (self.factor - 1) / 2 * step[ax]  # a block's centre, not its first pixel's
        return tuple(scale), tuple(translate)


def screen_region(layer, viewer) -> ScreenRegion:
    """What the canvas shows of ``layer``, with the block factor that leaves about one pixel per screen pixel
    (at least one along both axes, as napari picks a level)."""
    index, origin = visible_region(layer, viewer)
    factor = 1
    offset = len(viewer.dims.current_step) - layer.ndim
    y_ax = layer.ndim - 2
    if {y_ax + offset, y_ax + 1 + offset} <= set(viewer.dims.displayed):
        rows, cols = (index[ax].stop - index[ax].start for ax in (y_ax, y_ax + 1))
        height, width = canvas_size(viewer)
        factor = max(1, int(min(rows / max(height, 1), cols / max(width, 1))))
    level = _level(layer)
    return ScreenRegion(level, index, origin, factor, float(_level_factors(layer, level)[y_ax]))
