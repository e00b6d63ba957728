"""Running API calls off the GUI thread (napari workers: their callbacks run in the main thread), and errors
shown in a dock's status line."""

from __future__ import annotations

import html
from collections.abc import Callable

SUMMARY_CHARS = 160


def summary_of(message: str) -> str:
    """The first sentence of ``message`` (at most about :data:`SUMMARY_CHARS` characters): what went wrong,
    without the paths, addresses and instructions that follow it."""
    first = message.strip().splitlines()[0] if message.strip() else ""
    for end in (". ", ": ", "; "):
        cut = first.find(end, 20)
        if 0 < cut < SUMMARY_CHARS:
            return first[:cut + 1].rstrip(":;") + ("." if end != ". " else "")
    return first if len(first) <= SUMMARY_CHARS else first[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"


def show_error_in(label, err: Exception, hint: str = "") -> None:
    """Put ``err`` in a widget's status label, short (its first sentence, ``hint``: what to do in this dock, and
    a *details* link to the whole text), and in napari's notifications, whole."""
    from napari.utils.notifications import show_error

    full = str(err) + (f"\n\n{hint}" if hint else "")
    summary = summary_of(str(err))
    label.native.setProperty("lfdeblur_details", full)
    label.native.setToolTip(full)
    if summary == str(err).strip() and not hint:
        label.value = f"Error: {html.escape(summary)}"
    else:
        shown = html.escape(summary) + (f" {html.escape(hint)}" if hint else "")
        label.value = f"Error: {shown} <a href='details'>details…</a>"
        _connect_details(label.native)
    show_error(full)


def _connect_details(native) -> None:
    if native.property("lfdeblur_details_connected"):
        return
    native.setProperty("lfdeblur_details_connected", True)
    native.linkActivated.connect(lambda _link: open_details(native))


def open_details(native):
    """A box with the whole message of the label's last error, selectable and copyable (not modal)."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QMessageBox

    box = QMessageBox(native.window())
    box.setWindowTitle("napari-lfdeblur: error details")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setText(str(native.property("lfdeblur_details") or ""))
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setModal(False)
    box.show()
    return box


def start_worker(func: Callable, *args, returned=None, errored=None, yielded=None, finished=None, **kwargs):
    """Start ``func(*args, **kwargs)`` (a function or generator) in a napari worker thread; an ``errored``
    connected through ``_connect`` tells napari the error is handled, not to re-raise it into the Qt event loop."""
    from napari.qt.threading import create_worker

    connect = {k: v for k, v in (("returned", returned), ("errored", errored), ("finished", finished),
                                 ("yielded", yielded)) if v is not None}
    worker = create_worker(func, *args, _start_thread=False, _connect=connect, **kwargs)
    worker.start()
    return worker


class LatestOnly:
    """Run ``func(*args)`` in a worker; requests made while it runs collapse into the newest one (a dragged
    slider costs one computation at a time and ends on the value the user let go of)."""

    def __init__(self, func: Callable, on_result: Callable, on_error: Callable | None = None,
                 start: Callable = start_worker):
        self._func = func
        self._start_worker = start  # a dock's start_job: its previews end with the dock too
        self._on_result = on_result
        self._on_error = on_error
        self._pending = None
        self._busy = False

    @property
    def busy(self) -> bool:
        return self._busy or self._pending is not None

    def request(self, *args):
        if self._busy:
            self._pending = args
            return
        self._start(args)

    def _start(self, args):
        self._busy = True
        self._start_worker(self._func, *args, returned=self._on_result, errored=self._on_error, finished=self._done)

    def _done(self):
        self._busy = False
        if self._pending is not None:
            args, self._pending = self._pending, None
            self._start(args)
