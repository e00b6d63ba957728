"""The "Train" dock widget: ``train`` in a worker thread, its events (progress, live curves, a sample prediction)
shown in the GUI thread; trained models join the Deblur widget's model list."""

from __future__ import annotations

import html
import re
import time
from functools import partial
from pathlib import Path

import napari  # the viewer annotation must resolve at run time: napari injects the viewer by it
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    FloatSpinBox,
    ProgressBar,
    PushButton,
    SpinBox,
    create_widget,
)

from ..cancel import CancelToken
from ..cli.progress import StepClock, fmt_seconds
from ..errors import LFDeblurError
from ..training.config import (
    DEFAULT_LR,
    INTERACTIVE_STEPS,
    NEW_NETWORK_BASE,
    SUGGESTED_VAL_FRACTION,
    TrainConfig,
)
from ._dock import DockWidget, message_label
from ._layers import attached_lightfield, layer_images, layer_snapshot, set_or_add
from ._models import (
    DEFAULT,
    FROM_FILE,
    device_choices,
    model_choices,
    on_models_changed,
    resolve_choice,
    session_models,
)
from ._workers import show_error_in

SOURCES = ("procedural light fields", "light-field layer", "pair folder")
PHASES = ("pixel (phase 1: light-field pairs)", "feature (phase 2: real pairs)")
LOSSES = ("auto", "l1", "charbonnier", "shift_l1", "vgg", "vgg+0.1*shift_l1")
NEW = "new network"


def _start_choices(_widget=None) -> list[str]:
    return [NEW, *model_choices()]


class Prepared:
    """Training data made in the worker thread when the run starts (in the GUI thread, a big image stack or a lazy
    light field would freeze the viewer at Start)."""

    def __init__(self, make, what: str):
        self.make, self.what = make, what

    def __repr__(self) -> str:
        return f"Prepared({self.what})"


def _textured_scenes(snapshot, patch: int):
    from ..training import open_pairs

    return open_pairs("synthetic", patch=patch, images=layer_images(snapshot))


def _run_training(data, *, config: TrainConfig, **kwargs):
    """The worker's job: prepare the data if it is :class:`Prepared`, train, and keep the model it made."""
    from ..training import train

    if isinstance(data, Prepared):
        data = data.make()
    result = train(data, config=config, **kwargs)
    return result, *_keep_model(result)


def _keep_model(result) -> tuple[object, str]:
    """What the Deblur widget's model list gets for a run, and its entry's name: a copy of best.pt / last.pt
    named after its step (a continued run rewrites them; "best at step 15" always loads the step-15 weights)."""
    import shutil

    run = Path(str(result.out)).name if result.out else "in memory"
    path, which = (result.best, "best") if result.best else (result.last, "last")
    step = result.steps
    if which == "best" and result.validations:
        step = max(result.validations, key=lambda v: v["psnr"])["step"]
    label = f"trained: {run}, {which} at step {step}"
    if path is None:
        return result.model, label
    kept = Path(path).parent / "models" / f"{which}-step{step:06d}.pt"
    if not kept.exists():
        kept.parent.mkdir(exist_ok=True)
        tmp = kept.with_name(f".{kept.name}.part")
        shutil.copyfile(path, tmp)
        tmp.replace(kept)
    return str(kept), label


_OCCUPIED_HINT = "Tick 'resume from output folder' to continue it, or choose an empty output folder."


def _occupied_run_folder(out: Path) -> str | None:
    """Why Start refuses ``out`` with 'resume' unticked; None when it may start there.  train() refuses the same
    folder, but in the words of its arguments and only from the worker thread: here, at once, in the dock's."""
    if not (out / "resume.pt").is_file():
        return None
    state = "finished" if (out / "summary.json").is_file() else "stopped before its last step"
    return f"{out} already holds a training run ({state})."


def _as_html(text: str) -> str:
    """A status for a rich-text label (an error's status is one: it has a details link)."""
    return text if re.search(r"<(a|br)\b", text) else html.escape(text, quote=False)


_RUNS_HOME = Path.home() / "lfdeblur-runs"
_STILL_SHOWN = "<br>(not started; still shown: "


def _new_run_folder() -> Path:
    """~/lfdeblur-runs/run-DATE-TIME, not yet used."""
    base = _RUNS_HOME / time.strftime("run-%Y%m%d-%H%M%S")
    p, k = base, 2
    while p.exists():
        p, k = base.with_name(f"{base.name}-{k}"), k + 1
    return p


class TrainWidget(DockWidget):
    def __init__(self, viewer: napari.viewer.Viewer):
        from superqt.utils import ensure_main_thread

        super().__init__(viewer)
        start = TrainConfig()  # the starting values are the API's defaults, but for a short run with validation
        self._token = None
        self.result = None
        self._clock: StepClock | None = None  # the run's steady-state speed and ETA
        self._before: str | None = None  # the status before Start, until the run has started
        self._kept = ""  # the status a refused Start kept on show
        # events are produced in the training thread; handle them in the GUI thread
        self._post_event = ensure_main_thread(self.handle_event)
        self._add_data_fields()
        self._add_run_fields(start)
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.progress = ProgressBar(label="progress", min=0, max=1, value=0)
        self.status = message_label(value="")
        self.extend([self.start_button, self.stop_button, self.progress, self.status])
        self.curves = None
        try:
            from ._plots import TrainingCurves

            self.curves = TrainingCurves()
            self.body.layout().addWidget(self.curves.canvas)
        except ImportError:  # matplotlib missing: curves are optional
            self.status.value = "install matplotlib for live curves"

        self.source.changed.connect(self._on_source)
        self.phase.changed.connect(self._on_phase)
        self.start_from.changed.connect(self._on_start_from)
        self.start_button.changed.connect(self.start)
        self.stop_button.changed.connect(self.stop)
        on_models_changed(self.start_from.reset_choices)

    def _add_data_fields(self):
        self.source = ComboBox(label="training data", choices=SOURCES)
        self.lf_layer = create_widget(annotation="napari.layers.Image", label="light field")
        self.lf_layer.visible = False
        self.texture_layer = create_widget(
            annotation="napari.layers.Image", label="textures from", options={
                "nullable": True,
                "tooltip": "procedural scenes textured with the sharp images of this layer (your camera's or "
                           "microscope's detail and noise); empty: the bundled textures"})
        self.folder = FileEdit(label="pair folder", mode="d", visible=False)
        self.match_exposure = CheckBox(
            label="match exposure", value=False, visible=False,
            tooltip="real two-shot pairs: map each sharp shot onto its blurry shot's exposure before training",
        )
        self.extend([self.source, self.texture_layer, self.lf_layer, self.folder, self.match_exposure])

    def _add_run_fields(self, start: TrainConfig):
        self.phase = ComboBox(label="phase", choices=PHASES)
        self.loss = ComboBox(label="loss", choices=LOSSES, value="auto",
                             tooltip="auto: L1 with multi-scale supervision (phase 1), VGG features (phase 2)")
        self.start_from = ComboBox(label="start from", choices=_start_choices)
        self.start_path = FileEdit(label="checkpoint", mode="r", filter="*.pt *.pth", visible=False)
        self.net_width = SpinBox(label="network width", min=4, max=64, step=4, value=NEW_NETWORK_BASE,
                             tooltip="base width: 32 = the paper's DRBNet, 16/8 = lighter")
        self.paper_arch = CheckBox(
            label="paper architecture", value=False,
            tooltip="the paper's exact estimate path; unticked, a new network starts as the identity "
                    "(input_detail) and a short training can only improve on the blurry input")
        self.device = ComboBox(label="device", choices=device_choices, value=start.device)
        self.amp = CheckBox(label="mixed precision", value=bool(start.amp),
                            tooltip="float16 on CUDA; bfloat16 on CPUs that compute it natively (AVX512-BF16 or "
                                    "AMX, 1.2-1.7x faster steps); float32 elsewhere.  Untick for float32.")
        self.steps = SpinBox(label="steps", min=1, max=10_000_000, value=INTERACTIVE_STEPS)
        self.batch = SpinBox(label="batch", min=1, max=256, value=start.batch)
        self.patch = SpinBox(label="patch", min=32, max=1024, step=8, value=start.patch)
        self.lr = FloatSpinBox(label="learning rate", min=1e-7, max=1e-1, step=1e-5, value=start.learning_rate)
        self.lr.native.setDecimals(6)
        self.val_fraction = FloatSpinBox(label="validation", min=0.0, max=0.5, step=0.05,
                                         value=SUGGESTED_VAL_FRACTION,
                                         tooltip="fraction held out for validation (scenes of a pair folder, seeds of "
                                                 "procedural data, a band of a single light field's views)")
        self.out = FileEdit(label="output folder", mode="d", value=str(_new_run_folder()))
        self.resume = CheckBox(label="resume from output folder", value=False)
        self.extend([
            self.phase, self.loss, self.start_from, self.start_path, self.net_width, self.paper_arch, self.device,
            self.amp, self.steps, self.batch, self.patch, self.lr, self.val_fraction, self.out, self.resume,
        ])

    # -- reactions --------------------------------------------------------------
    def _on_start_from(self, *_):
        new = self.start_from.value == NEW
        self.start_path.visible = self.start_from.value == FROM_FILE
        self.net_width.visible = self.paper_arch.visible = new  # a checkpoint brings its own architecture

    def _on_source(self, *_):
        self.texture_layer.visible = self.source.value == SOURCES[0]
        self.lf_layer.visible = self.source.value == "light-field layer"
        self.folder.visible = self.match_exposure.visible = self.source.value == "pair folder"

    def _on_phase(self, *_):
        phase = self._phase()
        self.lr.value = DEFAULT_LR[phase]
        if phase == "feature" and self.source.value == SOURCES[0]:
            self.source.value = "pair folder"

    def _notify_error(self, err: Exception, hint: str = ""):
        show_error_in(self.status, err, hint=hint)
        if self._before:  # refused before it started: the previous run's curves, progress and status stay
            self.status.value += f"{_STILL_SHOWN}{_as_html(self._before)})"
            self._kept = self._before
        self._before = None

    # -- arguments ----------------------------------------------------------------
    def _data(self):
        src = self.source.value
        val = float(self.val_fraction.value) or None
        if src == SOURCES[0]:
            layer = self.texture_layer.value
            if layer is None:
                return "synthetic", val
            snap = layer_snapshot(layer)  # what the worker reads: no layer access off the GUI thread
            return Prepared(partial(_textured_scenes, snap, int(self.patch.value)), f"textures of {layer.name}"), val
        if src == "light-field layer":
            layer = self.lf_layer.value
            lf = attached_lightfield(layer)
            if lf is None:
                raise LFDeblurError("Pick a light-field layer (loaded with the Light field widget or its reader).")
            return Prepared(lf.compute, f"light field of {layer.name}"), val
        folder = str(self.folder.value)
        if folder in ("", "."):
            raise LFDeblurError("Choose a pair folder (blur/ + sharp/, a write_pairs folder, or LFDOF).")
        if self.match_exposure.value:
            from ..training import open_pairs

            return open_pairs(folder, patch=int(self.patch.value), match_exposure=True), val
        return folder, val

    def _phase(self) -> str:
        return "feature" if self.phase.value.startswith("feature") else "pixel"

    def _model(self):
        choice = self.start_from.value
        if choice == NEW:
            return {"base": int(self.net_width.value), "input_detail": not self.paper_arch.value}
        return resolve_choice(choice, self.start_path.value)

    def arguments(self) -> dict:
        """What Start runs: the data, ``val`` and ``model``, and the options of its :class:`TrainConfig`."""
        data, val = self._data()
        loss = None if self.loss.value == "auto" else self.loss.value
        return dict(
            data=data,
            val=val,
            model=self._model(),
            phase=self._phase(),
            loss=loss,
            steps=int(self.steps.value),
            batch=int(self.batch.value),
            patch=int(self.patch.value),
            lr=float(self.lr.value),
            device=self.device.value,
            amp=bool(self.amp.value),
            out=str(self.out.value),
            resume=True if self.resume.value else None,
            val_every=max(10, int(self.steps.value) // 10),
            val_samples=1,
        )

    # -- run ----------------------------------------------------------------------
    def start(self, *_):
        before = self.status.value
        self._before = self._kept if _STILL_SHOWN in before else before  # (after a refused Start: what it kept)
        try:
            kwargs = self.arguments()  # (train() checks the output folder for writing before the first step)
            inputs = {k: kwargs.pop(k) for k in ("data", "val", "model")}
            config = TrainConfig(**kwargs)  # the options are checked now: a mistake is shown at Start
        except LFDeblurError as e:
            return self._notify_error(e)
        refused = None if self.resume.value else _occupied_run_folder(Path(str(self.out.value)))
        if refused:
            return self._notify_error(LFDeblurError(refused), hint=_OCCUPIED_HINT)
        self._token = CancelToken()
        # the curves and the progress bar are reset when the run has started ('started' event): a Start that
        # train() refuses (a folder it cannot write, data it cannot read) leaves the previous run's on show
        self.start_button.enabled = False
        self.stop_button.enabled = True
        self.status.value = "starting ..."
        return self.start_job(
            _run_training, **inputs, config=config, cancel=self._token, callback=self._post_event, token=self._token,
            returned=self._on_result, errored=self._notify_error, finished=self._on_finished,
        )

    def stop(self, *_):
        if self._token is not None:
            self._token.cancel()
            self.status.value = "stopping after the current step ..."

    def handle_event(self, event):
        if self.closed:  # the dock was closed: the run is stopping, nothing left to show it in
            return
        getattr(self, f"_event_{event.kind}", lambda _event: None)(event)

    def _event_started(self, event):
        self._before = None
        self._clock = StepClock(event.step, event.total)
        self.progress.max = max(event.total, 1)
        self.progress.value = event.step
        if self.curves is not None:
            if event.step > 0 and event.out:
                self.curves.load_log(Path(event.out) / "log.csv", upto=event.step)
            else:
                self.curves.clear()
        self.status.value = f"training {event.model.get('base', '?')}-wide DRBNet on {event.runs_on}: {event.data}"

    def _event_step(self, event):
        self.progress.value = event.step
        if self._clock is not None:
            self._clock.step(event.step)
        speed = self._clock.describe() if self._clock is not None else "ETA …"
        self.status.value = f"step {event.step}/{event.total}  loss {event.loss:.4f}  {speed}"
        if self.curves is not None:
            self.curves.add_loss(event.step, event.loss)
            if event.step % 5 == 0 or event.step == event.total:
                self.curves.redraw()

    def _event_validation(self, event):
        if self.curves is not None:
            self.curves.add_validation(event.step, event.psnr, event.input_psnr)
            self.curves.redraw()
        self.status.value = (f"step {event.step}: validation PSNR {event.psnr:.2f} dB (input {event.input_psnr:.2f}), "
                             f"SSIM {event.ssim:.3f}")
        if event.samples:
            name, _blurred, output, _sharp = event.samples[0]
            set_or_add(self._viewer, f"training sample: output ({name})", output, rgb=True)

    def _event_finished(self, event):
        self.progress.value = event.step
        self.status.value = f"{event.kind} at step {event.step} after {fmt_seconds(event.seconds)}"

    def _event_stopped(self, event):
        self._event_finished(event)
        if event.checkpoint:
            self.resume.value = True  # Start now continues this run instead of refusing its folder
            self.status.value += " (Start continues it)"

    def _on_result(self, outcome):
        result, model, label = outcome
        self.result = result
        if not result.cancelled and Path(str(self.out.value)).parent == _RUNS_HOME:
            # a finished run keeps its folder; the next Start gets a new one (never overwrites it)
            self.resume.value = False
            self.out.value = str(_new_run_folder())
        session_models.register(label, model)
        if self.curves is not None:
            self.curves.redraw()
        self.status.value += f"; '{label}' is now in the Deblur widget's model list"

    def _on_finished(self):
        self.start_button.enabled = True
        self.stop_button.enabled = False


__all__ = ["TrainWidget", "DEFAULT"]
