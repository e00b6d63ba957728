"""SIGTERM handled like Ctrl-C, so that long work saves (training) or cleans up (half-written outputs) first.

SIGTERM's default action (``kill``, ``timeout``, a batch system) ends Python at once: no ``finally`` runs.
Inside :func:`sigterm_as_interrupt` it raises :class:`Terminated`, a ``KeyboardInterrupt``, instead."""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Terminated", "sigterm_as_interrupt"]


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM inside :func:`sigterm_as_interrupt`."""


def _raise_terminated(signum, frame):
    raise Terminated("terminated (SIGTERM)")


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`Terminated`: in the main thread (signal handlers live there) and
    only while SIGTERM has its default action (a handler someone else installed is left alone)."""
    previous = _install()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _install():
    """The handler it replaced, or None when it installed nothing.  Kept out of the generator: a ValueError from the
    ``with`` block must never meet the ``except`` meant for ``signal.signal``."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return None
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return None
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):  # pragma: no cover - an interpreter that refuses
        return None
