"""Chunks of big images: their size (one rule for reading, writing and lazy deblurring), and dask chunks
computed a few at a time, on local threads or a ``dask.distributed`` cluster.  Nothing here imports torch."""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections import deque
from collections.abc import Iterable, Iterator

import numpy as np

__all__ = ["CHUNK", "chunk_size", "iter_computed_blocks", "native_multiple_chunks", "stored_chunk_size"]

#: chunk size (Y and X) of lazily read images, of written OME-Zarr arrays and of lazy deblurring
CHUNK = 1024
_CHUNK_RANGE = (256, 4096)


def chunk_size(current: int | None = None) -> int:
    """The side of the chunks to compute an image chunked by ``current`` pixels in: ``current`` when it is
    between 256 and 4096, else :data:`CHUNK` (tiny chunks cost a halo each, huge ones memory)."""
    lo, hi = _CHUNK_RANGE
    return int(current) if current is not None and lo <= current <= hi else CHUNK


def stored_chunk_size(current: int | None = None) -> int:
    """The side of a file's chunks for an image computed in chunks of ``current`` pixels (None: held in
    memory): ``current`` brought into 256-4096, so that each computed chunk fills whole stored ones."""
    lo, hi = _CHUNK_RANGE
    return CHUNK if current is None else int(min(max(current, lo), hi))


def native_multiple_chunks(shape, native, has_channels: bool, separate: bool = False, target: int = CHUNK):
    """Dask chunks for an image of ``shape`` stored in ``native`` chunks (None: one): Y/X chunks of about
    ``target`` made of whole native chunks; stack axes 1; channels whole (``separate``: planar, ahead of Y)."""
    nd = len(shape)
    if separate:
        y_ax, c_ax = nd - 2, nd - 3
    elif has_channels:
        y_ax, c_ax = nd - 3, nd - 1
    else:
        y_ax, c_ax = nd - 2, None
    out = []
    for ax, size in enumerate(shape):
        nat = native[ax] if native is not None else size
        if ax == c_ax:
            out.append(size)
        elif ax in (y_ax, y_ax + 1):
            nat = max(1, nat)
            if nat >= size:  # one chunk (or strips) spanning the axis
                out.append(min(size, target))
            elif nat > target:  # big native tiles: one each
                out.append(nat)
            else:  # whole native tiles adding up to about target
                out.append(min(size, max(1, round(target / nat)) * nat))
        else:
            out.append(1)
    return tuple(out)


def _default_workers() -> int:
    """Blocks computed at once locally: one per CPU, divided by the threads torch uses per operation."""
    n = os.cpu_count() or 1
    torch = sys.modules.get("torch")  # only when something loaded it: io never imports torch itself
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


def iter_computed_blocks(blocks: Iterable, *, client=None, workers: int | None = None) -> Iterator:
    """Compute ``(key, dask_array)`` pairs a few at a time; yield ``(key, numpy)`` in the given order.

    At most twice as many blocks as there are workers are submitted and
    not yet yielded, so memory holds only those.  Locally the blocks run on
    threads; with a ``dask.distributed`` ``client`` on its workers.  An
    exception (including KeyboardInterrupt) cancels what is still pending.
    """
    runner = _ClientRunner(client) if client is not None else _LocalRunner(workers)
    pending: deque = deque()
    ok = False
    try:
        it = iter(blocks)
        pending.extend((key, runner.submit(block)) for key, block in itertools.islice(it, 2 * runner.workers))
        while pending:
            key, fut = pending.popleft()
            result = fut.result()
            yield key, np.asarray(result)
            del result
            pending.extend((k, runner.submit(b)) for k, b in itertools.islice(it, 1))  # the next one, if any
        ok = True
    finally:
        if not ok:
            runner.cancel(f for _, f in pending)
        runner.close(wait=ok)
