"""The "Refocus & pairs" dock widget: live synthetic-aperture refocusing, focal stacks, disparity and training
pairs, each a public API call in a worker thread."""

from __future__ import annotations

import math
import re

import napari  # the viewer annotation must resolve at run time: napari injects the viewer by it
import numpy as np
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
from ._layers import attached_lightfield, lightfield_name, set_or_add, set_or_add_stack
from ._widget_lightfield import lightfield_of_layer
from ._workers import LatestOnly, show_error_in


def _parse_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(t) for t in text.replace(";", ",").split(",") if t.strip())
    except ValueError:
        raise LFDeblurError(f"{text!r}: write numbers separated by commas, e.g. 0.3, 0.6, 1.0") from None


def _parse_range(text: str) -> tuple[float, float]:
    """'lo, hi' -> (lo, hi), lo < hi."""
    values = _parse_floats(text)
    if len(values) != 2 or not all(math.isfinite(v) for v in values) or values[0] == values[1]:
        raise LFDeblurError(f"focal range {text!r}: write two different disparities, e.g. -1.5, 0.5")
    return min(values), max(values)


def _focal_bounds(lo: float, hi: float) -> tuple[float, float]:
    """The slider's and focal stack's range for a scene whose disparities span lo..hi: a margin on each side, so
    that the planes sweep the focus from just in front of the scene to just behind it, and never narrower than
    one px per view (a scene at one depth still gets planes that show its blur change)."""
    pad = 0.25 * max(hi - lo, 1.0)
    return round(lo - pad, 2), round(hi + pad, 2)


# a sentence of a reader's message that tells what to pass to the Python API (pattern=..., centers=...): the
# dock has no such fields, the Light field widget has
_API_ADVICE = re.compile(r"\b[a-z_]+=")
_SENTENCE_END = re.compile(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.])\s+(?=[A-Z(])")
_LOAD_ADVICE = ("open a skipped light field with the 'Light field' widget, whose format, pattern and centres "
               "fields read what the folder batch cannot guess")


def _skip_reason(err: Exception) -> str:
    """Why a light field of a folder batch was skipped, without the API's advice on its arguments."""
    text = str(err) or type(err).__name__
    sentences = _SENTENCE_END.split(text)
    kept = [t for t in sentences if not _API_ADVICE.search(t)]
    return " ".join(kept or sentences[:1])


def _squeezed(image: np.ndarray) -> np.ndarray:
    """A one-channel image or stack without its channel axis (a grey layer)."""
    return image[..., 0] if image.shape[-1] == 1 else image


class RefocusWidget(DockWidget):
    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self._lf: LightField | None = None  # decoded once, reused by every preview
        self._lf_layer = None
        self._cancel: CancelToken | None = None
        self._estimating = None  # the layer whose focal range is being estimated
        self._range_typed = False  # the user typed the focal range: an estimate arriving later keeps it
        self.last_pairs: list = []
        self.last_skipped: list[tuple[str, str]] = []  # (entry, why) of the last folder batch

        self.layer = create_widget(annotation="napari.layers.Image", label="light field")
        self.focal_range = LineEdit(
            label="focal range", value="-4, 4",
            tooltip="Disparities (px per view step) the slider and the focal stack span, 'low, high'. Set from "
                    "the light field's disparity (estimated from its views when it has none), with a margin; "
                    "type a wider range to refocus beyond the scene.")
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
        self.folder_out = FileEdit(label="write to", mode="d",
                                   tooltip="Optional: a pair folder (blur/, sharp/, manifest)")
        self.pairs_button = PushButton(text="Generate pairs")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0, visible=False)
        self.status = message_label(value="Pick a light-field layer.")
        self.extend([
            self.layer, self.focal_range, self.disparity, self.aperture, self.live, self.n_slices,
            self.stack_button, self.disparity_button, self.apertures, self.n_focus, self.source, self.folder_in,
            self.folder_out, self.pairs_button, self.cancel_button, self.progress, self.status,
        ])
        self._job_buttons = (self.stack_button, self.disparity_button, self.pairs_button)
        self._preview = LatestOnly(self._compute_preview, self._show_preview, self._notify_error,
                                   start=self.start_job)

        self.layer.changed.connect(self._on_layer_changed)
        self.focal_range.changed.connect(self._on_focal_range_typed)
        self.disparity.changed.connect(self._request_preview)
        self.aperture.changed.connect(self._request_preview)
        self.stack_button.changed.connect(self.add_focal_stack)
        self.disparity_button.changed.connect(self.estimate_disparity_map)
        self.source.changed.connect(
            lambda *_: setattr(self.folder_in, "visible", self.source.value != "this light field"))
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
        from ..lightfield.disparity import estimate_disparity_range

        self._lf = None
        self._estimating = None
        self._range_typed = False
        self._update_stack_button()
        layer = self.layer.value
        lf = attached_lightfield(layer)
        if lf is None:
            return
        known = self._known_disparity(lf)
        if known is not None:
            lo, hi = _focal_bounds(*known)
            self._set_focal_range(lo, hi)
            self.status.value = f"{lightfield_name(lf)}: focal range {lo:.2f} .. {hi:.2f} px/view"
            return
        # no disparity given: a focal stack over a guessed -4..4 was mostly planes of blur far from the scene
        self._estimating = layer
        self._update_stack_button()
        self.status.value = f"{lightfield_name(lf)}: estimating its focal range ..."

        def done(rng):
            if self._estimating is not layer:  # another layer was picked meanwhile
                return
            self._estimating = None
            self._update_stack_button()
            lo, hi = _focal_bounds(*rng)
            if self._range_typed:
                return
            self._set_focal_range(lo, hi)
            self.status.value = (f"{lightfield_name(lf)}: focal range {lo:.2f} .. {hi:.2f} px/view, estimated from "
                                 "its views (type a wider one to refocus beyond)")

        def failed(err):
            if self._estimating is layer:
                self._estimating = None
                self._update_stack_button()
                self.status.value = (f"{lightfield_name(lf)}: could not estimate its focal range ({err}); type one "
                                     "in 'focal range'")

        self.start_job(estimate_disparity_range, lf, returned=done, errored=failed)

    @staticmethod
    def _known_disparity(lf: LightField) -> tuple[float, float] | None:
        """The scene's disparity range when the light field says it (a ground-truth map, its metadata)."""
        if lf.disparity is not None and np.isfinite(lf.disparity).any():
            return float(np.nanmin(lf.disparity)), float(np.nanmax(lf.disparity))
        if lf.metadata.get("disparity_range") is not None:
            lo, hi = map(float, lf.metadata["disparity_range"])
            return lo, hi
        return None

    def _set_focal_range(self, lo: float, hi: float) -> None:
        """The focal range field and the slider's bounds; a slider value outside goes to the range's middle."""
        with self.focal_range.changed.blocked():  # not a range the user typed
            self.focal_range.value = f"{lo:g}, {hi:g}"
        self._apply_range(lo, hi)

    def _apply_range(self, lo: float, hi: float) -> None:
        slider = self.disparity
        value = float(slider.value)
        # widen first, then narrow: Qt keeps min <= max at every step and would clamp the other bound
        slider.min, slider.max = min(lo, slider.min), max(hi, slider.max)
        slider.step = 0.01 if hi - lo < 2.5 else 0.05
        if not lo <= value <= hi:
            slider.value = round(0.5 * (lo + hi), 2)
        slider.min, slider.max = lo, hi

    def _on_focal_range_typed(self, *_):
        try:
            lo, hi = _parse_range(self.focal_range.value)
        except LFDeblurError as e:
            return self._notify_error(e)
        self._range_typed = True
        self._apply_range(lo, hi)
        self.status.value = f"focal range {lo:.2f} .. {hi:.2f} px/view"

    def _update_stack_button(self) -> None:
        # the focal stack spans the focal range: it waits for the estimate (and, like every job, for the running one)
        self.stack_button.enabled = self._cancel is None and self._estimating is None

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
        data = _squeezed(img)
        layer = set_or_add(self._viewer, self._preview_name(), data, contrast_limits=(0, 1), rgb=data.ndim == 3)
        layer.metadata.update(disparity=disparity, aperture=aperture)
        self.status.value = f"refocused at d={disparity:+.2f}, aperture {aperture:.2f}"

    def preview_now(self):
        """Compute the preview synchronously (console and tests)."""
        self._show_preview(self._compute_preview(float(self.disparity.value), float(self.aperture.value)))
        return self._viewer.layers[self._preview_name()]

    # -- jobs: focal stack, disparity, pairs -----------------------------------
    def _start(self, what: str, returned, func, *args, **kwargs):
        """Run the API call ``func(*args, **kwargs)`` in a worker with the progress bar and the Cancel button."""
        for button in self._job_buttons:
            button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = f"{what} ..."
        self._cancel = self.start_task(func, *args, bar=self.progress, returned=returned,
                                       errored=self._notify_error, finished=self._job_finished, **kwargs)
        return self._cancel

    def add_focal_stack(self, *_):
        from ..lightfield.refocus import focal_stack

        if self._estimating is not None:
            self.status.value = "the focal range is being estimated: add the focal stack in a moment"
            return None
        try:
            lf = self.lightfield()
            lo, hi = _parse_range(self.focal_range.value)
        except LFDeblurError as e:
            return self._notify_error(e)
        ds = np.linspace(lo, hi, int(self.n_slices.value)).astype(np.float32)
        aperture = float(self.aperture.value)
        name = f"{self.layer.value.name} focal stack"

        def done(stack):
            if len(stack) == 0:
                self.status.value = "cancelled: no focal stack"
                return
            layer = set_or_add_stack(self._viewer, name, _squeezed(stack), "focus", contrast_limits=(0, 1))
            layer.metadata["disparities"] = ds[: len(stack)].tolist()
            cut = f" (cancelled after {len(stack)} of {len(ds)})" if len(stack) < len(ds) else ""
            self.status.value = (f"focal stack: {len(stack)} planes from d={ds[0]:+.2f} to "
                                 f"{ds[len(stack) - 1]:+.2f}{cut}, on the 'focus' slider")

        return self._start("computing the focal stack", done, focal_stack, lf, ds, aperture=aperture)

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
            set_or_add(self._viewer, name, dmap, colormap="turbo", contrast_limits=(float(lo), float(hi) + 1e-3))
            self.status.value = f"estimated disparity {lo:.2f} .. {hi:.2f} px/view (1st-99th percentile)"

        # the bar counts the candidate disparities tested; estimate_disparity reports how many there are
        return self._start("estimating disparity", done, estimate_disparity, lf)

    # -- pairs -------------------------------------------------------------
    def _pair_sources(self) -> list:
        from ..lightfield.batch import lightfield_entries

        if self.source.value == "this light field":
            return [self.lightfield()]
        return lightfield_entries(str(self.folder_in.value))

    def generate_pairs(self, *_):
        from ..io.atomic import writable_folder
        from ..lightfield.batch import pairs_from_lightfields

        try:
            sources = self._pair_sources()
            apertures = _parse_floats(self.apertures.value)
            out = str(self.folder_out.value).strip()
            out = None if out in ("", ".") else writable_folder(out, "pair folder")  # before any pair is made
        except LFDeblurError as e:
            return self._notify_error(e)
        # each pair is written as it is made: a Cancel keeps every finished one
        return self._start("generating pairs", self._show_pairs, pairs_from_lightfields, sources, out,
                           apertures=apertures, focus=int(self.n_focus.value))

    def _job_finished(self):
        self._cancel = None  # the job's token, kept while it runs: no job now
        self.cancel_button.enabled = False
        for button in self._job_buttons:
            button.enabled = True
        self._update_stack_button()

    def cancel(self, *_):
        if self._cancel is not None:
            self._cancel.cancel()
            self.status.value = "cancelling after the current step ..."

    def _show_pairs(self, batch):
        pairs = batch.pairs
        self.last_pairs = pairs
        self.last_skipped = [(name, _skip_reason(e)) for name, e in batch.skipped]
        if pairs:
            shapes = {p.blurred.shape for p in pairs}
            if len(shapes) == 1:
                blurred = _squeezed(np.stack([p.blurred for p in pairs]))
                sharp = _squeezed(np.stack([p.sharp for p in pairs]))
                b = set_or_add_stack(self._viewer, "pairs: blurred", blurred, "pair", contrast_limits=(0, 1))
                set_or_add_stack(self._viewer, "pairs: sharp", sharp, "pair", like=b, contrast_limits=(0, 1))
                b.metadata["pairs"] = [p.info for p in pairs]
        self.status.value = describe_batch(batch)
        if batch.error is not None:
            from napari.utils.notifications import show_error

            show_error(str(batch.error))


def describe_batch(batch) -> str:
    """The status line of a Generate pairs run (a :class:`~napari_lfdeblur.lightfield.batch.PairBatch`): what
    it made and where, what it skipped and why, and the error that stopped it, if any."""
    n, out = batch.made, batch.out
    where = f", written to {out}" if out is not None and n else ""
    source = f" from {batch.used} of {batch.n_sources} light fields" if batch.n_sources > 1 else ""
    if batch.error is not None:  # (a pair folder that cannot take more: say what it already holds)
        kept = f"{n} pairs{source} were written to {out} before it" if n else "no pairs were written"
        text = f"Error: {str(batch.error).rstrip('.')}. {kept}"
    elif batch.cancelled:
        text = (f"cancelled: the {n} pairs{source} finished before it are kept{where}" if n
                else "cancelled: no pairs were finished")
    else:
        text = f"{n} pairs{source}{where}" if n else "no pairs were made"
    if batch.skipped:
        listed = "; ".join(f"{name}: {_skip_reason(e)}" for name, e in batch.skipped)
        text += f". Skipped {len(batch.skipped)} of {batch.n_sources}: {listed} ({_LOAD_ADVICE})"
    return text
