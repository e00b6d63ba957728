"""napari's "Render Layers Asynchronously" setting, switched on for this session only (else lazy results compute
their tiles on the GUI thread: a frozen viewer).

The setting is a saved preference, so it is changed the way napari treats a value from the environment
(``NAPARI_ASYNC``): in memory, left out of every save, put back when the viewer closes or the process ends."""

from __future__ import annotations

import atexit
import contextlib

_turned_on = False


def _settings():
    from napari.settings import get_settings

    return get_settings()


def async_rendering() -> bool:
    try:
        return bool(_settings().experimental.async_)
    except Exception:  # an older napari without the setting
        return False


@contextlib.contextmanager
def _unsaved(settings):
    saving = settings._save_on_change
    settings._save_on_change = False
    try:
        yield
    finally:
        settings._save_on_change = saving


def _session_only(settings, on: bool) -> None:
    # napari leaves values that came from environment variables out of what it saves (``_save_dict``):
    # mark this one the same way while it is on
    experimental = settings.env_settings.setdefault("experimental", {})
    if on:
        experimental["async_"] = True
    else:
        experimental.pop("async_", None)
        if not experimental:
            settings.env_settings.pop("experimental", None)


def enable_for_session() -> bool:
    """Turn asynchronous rendering on until :func:`restore` (the Deblur dock calls it when the viewer closes;
    else at exit); True if it was turned on."""
    global _turned_on
    if async_rendering():
        return False
    settings = _settings()
    _session_only(settings, True)
    with _unsaved(settings):
        settings.experimental.async_ = True
    if not _turned_on:
        _turned_on = True
        atexit.register(restore)
    return True


def restore() -> None:
    """Put the setting back to what it was before :func:`enable_for_session` (not saved either)."""
    global _turned_on
    if not _turned_on:
        return
    _turned_on = False
    with contextlib.suppress(Exception):
        settings = _settings()
        with _unsaved(settings):
            settings.experimental.async_ = False
        _session_only(settings, False)
