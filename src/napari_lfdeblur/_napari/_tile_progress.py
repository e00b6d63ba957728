"""Progress of a lazy result while napari computes it: tiles done / total, in the status and the activity dock.

napari computes a lazy layer's chunks in its own threads and reports on none: each level is wrapped in a
pass-through step that records which chunk finished (one napari computes again is counted once)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable


class TileProgress:
    def __init__(self, levels: list, describe: str, on_change: Callable[[int, int], None]):
        from superqt.utils import ensure_main_thread

        self.total = sum(int(a.npartitions) for a in levels)
        self.describe = describe
        self._done: set = set()
        self._lock = threading.Lock()
        self._on_change = on_change
        self._report = ensure_main_thread(self._show)
        self._bar = None
        self._made = False
        self._shown = self._reported = 0
        self.levels = [self._wrap(a, k) for k, a in enumerate(levels)]

    def _wrap(self, arr, level: int):
        def counted(block, block_info=None):
            where = (level, tuple(block_info[0]["chunk-location"])) if block_info else None
            with self._lock:
                new = where is not None and where not in self._done
                if new:
                    self._done.add(where)
                count = len(self._done)
            if new:
                self._report(count)
            return block

        # named here: dask would otherwise name it by pickling ``counted``, and with it this object and every level
        return arr.map_blocks(counted, dtype=arr.dtype, meta=getattr(arr, "_meta", None),
                              name=f"tiles-{level}-{uuid.uuid4().hex}")

    def _show(self, count: int):  # GUI thread
        from napari.utils import progress

        # napari's activity dock processes Qt events while a bar is made or moved, which can run this again
        # before it returns (a second bar, the same tiles counted twice, tqdm's "clamping frac" warning):
        # counts only move forward, one bar is ever made, and it shows the newest count
        if count <= self._shown:
            return
        self._shown = count
        if not self._made and count < self.total:
            self._made = True
            self._bar = progress(total=self.total, desc=self.describe)
        count = self._shown  # newer if the bar's making ran this again
        if self._bar is not None:
            if count > self._bar.n:
                self._bar.update(count - self._bar.n)
            if count >= self.total:
                self.close()
        if count > self._reported:
            self._reported = count
            self._on_change(count, self.total)

    def close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None
