"""Pairs from many light fields (lightfield/batch.py, what ``lfdeblur pairs`` and the Refocus dock's folder batch
run): a bad entry is skipped with its error, a single source's error is raised, a cancel keeps finished pairs."""

from __future__ import annotations

import pytest

from napari_lfdeblur import read_manifest
from napari_lfdeblur.cancel import CancelToken
from napari_lfdeblur.errors import LFDeblurError
from napari_lfdeblur.lightfield.batch import lightfield_entries, pairs_from_lightfields


def test_a_bad_entry_is_skipped_with_its_error_and_the_rest_written(lightfields_and_a_bad_entry, tmp_path):
    sources = lightfield_entries(lightfields_and_a_bad_entry)
    seen, told = [], []
    batch = pairs_from_lightfields(sources, tmp_path / "pairs", apertures=(1.0,), focus=2, keep=False,
                                   progress=lambda done, total: seen.append((done, total)),
                                   on_skip=lambda name, e: told.append(name))
    assert [name for name, _ in batch.skipped] == told == ["b_raw_lenslet"]
    assert isinstance(batch.skipped[0][1], LFDeblurError) and "No light field found" in str(batch.skipped[0][1])
    rows = read_manifest(tmp_path / "pairs")
    assert batch.used == 2 and batch.made == len(rows) > 0 and batch.pairs == []
    assert {r["scene"] for r in rows} == {"a_scene", "c_scene"}
    assert seen[-1] == (6, 6) and all(b[0] >= a[0] for a, b in zip(seen, seen[1:]))  # never goes back


def test_a_single_source_raises_its_error(lightfields_and_a_bad_entry, tmp_path):
    with pytest.raises(LFDeblurError, match="No light field found"):
        pairs_from_lightfields([lightfields_and_a_bad_entry / "b_raw_lenslet"], tmp_path / "pairs")


def test_a_cancel_keeps_the_pairs_finished_before_it(lightfields_and_a_bad_entry):
    token = CancelToken()
    sources = lightfield_entries(lightfields_and_a_bad_entry)

    def stop_after_the_first_pair(done, total):
        if done >= 1:
            token.cancel()

    batch = pairs_from_lightfields(sources, apertures=(0.5, 1.0), focus=2, progress=stop_after_the_first_pair,
                                   cancel=token)
    assert batch.cancelled and 1 <= batch.made == len(batch.pairs) < 4 and batch.used == 1


def test_an_empty_folder_says_what_to_give(tmp_path):
    with pytest.raises(LFDeblurError, match="is empty: give a folder whose entries are light fields"):
        lightfield_entries(tmp_path)
