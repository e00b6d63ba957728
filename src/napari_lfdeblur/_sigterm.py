"""SIGTERM handled like Ctrl-C, so that long work saves (training) or cleans up (half-written outputs) first.

A batch system, ``kill`` or ``timeout`` stop a process with SIGTERM, whose
default action ends Python at once: no ``finally`` runs, a training run loses
the steps since its last checkpoint and a half-written output stays behind.
Inside :func:`sigterm_as_interrupt`, SIGTERM raises :class:`Terminated` (a
``KeyboardInterrupt``) in the main thread instead, which every handler of
Ctrl-C already deals with.
"""

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
    """Within the block, SIGTERM raises :class:`Terminated`.

    Only in the main thread (signal handlers live there) and only while SIGTERM
    has its default action: a handler someone else installed is left alone.
    """
    previous = _install()
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _install():
    """Install the handler where allowed; the handler it replaced, or None when it installed nothing.

    (Kept out of the generator above: an exception raised in the ``with`` block must never meet an
    ``except`` clause around its ``yield``, a ValueError from the work would be taken for one from
    ``signal.signal``.)"""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        return None
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return None
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except (ValueError, OSError):  # pragma: no cover - an interpreter that refuses
        return None
