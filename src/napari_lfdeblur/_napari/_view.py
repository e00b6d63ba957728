"""What is on screen: the part of a layer the canvas shows (from the camera), and the resolution it is shown at.

A preview deblurs what the user sees, at about one pixel per screen pixel (docs/performance.md): zoomed out on a
big image, full resolution would cost minutes to show a picture the screen then shrinks."""

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


def _viewbox_size(viewer) -> np.ndarray:
    """(height, width) of the canvas, or of one cell of it in grid mode (side by side)."""
    canvas = getattr(viewer, "canvas", None)
    if canvas is not None and hasattr(canvas, "viewbox_size"):
        return np.asarray(canvas.viewbox_size(viewer.layers), dtype=float)
    return np.asarray(canvas_size(viewer), dtype=float)


def _visible_extent(layer, viewer) -> np.ndarray:
    """What is on screen in full-resolution pixels, (2, layer ndim): first pixel, one past the last.

    From the camera in 2D: napari's ``corner_pixels`` are widened to whole chunks of a lazy layer (a 1024-px
    view of a pyramid in 1024-px chunks read as 2048 px).  In 3D, the corner pixels.
    """
    if viewer.dims.ndisplay != 2:
        factors = _level_factors(layer, _level(layer))
        corners = np.asarray(layer.corner_pixels, dtype=float)
        return np.stack([corners[0] * factors, (corners[1] + 1) * factors])
    extent = np.zeros((2, layer.ndim))  # rows of axes not on screen stay unused: they take the sliders
    camera = getattr(viewer, "scene", viewer).camera  # napari >= 0.9: viewer.scene.camera
    half = _viewbox_size(viewer) / float(camera.zoom) / 2
    centre = np.asarray(camera.center, dtype=float)[-2:]
    displayed = list(viewer.dims.displayed)[-2:]
    world = []
    for dy in (-1, 1):
        for dx in (-1, 1):
            point = np.asarray(viewer.dims.point, dtype=float)
            point[displayed] = centre + half * (dy, dx)
            world.append(layer.world_to_data(point))
    data = np.asarray(world)  # the screen's corners in data coordinates (pixel centres at integers)
    full = layer.data[0].shape if getattr(layer, "multiscale", False) else layer.data.shape
    offset = len(viewer.dims.point) - layer.ndim
    for world_ax in displayed:
        ax = world_ax - offset
        if 0 <= ax < layer.ndim:
            extent[0, ax] = np.clip(np.floor(data[:, ax].min() + 0.5), 0, full[ax] - 1)
            extent[1, ax] = np.clip(np.ceil(data[:, ax].max() + 0.5), extent[0, ax] + 1, full[ax])
    return extent


def visible_region(layer, viewer, level: int | None = None) -> tuple[tuple[slice, ...], tuple[float, ...]]:
    """Index into level ``level`` of ``layer.data`` (default: the level napari draws; the data itself for a
    single-scale layer) for what is on screen, and the offset of that crop in the level's pixels.  Axes not
    displayed take the current slider position."""
    multiscale = getattr(layer, "multiscale", False)
    level = _level(layer) if level is None else int(level)
    shape = layer.data[level].shape if multiscale else layer.data.shape
    extent = _visible_extent(layer, viewer)
    factors = _level_factors(layer, level)
    step = viewer.dims.current_step
    offset = len(step) - layer.ndim
    displayed = set(viewer.dims.displayed)
    index: list = []
    origin: list[float] = []
    for ax in range(layer.ndim):
        world_ax = ax + offset
        if world_ax in displayed:
            lo = int(np.floor(extent[0, ax] / factors[ax]))
            hi = int(np.ceil(extent[1, ax] / factors[ax]))
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
    """What the canvas shows of ``layer`` at about one pixel per screen pixel (at least one along both axes,
    napari's rule for picking a level): the coarsest level that has that many, then block means on top.

    The level is chosen here from the camera, not read from napari, whose choice follows its chunk-widened
    corners: a 1024-px view of a pyramid in 1024-px chunks was previewed at half the screen's resolution.
    """
    offset = len(viewer.dims.current_step) - layer.ndim
    y_ax = layer.ndim - 2
    on_screen = {y_ax + offset, y_ax + 1 + offset} <= set(viewer.dims.displayed)
    height, width = (max(n, 1.0) for n in _viewbox_size(viewer))
    level = 0
    if on_screen and getattr(layer, "multiscale", False):
        extent = _visible_extent(layer, viewer)
        rows, cols = extent[1, y_ax] - extent[0, y_ax], extent[1, y_ax + 1] - extent[0, y_ax + 1]
        for k in range(len(layer.data)):
            fy, fx = _level_factors(layer, k)[[y_ax, y_ax + 1]]
            if rows / fy >= height and cols / fx >= width:
                level = k
    index, origin = visible_region(layer, viewer, level)
    factor = 1
    if on_screen:
        rows, cols = (index[ax].stop - index[ax].start for ax in (y_ax, y_ax + 1))
        factor = max(1, int(min(rows / height, cols / width)))
    return ScreenRegion(level, index, origin, factor, float(_level_factors(layer, level)[y_ax]))
