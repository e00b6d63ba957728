"""Where the package caches files: the authors' weights, OpenVINO's traced and compiled networks."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_dir", "cache_hint"]

CACHE_ENV = "LFDEBLUR_CACHE"


def cache_dir() -> Path:
    """The per-user cache of napari-lfdeblur: ``$LFDEBLUR_CACHE``, else platformdirs' user cache dir."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("napari-lfdeblur", appauthor=False))


def cache_hint() -> str:
    """What to do when the cache cannot be written; names ``$LFDEBLUR_CACHE``'s value when it chose the folder."""
    hint = f"free some space, or set ${CACHE_ENV} to a writable folder"
    env = os.environ.get(CACHE_ENV, "").strip()
    return f"{hint} (${CACHE_ENV} is {env!r} now)" if env else hint
