"""The "Deblur" dock widget: preview the visible region, deblur a layer lazily (``deblur_for_viewer``) or eagerly
(``deblur``), score both against a sharp reference, save the result."""

from __future__ import annotations

import html
import logging
from pathlib import Path

import napari  # the viewer annotation must resolve at run time: napari injects the viewer by it
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    ProgressBar,
    PushButton,
    create_widget,
)

from ..cancel import Cancelled, CancelToken
from ..errors import LFDeblurError
from . import _models
from ._dock import DockWidget, message_label
from ._models import (
    AUTHORS,
    DEFAULT,
    FROM_FILE,
    deblur_model_choices,
    device_choices,
    on_models_changed,
    resolve_choice,
)
from ._rendering import async_rendering, enable_for_session, restore
from ._tile_progress import TileProgress
from ._view import screen_region, visible_region
from ._workers import show_error_in

log = logging.getLogger(__name__)

# Scores of a lazy result compute its visible region a second time (napari's drawing keeps no copy):
# above this many pixels, ask the user to zoom in instead of deblurring most of a big image again.
MAX_SCORE_PIXELS = 2048 * 2048


def score_table(title: str, before: dict, after: dict) -> str:
    """The scores as a small table (rich text): input, deblurred and the change, one column per score."""
    def row(name, values, signed=False):
        cells = "".join(f"<td align='right'>&nbsp;{v:{'+' if signed else ''}.{d}f}</td>"
                        for v, d in zip(values, (2, 3, 4)))
        return f"<tr><td>{name}</td>{cells}</tr>"

    keys = ("psnr", "ssim", "mae")
    return (f"<b>{html.escape(title, quote=False)}</b><table cellspacing='0'>"
            "<tr><th></th><th align='right'>PSNR dB</th><th align='right'>SSIM</th><th align='right'>MAE</th></tr>"
            + row("input", [before[k] for k in keys]) + row("deblurred", [after[k] for k in keys])
            + row("change", [after[k] - before[k] for k in keys], signed=True) + "</table>")


def ask_save_path(parent, suggested: str) -> str:
    """The file a user picks in a save dialog ('' if cancelled); tests replace this function."""
    from qtpy.QtWidgets import QFileDialog

    path, _ = QFileDialog.getSaveFileName(parent, "Save the deblurred layer", suggested,
                                          "OME-Zarr (*.ome.zarr);;TIFF (*.tif *.tiff)")
    return path


class DeblurWidget(DockWidget):
    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        self._cancel: CancelToken | None = None
        self._tiles: TileProgress | None = None
        # the viewer closing deletes this dock: napari's rendering setting goes back to what it was
        self.native.destroyed.connect(lambda *_: restore())
        self._add_inputs()
        self._add_actions()
        # the result's status and scores right under the buttons, where the eye is after a click
        self.extend([
            self.layer, self.reference, self.model, self.model_path, self.device, self.precision, self.tile, self.lazy,
            self.background, self.show_result, self.side_by_side, self.preview_button, self.run_button,
            self.save_button, self.cancel_button, self.progress, self.status, self.scores,
        ])
        # each Preview or Deblur layer press is a new request: results and scores of older ones that finish
        # later are dropped (a first preview's scores arrived 18 s late and replaced the whole layer's)
        self._request = 0
        self.model.changed.connect(lambda *_: setattr(self.model_path, "visible", self.model.value == FROM_FILE))
        self.model.changed.connect(self._offer_authors_download)
        self.preview_button.changed.connect(self.preview)
        self.run_button.changed.connect(self.run)
        self.save_button.changed.connect(self.save_result)
        self.cancel_button.changed.connect(self.cancel)
        self.show_result.changed.connect(self._toggle_results)
        self.side_by_side.changed.connect(self._set_grid)
        self.background.changed.connect(self._on_background)
        on_models_changed(self.model.reset_choices)

    def _add_inputs(self) -> None:
        """The layers, the model and how it runs: what ``deblur`` is called with."""
        self.layer = create_widget(annotation="napari.layers.Image", label="image")
        self.reference = create_widget(
            annotation="napari.layers.Image", label="sharp reference",
            options={"nullable": True, "tooltip": "Optional: a sharp image of the same scene and size; the input "
                     "and the result are scored against it (PSNR, SSIM, MAE)"},
        )
        self.reference.value = None
        self.model = ComboBox(label="model", choices=deblur_model_choices)
        self.model_path = FileEdit(label="checkpoint", mode="r", filter="*.pt *.pth", visible=False)
        self.device = ComboBox(label="device", choices=device_choices, value="auto")
        self.precision = ComboBox(
            label="precision", choices=["auto", "float32", "bfloat16", "float16"], value="auto",
            tooltip="auto: bfloat16 on CPUs that compute it natively (about twice as fast, within a level or two of "
                    "float32), float32 elsewhere; float16/bfloat16 also on GPUs",
        )
        self.tile = ComboBox(
            label="tile", value=0,
            choices=[("auto", 0)] + [(str(n), n) for n in (256, 512, 1024, 2048, 4096)],
            tooltip="Tile size in pixels (lazy: the chunk size); smaller needs less memory.  auto: on the CPU the "
                    "largest tiles that fit 512 MiB of working memory (the whole image when it fits), 512 on a GPU; "
                    "lazy chunks of 512 (multiscale) or 1024",
        )
        self.lazy = CheckBox(label="lazy (fill as you pan)", value=True)
        self.background = CheckBox(
            label="background rendering", value=True,
            tooltip="napari's 'Render Layers Asynchronously', turned on for this session while lazy results are "
                    "shown (your saved preferences are left as they are): their tiles are computed without "
                    "freezing the viewer.  Untick to compute them on the GUI thread.",
        )

    def _add_actions(self) -> None:
        """The buttons, the result's display, progress, status and scores."""
        self.preview_button = PushButton(text="Preview visible region")
        self.run_button = PushButton(text="Deblur layer")
        self.save_button = PushButton(text="Save result…", tooltip="Write the deblurred layer to OME-Zarr (.ome.zarr) "
                                      "or TIFF (.tif), computing a lazy result chunk by chunk; Cancel stops it")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0, visible=False)
        self.show_result = CheckBox(label="show deblurred", value=True)
        self.side_by_side = CheckBox(label="side by side", value=False)
        self.status = message_label(fill=False, value="")
        self.scores = message_label(value="")

    # -- helpers --------------------------------------------------------------
    def _on_background(self, on: bool):
        if not on:
            restore()  # only undoes what this plugin turned on: a user's own setting stays
        elif any(lyr.metadata.get("deblurred_from") for lyr in self._viewer.layers):
            enable_for_session()

    def _notify_error(self, err: Exception):
        from ..inference.deblur import DeblurCancelled

        if isinstance(err, DeblurCancelled):
            self.status.value = "cancelled: nothing was added"
            return
        if isinstance(err, Cancelled):  # Save result…
            self.status.value = f"cancelled: {err}"
            return
        show_error_in(self.status, err)

    def _kwargs(self) -> dict:
        return {
            "model": resolve_choice(self.model.value, self.model_path.value),
            "device": self.device.value,
            "dtype": self.precision.value,
            "tile": int(self.tile.value) or None,  # 0 shows "auto"
        }

    def _source(self, lazy: bool = False):
        layer = self.layer.value
        if layer is None:
            raise LFDeblurError("Pick an image layer to deblur.")
        if getattr(layer, "multiscale", False) and not lazy:
            raise LFDeblurError("Multiscale layers are deblurred lazily: tick 'lazy'.")
        return layer

    def _result_kwargs(self, layer, name: str) -> dict:
        kw = {
            "name": name,
            "rgb": layer.rgb,
            "scale": layer.scale,
            "translate": layer.translate,
            "metadata": {"deblurred_from": layer.name},
        }
        if not layer.rgb:
            kw["contrast_limits"] = tuple(layer.contrast_limits)
            kw["colormap"] = layer.colormap.name
        return kw

    def _set_grid(self, enabled: bool):
        # napari >= 0.9 keeps the grid on viewer.canvas; older versions on the viewer
        holder = getattr(self._viewer, "canvas", None) or self._viewer
        holder.grid.enabled = bool(enabled)

    def _new_request(self) -> int:
        self._request += 1
        self.scores.value = ""  # the scores shown were of an older result
        return self._request

    def _score(self, layer, image, result, index, what: str, request: int):
        """Score ``image`` and ``result`` (the region ``index`` of ``layer``) against the reference, in a worker
        (lazy arrays are sliced here and computed there: only that region is read or deblurred)."""
        ref = self.reference.value
        if ref is None or ref is layer:
            self.scores.value = ""
            return None
        if getattr(layer, "multiscale", False) or getattr(ref, "multiscale", False):
            self.scores.value = "scores need single-scale layers"
            return None
        if tuple(ref.data.shape) != tuple(layer.data.shape):
            self.scores.value = (f"the sharp reference is {'x'.join(map(str, ref.data.shape))}, the image "
                                 f"{'x'.join(map(str, layer.data.shape))}: pick a reference of the same size")
            return None
        pixels = int(np.prod(image.shape[:-1] if layer.rgb else image.shape))
        if pixels > MAX_SCORE_PIXELS:
            self.scores.value = "zoom in (or use Preview) to score: the visible region is too large to deblur twice"
            return None
        reference, rgb, name = ref.data[index], bool(layer.rgb), ref.name
        where = f"{what} {'x'.join(map(str, image.shape[-3:-1] if rgb else image.shape[-2:]))} px"

        def job():
            from ..evaluation import compare

            r = np.asarray(reference)
            return compare(np.asarray(image), r, rgb=rgb), compare(np.asarray(result), r, rgb=rgb)

        def done(scores):
            if request != self._request:
                return
            before, after = scores
            self.scores.value = score_table(f"vs {name!r} ({where})", before, after)
            log.info("%s deblurred vs %r (%s): PSNR %.2f -> %.2f dB, SSIM %.3f -> %.3f, MAE %.4f -> %.4f", layer.name,
                     name, where, before["psnr"], after["psnr"], before["ssim"], after["ssim"], before["mae"],
                     after["mae"])

        def failed(err):
            if request == self._request:
                show_error_in(self.scores, err)

        self.scores.value = f"scoring against {name!r} ..."
        return self.start_job(job, returned=done, errored=failed)

    def _plane(self, layer) -> tuple[slice, ...]:
        """Index of the whole plane (or volume) on screen: displayed axes whole, the others at the sliders."""
        index, _ = visible_region(layer, self._viewer)
        offset = self._viewer.dims.ndim - layer.ndim
        displayed = set(self._viewer.dims.displayed)
        return tuple(slice(None) if ax + offset in displayed else s for ax, s in enumerate(index))

    def _toggle_results(self, show: bool):
        for lyr in self._viewer.layers:
            if lyr.metadata.get("deblurred_from"):
                lyr.visible = bool(show)

    # -- actions --------------------------------------------------------------
    def preview(self, *_):
        """Deblur what is on screen (current slice, visible region, at about the screen's resolution) and add
        it in place.  The region is read and deblurred in a worker: the viewer stays responsive."""
        from ..inference.deblur import deblur
        from ..io.levels import block_mean

        try:
            layer = self._source(lazy=True)  # a multiscale layer too: the preview reads the level on screen
            kwargs = self._kwargs()
        except LFDeblurError as e:
            return self._notify_error(e)
        region = screen_region(layer, self._viewer)
        crop = region.crop(layer)  # a view or a lazy slice: nothing is read here
        request = self._new_request()
        name = f"{layer.name} deblurred (preview)"
        y_ax = layer.ndim - 2

        def job():
            image = np.asarray(crop.compute() if hasattr(crop, "compute") else crop)
            image = block_mean(image, region.factor, y_ax)
            return image, deblur(image, **kwargs)

        def done(out):
            if request != self._request:
                return  # a newer request was made meanwhile: its result is the one to show
            image, result = out
            kw = self._result_kwargs(layer, name)
            kw["scale"], kw["translate"] = region.placement(layer)
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            self._viewer.add_image(result, **kw)
            size = "x".join(map(str, result.shape[y_ax:y_ax + 2]))
            if region.full_resolution:
                self.status.value = f"preview of {size} px"
                self._score(layer, image, result, region.index, "preview", request)
            else:
                self.status.value = (f"preview at 1/{region.downsampling:.3g} resolution, as on screen ({size} px); "
                                     "zoom in for full resolution")
                if self.reference.value is not None:
                    self.scores.value = "scores need a full-resolution preview: zoom in"

        self.status.value = "deblurring the visible region ..."
        return self.start_job(job, returned=done, errored=self._notify_error)

    def run(self, *_):
        """Deblur the whole layer: lazily (dask, napari computes visible tiles) or eagerly with progress."""
        from ..inference.deblur import deblur

        try:
            layer = self._source(lazy=bool(self.lazy.value))
            kwargs = self._kwargs()
        except LFDeblurError as e:
            return self._notify_error(e)
        name = f"{layer.name} deblurred"
        request = self._new_request()
        if self.lazy.value:
            return self._add_lazy(layer, kwargs, name, request)

        data = layer.data

        def done(result):
            if result is None:
                self.status.value = "cancelled: the layer is unchanged"
                return
            if request != self._request:
                return
            if name in self._viewer.layers:
                self._viewer.layers.remove(name)
            self._viewer.add_image(result, **self._result_kwargs(layer, name))
            self.status.value = f"deblurred {layer.name}"
            # in memory: score the whole plane on screen; anything lazy: only the visible region
            if all(isinstance(a, np.ndarray) for a in (data, result, getattr(self.reference.value, "data", None))):
                index, what = self._plane(layer), "whole image"
            else:
                index, what = visible_region(layer, self._viewer)[0], "visible region"
            self._score(layer, data[index], result[index], index, what, request)

        self.status.value = "deblurring ..."
        return self._start(deblur, data, **kwargs, returned=done)

    def _add_lazy(self, layer, kwargs: dict, name: str, request: int):
        """A lazily computed result layer (``deblur_for_viewer``), made in a worker: napari then computes the
        chunks it draws.  The tile box sets the chunk."""
        from ..inference.pyramid import PYRAMID_ABOVE, deblur_for_viewer

        multiscale = bool(getattr(layer, "multiscale", False))
        source = list(layer.data) if multiscale else layer.data
        options = dict(kwargs, tile=None, chunk=kwargs["tile"])

        def job():
            return deblur_for_viewer(source, rgb=bool(layer.rgb), **options)

        self.status.value = ("computing the overview in the background ..." if multiscale else
                             f"preparing the lazy result in the background (an image larger than {PYRAMID_ABOVE} "
                             "px is read once, whole, for its overview; a multiscale one, such as an OME-Zarr "
                             "pyramid, shows sooner) ...")
        return self.start_job(job, returned=lambda data: self._show_lazy(layer, data, name, request),
                              errored=self._notify_error)

    def _show_lazy(self, layer, levels: list, name: str, request: int):
        """Add the lazy levels (finest first; one: a plain layer), their tiles counted as napari computes them."""
        if request != self._request:
            return None
        if self._tiles is not None:
            self._tiles.close()
        self._tiles = TileProgress(levels, f"deblurring {layer.name}",
                                   lambda done, total: self._on_tiles(name, done, total))
        data = self._tiles.levels if len(levels) > 1 else self._tiles.levels[0]
        if self.background.value:
            # napari computes lazy tiles on the GUI thread unless asked otherwise: a frozen viewer
            # while a chunk goes through the network (benchmarks/bench_viewer_pan.py)
            enable_for_session()
        kw = self._result_kwargs(layer, name)
        kw["contrast_limits"] = tuple(layer.contrast_limits)  # never let napari scan a lazy array
        kw["multiscale"] = len(levels) > 1
        n = len(levels)
        if name in self._viewer.layers:
            self._viewer.layers.remove(name)
        self.status.value = (
            f"lazy result added ({n} level{'s' if n > 1 else ''}): napari computes the tiles you look at"
            + ("" if async_rendering() else "; tiles are computed on the GUI thread: tick 'background rendering' "
               "to keep the viewer responsive meanwhile")
        )
        added = self._viewer.add_image(data, **kw)
        if self.reference.value is not None and not getattr(layer, "multiscale", False):
            index = visible_region(layer, self._viewer)[0]
            full = data[0] if isinstance(data, list) else data
            self._score(layer, layer.data[index], full[index], index, "visible region", request)
        return added

    def _on_tiles(self, name: str, done: int, total: int):
        self.status.value = (f"{name}: {done} of {total} tiles deblurred"
                             + (" (all)" if done >= total else "; napari computes the ones you look at"))

    # -- saving ---------------------------------------------------------------
    def _result_layer(self):
        """The result to save: the selected layer if it is a deblurred one, else the newest result."""
        active = self._viewer.layers.selection.active
        if active is not None and active.metadata.get("deblurred_from"):
            return active
        results = [lyr for lyr in self._viewer.layers if lyr.metadata.get("deblurred_from")]
        if not results:
            raise LFDeblurError("Nothing to save yet: deblur a layer first (Deblur layer).")
        return results[-1]

    def save_result(self, *_, path=None):
        """Stream the result (lazy ones chunk by chunk) to OME-Zarr or TIFF, with progress and Cancel."""
        from ..io.atomic import writable_folder
        from ..io.write import check_writable, save_image_streaming

        try:
            layer = self._result_layer()
            data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
            if path is None:
                path = ask_save_path(self.native, f"{layer.name}.ome.zarr")
                if not path:
                    return None
            check_writable(data.shape, data.dtype, path, rgb=bool(layer.rgb))
            writable_folder(Path(path).parent, "folder")
        except LFDeblurError as e:
            return self._notify_error(e)

        def done(written):
            self.status.value = f"saved {layer.name} to {written}"

        self.status.value = f"saving {layer.name} to {path} ..."
        return self._start(save_image_streaming, data, path, rgb=bool(layer.rgb), returned=done)

    def _offer_authors_download(self, choice):
        """The authors' entry, not downloaded yet: ask (size, licence), then fetch it in a worker with progress."""
        if choice != AUTHORS or _models.authors_downloaded():
            return None
        if not _models.confirm_authors_download(self.native):
            self.model.value = DEFAULT
            self.status.value = "the authors' checkpoint was not downloaded; pick their entry again to download it"
            return None
        from ..network.authors import APPROX_SIZE, DownloadCancelled, fetch_authors_checkpoint, size_text

        def fetch(progress, cancel):  # in kB: a progress bar holds 32-bit integers
            return fetch_authors_checkpoint(
                progress=lambda done, total: progress(done // 1000, max(total or APPROX_SIZE, done) // 1000),
                cancel=cancel)

        def done(path):
            self.status.value = f"the authors' DRBNet is ready (kept in {path.parent}; it works offline from now on)"

        def failed(err):
            self.model.value = DEFAULT
            if isinstance(err, DownloadCancelled):
                self.status.value = str(err)
            else:  # the API's advice names load_model(path); in this dock a copy is picked from the model list
                show_error_in(self.status, err,
                              hint="Have the file? Pick 'checkpoint file' in the model list and choose it.")

        self.status.value = f"downloading the authors' DRBNet ({size_text()}) ..."
        return self._start(fetch, returned=done, errored=failed)

    def _start(self, func, *args, returned, errored=None, **kwargs):
        """Run the API call ``func(*args, **kwargs)`` with the progress bar and the Cancel button (one at a time:
        Deblur and Save wait for it)."""
        self.run_button.enabled = self.save_button.enabled = False
        self.cancel_button.enabled = True
        self._cancel = self.start_task(func, *args, bar=self.progress, returned=returned,
                                       errored=errored or self._notify_error, finished=self._finished, **kwargs)
        return self._cancel

    def _finished(self):
        self.run_button.enabled = self.save_button.enabled = True
        self.cancel_button.enabled = False
        self.progress.visible = False  # its row is the scores' room on a laptop screen; the status says how it ended

    def cancel(self, *_):
        if self._cancel is not None:
            self._cancel.cancel()
            self.status.value = "cancelling after the current tile ..."
