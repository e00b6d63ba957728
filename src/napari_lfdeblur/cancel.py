"""Stopping a long job: one token class, and the one adapter every long-running function reads its ``cancel=``
through; the one check of the functions a long job calls back (``progress``, ``callback``)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from .errors import LFDeblurError


class Cancelled(LFDeblurError):
    """A long job stopped because its ``cancel`` asked it to (raised by jobs that return nothing partial)."""


class CancelToken:
    """A thread-safe flag that asks a running job to stop.

    It is also what the other forms are: callable (``token()`` is True once
    cancelled) and event-like (``token.is_set()``).

    >>> token = CancelToken()
    >>> token.cancelled
    False
    >>> token.cancel(); token.cancelled, token()
    (True, True)
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the job to stop (after the step, pair or tile in progress)."""
        self._event.set()

    def reset(self) -> None:
        self._event.clear()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def is_set(self) -> bool:
        return self._event.is_set()

    __call__ = __bool__ = is_set  # ``if token:`` reads as "was it cancelled"

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def check_function(value, name: str, call: str, *, where: str, error: type = LFDeblurError) -> None:
    """Raise ``error`` unless ``value`` (a ``progress`` or ``callback`` argument) is None or a function:
    said when the job is asked for, not at the first call deep inside it (after minutes of work)."""
    if value is not None and not callable(value):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise error(f"{where}: {name} must be None or a function called as {call}, got {type(value).__name__} "
                    f"{shown}")


def cancel_check(cancel=None, *, where: str = "this function") -> Callable[[], bool]:
    """A no-argument function returning True when ``cancel`` asks to stop.

    ``cancel``: None, a :class:`CancelToken`, a ``threading.Event`` or a callable returning True to stop.
    """
    if cancel is None:
        return lambda: False
    if isinstance(cancel, (CancelToken, threading.Event)):
        return cancel.is_set
    if callable(cancel):
        return lambda: bool(cancel())
    raise LFDeblurError(
        f"{where}: cancel must be None, a napari_lfdeblur.CancelToken, a threading.Event or a function "
        f"returning True to stop, got {type(cancel).__name__}."
    )
