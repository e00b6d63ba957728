"""The lazy result's tile count: it only moves forward and makes one bar, even when napari's activity dock
runs the count again while a bar is being made (a second bar, tqdm's "clamping frac" warning)."""

from __future__ import annotations

import warnings

import pytest

pytestmark = pytest.mark.gui


def test_a_count_arriving_while_the_bar_is_made_is_neither_doubled_nor_a_second_bar(monkeypatch, qtbot):
    import dask.array as da
    import napari.utils

    from napari_lfdeblur._napari._tile_progress import TileProgress

    seen = []
    tiles = TileProgress([da.zeros((64, 64), chunks=16)], "deblurring", lambda d, t: seen.append(d))
    bars = []
    real = napari.utils.progress

    def progress(*args, **kwargs):  # as the activity dock does: Qt events run while the bar is made
        bar = real(*args, **kwargs)
        bars.append(bar)
        tiles._show(3)
        return bar

    monkeypatch.setattr(napari.utils, "progress", progress)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tqdm's clamping warning fails the test
        tiles._show(1)
        tiles._show(2)  # an older count, arriving late
        tiles._show(16)
    assert len(bars) == 1
    assert seen == [3, 16]  # each count once, newest last; the late 1 and 2 dropped
