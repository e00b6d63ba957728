"""Driving a real napari viewer in the viewer benchmarks: let Qt run until something holds."""

from __future__ import annotations

import time


def wait_until(app, cond, limit: float) -> bool:
    """Process ``app``'s events until ``cond()`` holds or ``limit`` seconds pass; whether it holds.
    ``lambda: False`` simply lets the viewer run for ``limit`` seconds."""
    t0 = time.perf_counter()
    while not cond() and time.perf_counter() - t0 < limit:
        app.processEvents()
        time.sleep(0.005)
    return cond()
