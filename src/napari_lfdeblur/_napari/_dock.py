"""What the plugin's four dock widgets share: a body that scrolls, and jobs that end with the dock (their callbacks
dropped then, so a finishing worker never touches a deleted Qt widget)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from magicgui.widgets import Container, Label
from qtpy.QtCore import QEvent, QObject, Qt
from qtpy.QtWidgets import QComboBox, QSizePolicy

from ._workers import start_worker

log = logging.getLogger(__name__)

MIN_COMBO_CHARACTERS = 12
MIN_MESSAGE_WIDTH = 60  # px
# how long closing the viewer waits for a running job to stop (a training step, a tile)
STOP_WAIT_S = 60.0


def message_label(fill: bool = True, **kwargs) -> Label:
    """A status line whose long messages wrap to the dock's width (a word-wrapped QLabel still asks for about
    280 px, wider than a laptop's dock: the scroll area cut off the right of every row)."""
    label = Label(**kwargs)
    label.native.setWordWrap(True)
    label.native.setMinimumWidth(MIN_MESSAGE_WIDTH)
    # it takes the row's width (with the default policy it shared it with its empty name beside it) and the
    # dock's spare height (else the rows took it, and a four-line message was cut off at top and bottom)
    # (``fill=False``: a line with another message under it, which takes the spare height instead)
    label.native.setSizePolicy(QSizePolicy.Policy.Expanding,
                               QSizePolicy.Policy.MinimumExpanding if fill else QSizePolicy.Policy.Minimum)
    label.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)  # under the buttons
    # a message can be selected and copied (an error to report, a score to note down)
    label.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
    label.native.setOpenExternalLinks(False)
    label._full_width = True  # noqa: SLF001 - read by DockWidget.insert: no name column beside a message
    return label


class _ParentWatcher(QObject):
    """Calls ``on_undocked`` when napari takes the widget out of its dock (the dock's close button)."""

    def __init__(self, on_undocked: Callable[[], None]):
        super().__init__()
        self._on_undocked = on_undocked
        self._docked = False

    def eventFilter(self, obj, event):  # noqa: N802 (Qt's name)
        if event.type() == QEvent.Type.ParentChange:
            if obj.parent() is not None:
                self._docked = True
            elif self._docked:
                self._docked = False
                self._on_undocked()
        return False


class _Job:
    """A worker and the cancel token that stops it; ``done`` is set in the worker thread itself."""

    def __init__(self, token):
        self.token = token
        self.done = threading.Event()
        self.worker = None


class _Jobs:
    """A dock's running jobs.  Kept apart from the widget: Qt's ``destroyed`` signal may arrive while
    Python is tearing the widget object down, so the callbacks hold this object, never the widget."""

    def __init__(self):
        self.running: list[_Job] = []
        self.closed = False

    def close(self, wait: bool = False) -> None:
        """Cancel every job (each stops after its step or tile); with ``wait``, block until they have stopped (up
        to ``STOP_WAIT_S`` each): the viewer is closing, nothing may outlive it."""
        self.closed = True
        for job in list(self.running):
            if job.token is not None:
                job.token.cancel()
            if job.worker is not None and hasattr(job.worker, "quit"):
                job.worker.quit()
        if wait:
            for job in list(self.running):
                if not job.done.wait(STOP_WAIT_S):
                    log.warning("napari-lfdeblur: a job did not stop within %.0f s of closing the viewer", STOP_WAIT_S)


class DockWidget(Container):
    """Base of the dock widgets: scrolls, tracks its jobs, and stops them when it is closed."""

    def __init__(self, viewer):
        super().__init__(labels=True, scrollable=True)
        self._viewer = viewer
        jobs = self._jobs = _Jobs()
        scroll = self.root_native_widget
        scroll.setFrameShape(scroll.Shape.NoFrame)
        self._watcher = _ParentWatcher(jobs.close)
        scroll.installEventFilter(self._watcher)
        # the viewer closing deletes the dock and this widget with it
        scroll.destroyed.connect(lambda *_: jobs.close(wait=True))

    @property
    def closed(self) -> bool:
        """True once the dock was closed (or the viewer): its jobs are stopping and nothing is shown any more."""
        return self._jobs.closed

    @property
    def native(self):
        # napari docks ``native``: for a scrollable container, magicgui's is the widget inside the scroll area, so
        # the dock could never be shorter than its contents (magicgui#431; Start off a laptop's screen)
        return self.root_native_widget

    def insert(self, key, widget):
        # a combo box sized to its longest entry (a layer named after a whole file path) widened the dock past a
        # laptop's screen (magicgui fixes the scroll area's minimum width when it goes in): it shrinks instead
        native = widget.native
        for combo in (native, *native.findChildren(QComboBox)):
            if isinstance(combo, QComboBox):
                combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(MIN_COMBO_CHARACTERS)
        super().insert(key, widget)
        labeled = getattr(widget, "_labeled_widget_ref", None)
        if getattr(widget, "_full_width", False) and labeled is not None and labeled() is not None:
            # the name column (as wide as the longest name) took a third of a laptop dock's width from the
            # message, and a three-column score table wrapped into broken lines
            labeled()._label_widget.visible = False  # noqa: SLF001 - magicgui keeps the row's name widget there

    @property
    def body(self):
        """The widget that holds the layout (for extras that are not magicgui widgets, e.g. a plot)."""
        return self.root_native_widget.widget()

    def start_job(self, func: Callable, *args, token=None, returned=None, errored=None, yielded=None,
                  finished=None, **kwargs):
        """Run ``func(*args, **kwargs)`` in a worker; ``token`` (a CancelToken) is cancelled if the dock closes.
        The callbacks run in the GUI thread and are skipped once the dock is closed."""
        job, jobs = _Job(token), self._jobs

        def run(*a, **kw):
            try:
                return func(*a, **kw)
            finally:
                job.done.set()

        def guard(cb):
            if cb is None:
                return None

            def call(*a):
                return None if jobs.closed else cb(*a)

            return call

        def forget():
            if job in jobs.running:
                jobs.running.remove(job)
            if finished is not None and not jobs.closed:
                finished()

        jobs.running.append(job)
        job.worker = start_worker(run, *args, returned=guard(returned), errored=guard(errored) or _log_error,
                                  yielded=guard(yielded), finished=forget, **kwargs)
        return job.worker

    def start_task(self, func: Callable, *args, bar, returned=None, errored=None, finished=None, **kwargs):
        """Run ``func(*args, progress=..., cancel=token, **kwargs)`` (an API call that reports
        ``progress(done, total)`` and stops when its token is cancelled) in a worker, its progress shown on
        ``bar`` (a magicgui ProgressBar, made visible); returns the CancelToken a Cancel button cancels."""
        from superqt.utils import ensure_main_thread

        from ..cancel import CancelToken

        token = CancelToken()

        @ensure_main_thread
        def show(done: int, total: int) -> None:  # progress comes from the worker thread
            if not self._jobs.closed:
                bar.max = max(total, 1)
                bar.value = done

        bar.visible = True
        bar.value = 0
        self.start_job(func, *args, progress=show, cancel=token, token=token, returned=returned,
                       errored=errored, finished=finished, **kwargs)
        return token

    @property
    def busy(self) -> bool:
        """True while a job runs or its results are still being shown (its callbacks have not all run)."""
        return bool(self._jobs.running)


def _log_error(err: Exception) -> None:
    # a closed dock has no status line left; the error still reaches the log
    log.warning("napari-lfdeblur: %s", err)
