"""Networks loaded once: :func:`cached_model` is :func:`~napari_lfdeblur.load_model` cached per (checkpoint
file, device, dtype), so that repeated ``deblur`` calls do not reload it.  torch is imported inside the functions.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

__all__ = ["cached_model", "clear_model_cache", "is_drbnet"]

_CACHE_SIZE = 2
_model_cache: OrderedDict[tuple, object] = OrderedDict()


def is_drbnet(net) -> bool:
    """Whether ``net`` is a DRBNet, not a module of the user's."""
    from ..network.drbnet import DRBNet

    return isinstance(net, DRBNet)


def clear_model_cache() -> None:
    """Forget the networks :func:`cached_model` keeps (frees their memory)."""
    _model_cache.clear()


def _cache_key(model, device, dtype):
    from ..devices import resolve_device
    from ..network.checkpoint import default_model_path

    if isinstance(model, str) and model.strip().lower() == "default":
        path = default_model_path()
    elif isinstance(model, str) and model.strip().lower() == "authors":
        from ..network.authors import authors_checkpoint_path

        path = authors_checkpoint_path()  # absent: no key, and load_model fetches it
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model).expanduser()
    else:
        return None
    try:
        st = path.resolve().stat()
    except OSError:
        return None  # let load_model raise its message
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, str(resolve_device(device)), str(dtype))


def cached_model(model="default", device="auto", dtype=None):
    """A network ready for inference (see ``load_model``); checkpoint files are loaded once and cached."""
    from ..network.checkpoint import load_model

    key = _cache_key(model, device, dtype)
    if key is not None and key in _model_cache:
        _model_cache.move_to_end(key)
        return _model_cache[key]
    net = load_model(model, device=device, dtype=dtype)
    if key is None:
        key = _cache_key(model, device, dtype)  # a file load_model just fetched ("authors") exists now
    if key is not None:
        _model_cache[key] = net
        while len(_model_cache) > _CACHE_SIZE:
            _model_cache.popitem(last=False)
    return net
