"""Running dask work: blocks computed a few at a time, locally or on a cluster, and a picklable network.

:func:`iter_computed_blocks` computes ``(key, dask_array)`` pairs with at most
a window of them in flight, on local threads or on a ``dask.distributed``
cluster; the streaming writers (:mod:`napari_lfdeblur.io.write`) write what it
yields.  :func:`picklable_model` is a network that travels to dask workers as
its checkpoint path instead of its weights.  Neither imports torch until used.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

__all__ = ["iter_computed_blocks", "picklable_model"]


def _default_workers() -> int:
    """Blocks computed at once locally: one per CPU, divided by the threads torch uses per operation."""
    import sys

    n = os.cpu_count() or 1
    torch = sys.modules.get("torch")
    if torch is not None:
        n //= max(1, torch.get_num_threads())
    return max(1, n)


class _LocalRunner:
    """Computes dask blocks on local threads, each block with the synchronous scheduler."""

    def __init__(self, workers: int | None = None):
        from concurrent.futures import ThreadPoolExecutor

        self.workers = max(1, int(workers or _default_workers()))
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="lfdeblur-chunk")

    def submit(self, block):
        return self.pool.submit(block.compute, scheduler="synchronous")

    def cancel(self, futures):
        for f in futures:
            f.cancel()

    def close(self, wait: bool):
        self.pool.shutdown(wait=wait, cancel_futures=True)


class _ClientRunner:
    """Computes dask blocks on a ``dask.distributed`` cluster."""

    def __init__(self, client):
        self.client = client
        try:
            self.workers = max(1, sum(client.nthreads().values()))
        except Exception:
            self.workers = 2

    def submit(self, block):
        return self.client.compute(block)

    def cancel(self, futures):
        with contextlib.suppress(Exception):
            self.client.cancel(list(futures))

    def close(self, wait: bool):
        pass


def iter_computed_blocks(blocks: Iterable, *, client=None, workers: int | None = None,
                         window: int | None = None) -> Iterator:
    """Compute ``(key, dask_array)`` pairs a few at a time; yield ``(key, numpy)`` in the given order.

    At most ``window`` blocks (default: twice the workers) are submitted and
    not yet yielded, so memory holds only those.  Locally the blocks run on
    threads; with a ``dask.distributed`` ``client`` on its workers.  An
    exception (including KeyboardInterrupt) cancels what is still pending.
    """
    runner = _ClientRunner(client) if client is not None else _LocalRunner(workers)
    window = max(1, int(window or 2 * runner.workers))
    pending: deque = deque()
    ok = False
    try:
        it = iter(blocks)
        exhausted = False
        while True:
            while not exhausted and len(pending) < window:
                try:
                    key, block = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((key, runner.submit(block)))
            if not pending:
                break
            key, fut = pending.popleft()
            result = fut.result()
            yield key, np.asarray(result)
            del result
        ok = True
    finally:
        if not ok:
            runner.cancel(f for _, f in pending)
        runner.close(wait=ok)


def _rebuild_model(spec, device, dtype):
    return picklable_model(spec, device=device, dtype=dtype)


_PICKLABLE_CLASS = None


def _picklable_class():
    """The class behind :func:`picklable_model`, built on first use (keeps this module free of torch)."""
    global _PICKLABLE_CLASS
    if _PICKLABLE_CLASS is not None:
        return _PICKLABLE_CLASS
    import torch

    class PicklableModel(torch.nn.Module):
        """A network that pickles as ``(spec, device, dtype)`` and is loaded again (once per process)."""

        def __init__(self, spec, device, dtype):
            from ..network.record import record_of
            from .models import cached_model

            super().__init__()
            self.spec, self.device_spec, self.dtype_spec = spec, device, dtype
            self.net = cached_model(spec, device=device, dtype=dtype)
            self.record = record_of(self.net)  # run_network reads the device, autocast type and convention

        def forward(self, x):
            return self.net(x)

        def __reduce__(self):
            return (_rebuild_model, (self.spec, self.device_spec, self.dtype_spec))

    _PICKLABLE_CLASS = PicklableModel
    return PicklableModel


def picklable_model(spec="default", device="auto", dtype=None):
    """A network loaded from a checkpoint path (or ``"default"``) that pickles as that path.

    ``deblur`` puts the network into every dask task; sent to
    ``dask.distributed`` workers, a full DRBNet (47 MB of weights) would
    travel with each one.  This wrapper travels as ``(path, device, dtype)``
    instead and is loaded once per worker process (``cached_model`` caches it
    there).  Workers must be able to read the checkpoint at the same path.
    """
    if isinstance(spec, (str, os.PathLike)) and str(spec).strip().lower() != "default":
        spec = str(Path(spec).expanduser().resolve())
    elif not isinstance(spec, str):
        raise TypeError("picklable_model takes a checkpoint path or 'default'")
    return _picklable_class()(spec, device, dtype)
