"""Running API calls off the GUI thread: one-shot jobs with progress and cancel, and live previews.

Workers come from ``napari.qt.threading``; their signals are delivered in the
main thread, so the callbacks here may touch layers and widgets.
"""

from __future__ import annotations

from typing import Callable


def show_error_in(label, err: Exception) -> None:
    """Put ``err`` in a widget's status label and in napari's notifications."""
    from napari.utils.notifications import show_error

    label.value = f"Error: {err}"
    show_error(str(err))


def start_worker(func: Callable, *args, returned=None, errored=None, yielded=None, finished=None, **kwargs):
    """Start ``func(*args, **kwargs)`` (a function or generator) in a napari worker thread.

    Passing ``errored`` through ``_connect`` tells napari the error is handled
    (shown to the user) rather than re-raised into the Qt event loop.
    """
    from napari.qt.threading import create_worker

    connect = {k: v for k, v in (("returned", returned), ("errored", errored), ("finished", finished)) if v}
    if yielded is not None:
        connect["yielded"] = yielded
    worker = create_worker(func, *args, _start_thread=False, _connect=connect, **kwargs)
    worker.start()
    return worker


class LatestOnly:
    """Run ``func(*args)`` in a worker; requests made while it runs collapse into the newest one.

    A slider firing 30 changes a second then costs one computation at a time and
    always ends on the value the user let go of, and the viewer never waits.
    """

    def __init__(self, func: Callable, on_result: Callable, on_error: Callable | None = None,
                 start: Callable = start_worker):
        self._func = func
        self._start_worker = start  # a dock's start_job: its previews end with the dock too
        self._on_result = on_result
        self._on_error = on_error
        self._pending = None
        self._busy = False
        self.worker = None

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
        self.worker = self._start_worker(
            self._func, *args, returned=self._on_result, errored=self._on_error, finished=self._done
        )

    def _done(self):
        self._busy = False
        if self._pending is not None:
            args, self._pending = self._pending, None
            self._start(args)
