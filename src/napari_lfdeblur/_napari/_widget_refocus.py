"""The "Refocus & pairs" dock widget: live synthetic-aperture refocusing and training pairs.

Every button calls the public API (``refocus``, ``focal_stack``,
``estimate_disparity``, ``make_pairs``, ``write_pairs``) in a worker thread;
the slider preview keeps only the newest request, so dragging never queues up
work and the viewer never freezes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import napari  # the viewer annotation must resolve at run time: napari injects the viewer by it
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    FloatSlider,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)

from ..cancel import CancelToken
from ..errors import LFDeblurError
from ..lightfield.core import LightField
from ._dock import DockWidget, message_label
from ._layers import lightfield_name, set_or_add_stack
from ._widget_lightfield import lightfield_of_layer
from ._workers import LatestOnly, show_error_in


def _parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())
    except ValueError:
        raise LFDeblurError(f"{text!r}: write numbers separated by commas, e.g. 0.3, 0.6, 1.0") from None


def _set_or_add(viewer, name: str, data, **kwargs):
    """Update a layer of that name in place (keeps the user's view) or add it."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        layer.data = data
        return layer
    return viewer.add_image(data, name=name, **kwargs)


def _stack_layer_data(images: list[np.ndarray]) -> np.ndarray:
    stack = np.stack(images)
    return stack[..., 0] if stack.shape[-1] == 1 else stack


class RefocusWidget(DockWidget):
    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self._lf: LightField | None = None  # decoded once, reused by every preview
        self._lf_layer = None
        self._cancel: CancelToken | None = None
        self.last_pairs: list = []

        self.layer = create_widget(annotation="napari.layers.Image", label="light field")
        self.disparity = FloatSlider(label="disparity", min=-4.0, max=4.0, step=0.05, value=0.0,
                                     tooltip="Focus plane in pixels per view step")
        self.aperture = FloatSlider(label="aperture", min=0.05, max=1.0, step=0.05, value=1.0,
                                    tooltip="Fraction of the view grid's radius (1 = all views)")
        self.live = CheckBox(label="live preview", value=True)
        self.n_slices = SpinBox(label="slices", min=2, max=200, value=9)
        self.stack_button = PushButton(text="Add focal stack")
        self.disparity_button = PushButton(text="Estimate disparity map")
        self.apertures = LineEdit(label="apertures", value="0.33, 0.66, 1.0")
        self.n_focus = SpinBox(label="focus planes", min=1, max=50, value=5)
        self.source = ComboBox(label="pairs from", choices=["this light field", "folder of light fields"])
        self.folder_in = FileEdit(label="input folder", mode="d", visible=False)
        self.folder_out = FileEdit(label="write to", mode="d", tooltip="Optional: a pair folder (blur/, sharp/, manifest)")
        self.pairs_button = PushButton(text="Generate pairs")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0, visible=False)
        self.status = message_label(value="Pick a light-field layer.")
        self.extend([
            self.layer, self.disparity, self.aperture, self.live, self.n_slices, self.stack_button,
            self.disparity_button, self.apertures, self.n_focus, self.source, self.folder_in, self.folder_out,
            self.pairs_button, self.cancel_button, self.progress, self.status,
        ])
        self._job_buttons = (self.stack_button, self.disparity_button, self.pairs_button)
        self._preview = LatestOnly(self._compute_preview, self._show_preview, self._notify_error,
                                   start=self.start_job)

        self.layer.changed.connect(self._on_layer_changed)
        self.disparity.changed.connect(self._request_preview)
        self.aperture.changed.connect(self._request_preview)
        self.stack_button.changed.connect(self.add_focal_stack)
        self.disparity_button.changed.connect(self.estimate_disparity_map)
        self.source.changed.connect(lambda *_: setattr(self.folder_in, "visible", self.source.value != "this light field"))
        self.pairs_button.changed.connect(self.generate_pairs)
        self.cancel_button.changed.connect(self.cancel)
        self._on_layer_changed()

    # -- helpers ---------------------------------------------------------
    def _notify_error(self, err: Exception):
        show_error_in(self.status, err)

    def lightfield(self) -> LightField:
        """The chosen layer's light field, decoded into memory once."""
        layer = self.layer.value
        if layer is None:
            raise LFDeblurError("Pick a light-field layer (load one with the 'Light field' widget).")
        if self._lf is None or self._lf_layer is not layer:
            self._lf = lightfield_of_layer(layer).compute()
            self._lf_layer = layer
        return self._lf

    def _on_layer_changed(self, *_):
        self._lf = None
        layer = self.layer.value
        if layer is None:
            return
        lf = layer.metadata.get("lightfield")
        if isinstance(lf, LightField):
            lo, hi = self._disparity_bounds(lf)
            self.disparity.min, self.disparity.max = lo, hi
            self.status.value = f"{lightfield_name(lf)}: disparity slider {lo:.2f} .. {hi:.2f} px/view"

    @staticmethod
    def _disparity_bounds(lf: LightField) -> tuple[float, float]:
        if lf.disparity is not None:
            lo, hi = float(np.nanmin(lf.disparity)), float(np.nanmax(lf.disparity))
        elif lf.metadata.get("disparity_range") is not None:
            lo, hi = map(float, lf.metadata["disparity_range"])
        else:
            return -4.0, 4.0
        pad = 0.25 * max(hi - lo, 0.5)
        return round(lo - pad, 2), round(hi + pad, 2)

    def _preview_name(self) -> str:
        return f"{self.layer.value.name} refocused"

    # -- live preview ----------------------------------------------------
    def _request_preview(self, *_):
        if self.live.value and self.layer.value is not None:
            self._preview.request(float(self.disparity.value), float(self.aperture.value))

    def _compute_preview(self, disparity: float, aperture: float):
        from ..lightfield.refocus import refocus

        return disparity, aperture, refocus(self.lightfield(), disparity, aperture=aperture)

    def _show_preview(self, result):
        disparity, aperture, img = result
        data = img[..., 0] if img.shape[-1] == 1 else img
        layer = _set_or_add(self._viewer, self._preview_name(), data, contrast_limits=(0, 1),
                            rgb=data.ndim == 3)
        layer.metadata.update(disparity=disparity, aperture=aperture)
        self.status.value = f"refocused at d={disparity:+.2f}, aperture {aperture:.2f}"

    def preview_now(self):
        """Compute the preview synchronously (console and tests)."""
        self._show_preview(self._compute_preview(float(self.disparity.value), float(self.aperture.value)))
        return self._viewer.layers[self._preview_name()]

    # -- jobs: focal stack, disparity, pairs -----------------------------------
    def _start(self, func, total: int, what: str, returned):
        """Run ``func(progress, token)`` in a worker with the progress bar and the Cancel button."""
        from superqt.utils import ensure_main_thread

        token = self._cancel = CancelToken()
        report = ensure_main_thread(self._on_progress)
        self.progress.visible = True
        self.progress.max = max(total, 1)
        self.progress.value = 0
        for button in self._job_buttons:
            button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = f"{what} ..."
        return self.start_job(func, lambda k, n: report((k, n)), token, token=token, returned=returned,
                              errored=self._notify_error, finished=self._job_finished)

    def add_focal_stack(self, *_):
        from ..lightfield.refocus import focal_stack

        try:
            lf = self.lightfield()
        except LFDeblurError as e:
            return self._notify_error(e)
        ds = np.linspace(self.disparity.min, self.disparity.max, int(self.n_slices.value)).astype(np.float32)
        aperture = float(self.aperture.value)
        name = f"{self.layer.value.name} focal stack"

        def done(stack):
            if len(stack) == 0:
                self.status.value = "cancelled: no focal stack"
                return
            data = stack[..., 0] if stack.shape[-1] == 1 else stack
            layer = set_or_add_stack(self._viewer, name, data, "focus", contrast_limits=(0, 1))
            layer.metadata["disparities"] = ds[: len(stack)].tolist()
            cut = f" (cancelled after {len(stack)} of {len(ds)})" if len(stack) < len(ds) else ""
            self.status.value = (f"focal stack: {len(stack)} planes from d={ds[0]:+.2f} to "
                                 f"{ds[len(stack) - 1]:+.2f}{cut}, on the 'focus' slider")

        return self._start(lambda progress, token: focal_stack(lf, ds, aperture=aperture, progress=progress,
                                                               cancel=token),
                           len(ds), "computing the focal stack", done)

    def estimate_disparity_map(self, *_):
        from ..lightfield.disparity import estimate_disparity

        try:
            lf = self.lightfield()
        except LFDeblurError as e:
            return self._notify_error(e)
        name = f"{self.layer.value.name} disparity (estimated)"

        def done(dmap):
            if dmap is None:
                self.status.value = "cancelled: no disparity map"
                return
            lo, hi = np.percentile(dmap, [1, 99])
            _set_or_add(self._viewer, name, dmap, colormap="turbo", contrast_limits=(float(lo), float(hi) + 1e-3))
            self.status.value = f"estimated disparity {lo:.2f} .. {hi:.2f} px/view (1st-99th percentile)"

        # the bar counts the candidate disparities tested; estimate_disparity reports how many there are
        return self._start(lambda progress, token: estimate_disparity(lf, progress=progress, cancel=token),
                           1, "estimating disparity", done)

    # -- pairs -------------------------------------------------------------
    def _pair_sources(self) -> list:
        if self.source.value == "this light field":
            return [self.lightfield()]
        folder = Path(str(self.folder_in.value))
        subs = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        if not subs:
            raise LFDeblurError(f"{folder} is empty: give a folder whose entries are light fields.")
        return subs

    def generate_pairs(self, *_):
        from ..io.atomic import writable_folder

        try:
            sources = self._pair_sources()
            apertures = _parse_floats(self.apertures.value)
            out = str(self.folder_out.value).strip()
            out = None if out in ("", ".") else writable_folder(out, "pair folder")  # before any pair is made
        except LFDeblurError as e:
            return self._notify_error(e)
        n_focus = int(self.n_focus.value)
        per_lf = len(apertures) * n_focus
        total = per_lf * len(sources)

        def job(progress, token):
            from ..lightfield.pairs import iter_pairs, write_pairs
            from ..lightfield.readers import read_lightfield

            made: list = []

            def kept(pairs):
                for pair in pairs:
                    made.append(pair)
                    yield pair

            for i, src in enumerate(sources):
                if token.cancelled:
                    break
                lf = src if isinstance(src, LightField) else read_lightfield(src)
                pairs = kept(iter_pairs(lf, apertures=apertures, focus=n_focus, cancel=token,
                                        progress=lambda k, n, base=i * per_lf: progress(base + k, total)))
                if out is not None:
                    write_pairs(pairs, out)  # each pair as it is made: a Cancel keeps every finished one
                else:
                    list(pairs)
            return made, out

        return self._start(job, total, "generating pairs", self._show_pairs)

    def _on_progress(self, step):
        done, total = step
        self.progress.max = max(total, 1)
        self.progress.value = done

    def _job_finished(self):
        for button in self._job_buttons:
            button.enabled = True
        self.cancel_button.enabled = False

    def cancel(self, *_):
        if self._cancel is not None:
            self._cancel.cancel()
            self.status.value = "cancelling after the current step ..."

    def _show_pairs(self, result):
        pairs, out = result
        self.last_pairs = pairs
        cancelled = self._cancel is not None and self._cancel.cancelled
        where = f", written to {out}" if out is not None else ""
        if not pairs:
            self.status.value = "cancelled: no pairs were finished" if cancelled else "no pairs were made"
            return
        shapes = {p.blurred.shape for p in pairs}
        if len(shapes) == 1:
            blurred = _stack_layer_data([p.blurred for p in pairs])
            sharp = _stack_layer_data([p.sharp for p in pairs])
            b = set_or_add_stack(self._viewer, "pairs: blurred", blurred, "pair", contrast_limits=(0, 1))
            set_or_add_stack(self._viewer, "pairs: sharp", sharp, "pair", like=b, contrast_limits=(0, 1))
            b.metadata["pairs"] = [p.info for p in pairs]
        if cancelled:
            self.status.value = f"cancelled: the {len(pairs)} pairs finished before it are kept{where}"
        else:
            self.status.value = f"{len(pairs)} pairs{where}"
