"""The "Light field" dock widget: load a light field from disk (``read_lightfield`` in a worker thread) or a layer,
browse it, show EPIs."""

from __future__ import annotations

import napari  # the viewer annotation must resolve at run time: napari injects the viewer by it
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    LineEdit,
    PushButton,
    SpinBox,
    create_widget,
)

from ..errors import LFDeblurError
from ..lightfield.core import LightField
from ._dock import DockWidget, message_label
from ._layers import attached_lightfield, lightfield_layers, lightfield_name
from ._workers import show_error_in

FORMATS = ("auto", "hci", "grid", "eslf", "lenslet", "array")


def _parse_views(text: str):
    text = text.strip().lower().replace(" ", "")
    if not text:
        return None
    parts = text.replace(",", "x").split("x")
    try:
        nums = [int(p) for p in parts if p]
    except ValueError:
        raise LFDeblurError(f"Views {text!r}: write the grid as e.g. 14x14 or 7.") from None
    return (nums[0], nums[0]) if len(nums) == 1 else tuple(nums[:2])


def lightfield_of_layer(layer, axes: str | None = None) -> LightField:
    """The LightField behind a layer: the one a reader attached, or the layer data read as an array."""
    lf = attached_lightfield(layer)
    if lf is not None:
        return lf
    from ..lightfield.readers import read_lightfield

    data = layer.data
    if axes is None:
        axes = "VUYXC" if getattr(layer, "rgb", False) else "VUYX"
    lf = read_lightfield(data, format="array", axes=axes)
    lf.metadata.setdefault("name", layer.name)
    return lf


class LightFieldWidget(DockWidget):
    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)

        self.path = FileEdit(label="path", mode="d", tooltip="A folder of views, or a file (tick 'file').")
        self.is_file = CheckBox(label="file", value=False, tooltip="Pick a single file instead of a folder.")
        self.format = ComboBox(label="format", choices=FORMATS, value="auto")
        self.pattern = LineEdit(label="pattern", value="", tooltip="For 'grid' folders: e.g. view_{row}_{col}.png "
                                "({row} is vertical); empty = auto.")
        self.views = LineEdit(label="views", value="", tooltip="For ESLF/lenslet: views per macro-pixel, e.g. 14x14.")
        self.centers = FileEdit(label="centres", mode="r", tooltip="Lenslet: microlens-centre table (.mat/.npy/.csv).")
        self.load_button = PushButton(text="Load light field")

        self.layer = create_widget(annotation="napari.layers.Image", label="layer")
        self.axes = LineEdit(label="axes", value="", tooltip="Axis order of a plain layer, e.g. VUYXC; empty = auto.")
        self.use_layer_button = PushButton(text="Use layer as light field")

        self.epi_row = SpinBox(label="EPI row", min=0, max=100000, value=0)
        self.epi_button = PushButton(text="Show EPIs at row")
        self._epi_for = None
        self.summary = message_label(value="")

        self.extend([
            self.path, self.is_file, self.format, self.pattern, self.views, self.centers, self.load_button,
            self.layer, self.axes, self.use_layer_button, self.epi_row, self.epi_button, self.summary,
        ])
        self.is_file.changed.connect(self._on_file_toggled)
        self.format.changed.connect(self._on_format_changed)
        self.load_button.changed.connect(self.load)
        self.use_layer_button.changed.connect(self.use_layer)
        self.epi_button.changed.connect(self.show_epi)
        self.layer.changed.connect(self._update_summary)
        self._on_format_changed()
        self._update_summary()  # a light field already open (File › Open, a sample) is picked up at once

    # -- reactions --------------------------------------------------------
    def _on_file_toggled(self, *_):
        self.path.mode = "r" if self.is_file.value else "d"

    def _on_format_changed(self, *_):
        fmt = self.format.value
        self.pattern.visible = fmt in ("auto", "grid")
        self.views.visible = fmt in ("eslf", "lenslet")
        self.centers.visible = fmt == "lenslet"

    def _options(self) -> dict:
        opts: dict = {}
        fmt = self.format.value
        if fmt != "auto":
            opts["format"] = fmt
        if self.pattern.visible and self.pattern.value.strip():
            opts["pattern"] = self.pattern.value.strip()
            opts.setdefault("format", "grid")
        if self.views.visible:
            views = _parse_views(self.views.value)
            if views:
                opts["views"] = views
        if self.centers.visible:
            opts["centers"] = str(self.centers.value)
        return opts

    def _notify_error(self, err: Exception):
        show_error_in(self.summary, err)

    # -- actions ----------------------------------------------------------
    def load(self, *_):
        """Read the light field at ``path`` in a worker thread, then add it as layers."""
        from ..lightfield.readers import read_lightfield

        path = str(self.path.value)
        try:
            opts = self._options()
        except LFDeblurError as e:
            self._notify_error(e)
            return None
        self.summary.value = f"Opening {path} ..."
        self.load_button.enabled = False
        return self.start_job(read_lightfield, path, **opts, returned=self._add_lightfield, errored=self._notify_error,
                              finished=lambda: setattr(self.load_button, "enabled", True))

    def _add_lightfield(self, lf: LightField):
        added = []
        for data, kwargs, _ in lightfield_layers(lf):
            added.append(self._viewer.add_image(data, **kwargs))
        self.layer.reset_choices()
        self.layer.value = added[0]
        self._update_summary()
        return added

    def use_layer(self, *_):
        layer = self.layer.value
        if layer is None:
            self._notify_error(LFDeblurError("Pick an image layer first."))
            return None
        try:
            lf = lightfield_of_layer(layer, self.axes.value.strip().upper() or None)
        except LFDeblurError as e:
            self._notify_error(e)
            return None
        layer.metadata["lightfield"] = lf
        self._update_summary()
        return lf

    def _update_summary(self, *_):
        lf = attached_lightfield(self.layer.value)
        if lf is None:
            self.summary.value = "Pick or load a light-field layer."
            return
        if lf is not self._epi_for:  # a new light field: EPIs through its middle row
            self._epi_for = lf
            self.epi_row.max = lf.view_shape[0] - 1
            self.epi_row.value = lf.view_shape[0] // 2
        self.summary.value = "\n".join(f"{k}: {v}" for k, v in lf.summary().items())

    def show_epi(self, *_):
        """Add the horizontal and vertical epipolar-plane images through the centre views."""
        lf = attached_lightfield(self.layer.value)
        if lf is None:
            self._notify_error(LFDeblurError("Load a light field (or 'Use layer as light field') first."))
            return []
        y = int(self.epi_row.value)
        vc, uc = lf.center_index()
        horizontal = np.asarray(lf.data[vc, :, y, :, :], dtype=np.float32)  # (U, X, C)
        column = lf.view_shape[1] // 2
        vertical = np.asarray(lf.data[:, uc, :, column, :], dtype=np.float32)  # (V, Y, C)
        vertical = np.swapaxes(vertical, 0, 1)  # (Y, V, C): y down the page like the views
        name = lightfield_name(lf)
        layers = []
        h, w = lf.view_shape
        gap = max(h, w) // 32 + 4
        # beside the views, not over them: u-x below (each view row 8 px tall), y-v to the right
        for img, label, scale, translate in (
            (horizontal, f"{name} EPI u-x (v={vc}, y={y})", (8, 1), (h + gap, 0)),
            (vertical, f"{name} EPI y-v (u={uc}, x={column})", (1, 8), (0, w + gap)),
        ):
            rgb = img.shape[-1] in (3, 4)
            data = img if rgb else img[..., 0]
            if label in self._viewer.layers:
                self._viewer.layers.remove(label)
            layers.append(self._viewer.add_image(data, name=label, rgb=rgb, contrast_limits=(0, 1), scale=scale,
                                                 translate=translate))
        self._viewer.reset_view()  # the views and both EPIs in sight
        return layers
