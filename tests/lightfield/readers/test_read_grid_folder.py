"""Folders of views named by grid position: patterns, orientation, missing views, laziness."""

from __future__ import annotations

import shutil

import imageio.v3 as iio
import numpy as np
import pytest

from napari_lfdeblur import LightFieldError, read_lightfield
from napari_lfdeblur.lightfield.readers import _views


def _grey(a):
    return np.asarray(a, dtype=np.float32).mean(-1)


def _shift(ref, moving):
    """(dy, dx) by which ``moving``'s content sits relative to ``ref``'s."""
    from skimage.registration import phase_cross_correlation

    shift = phase_cross_correlation(_grey(ref), _grey(moving), upsample_factor=10)[0]
    return -shift  # skimage gives the shift that registers moving onto ref


def _write_views(folder, names, shape=(6, 7), channels=3):
    """One small PNG per name; pixel values encode the name's (a, b) key."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for key, name in names.items():
        a, b = key
        img = np.full(shape + ((channels,) if channels > 1 else ()), 7 * (a + 3) + (b + 3), np.uint8)
        iio.imwrite(folder / name, img)
        out[key] = img
    return out


# -- real data: orientation ------------------------------------------------------
def test_lytro_plants_orientation(lytro_plants):
    lf = read_lightfield(lytro_plants)
    assert lf.metadata["format"] == "grid" and lf.metadata["pattern_name"] == "lytro_toolbox"
    assert lf.grid == (10, 10) and lf.view_shape == (256, 256) and lf.channels == 3
    assert lf.is_lazy
    V, U = lf.grid
    vc, uc = V // 2, U // 2
    # IMG_0001_SSS_AA_BB: AA (u) is the horizontal index, BB (v) the vertical one
    np.testing.assert_array_equal(lf.view(1, 8), iio.imread(lytro_plants / "IMG_0001_082_09_02.png") / np.float32(255))
    dy, dx = _shift(lf.view(vc, 0), lf.view(vc, U - 1))
    assert abs(dx) > 3 and abs(dy) < 0.5  # horizontal views differ along x
    dy2, dx2 = _shift(lf.view(0, uc), lf.view(V - 1, uc))
    assert abs(dy2) > 3 and abs(dx2) < 0.5  # vertical views differ along y
    # README: ~5.6 px over the grid, and refocusing at about -1 px/view (negative
    # disparity, content moving right/down with u/v) brings the flowers into focus
    assert dx == pytest.approx(5.6, abs=1.0) and dy2 == pytest.approx(5.6, abs=1.0)


def test_checkerboard_orientation(lytro_checkerboard):
    lf = read_lightfield(lytro_checkerboard)
    assert lf.metadata["pattern_name"] == "view_row_col"
    assert lf.grid == (7, 7) and lf.metadata["index_base"] == 1
    # view_R_C: R vertical, C horizontal, 1-based
    np.testing.assert_array_equal(lf.view(1, 5), iio.imread(lytro_checkerboard / "view_2_6.png") / np.float32(255))
    dy, dx = _shift(lf.view(3, 0), lf.view(3, 6))
    assert 1.5 < abs(dx) < 4.5 and abs(dy) < 0.5
    dy2, dx2 = _shift(lf.view(0, 3), lf.view(6, 3))
    assert 1.5 < abs(dy2) < 4.5 and abs(dx2) < 0.5
    assert np.sign(dx) == np.sign(dy2)  # one flat board: one disparity sign both ways


def test_incomplete_grid_from_real_views(lytro_checkerboard, tmp_path):
    """Only the centre cross and the diagonals: the rest is missing, NaN, never invented."""
    keep = {(r, c) for r in range(1, 8) for c in range(1, 8) if r == 4 or c == 4 or r == c or r + c == 8}
    for r, c in keep:
        shutil.copy(lytro_checkerboard / f"view_{r}_{c}.png", tmp_path / f"view_{r}_{c}.png")
    lf = read_lightfield(tmp_path)
    assert lf.grid == (7, 7)
    expected = np.zeros((7, 7), bool)
    for r, c in keep:
        expected[r - 1, c - 1] = True
    np.testing.assert_array_equal(lf.view_mask, expected)
    assert lf.n_views == len(keep) == 25
    assert np.isnan(np.asarray(lf.data[0, 1])).all()  # (1, 2) is neither cross nor diagonal
    with pytest.raises(LightFieldError, match="missing"):
        lf.view(0, 1)
    np.testing.assert_array_equal(lf.view(0, 6), iio.imread(tmp_path / "view_1_7.png") / np.float32(255))
    assert lf.center_index() == (3, 3)
    eager = read_lightfield(tmp_path, lazy=False)
    np.testing.assert_array_equal(eager.view_mask, expected)
    np.testing.assert_array_equal(eager.data, np.asarray(lf.data))  # NaN where missing, equal elsewhere


# -- patterns ------------------------------------------------------------------
def test_user_pattern_with_counter_and_0_based(tmp_path):
    names = {(v, u): f"shot{100 + 3 * v + u}_v{v}_u{u}.png" for v in range(2) for u in range(3)}
    imgs = _write_views(tmp_path, names)
    lf = read_lightfield(tmp_path, pattern="shot{any}_v{v}_u{u}.png")
    assert lf.metadata["format"] == "grid" and lf.metadata["index_base"] == 0
    assert lf.grid == (2, 3)
    for (v, u), img in imgs.items():
        np.testing.assert_array_equal(lf.view(v, u), img / np.float32(255))
    # '*' works like {any}
    lf2 = read_lightfield(tmp_path, pattern="shot*_v{row}_u{col}.png")
    np.testing.assert_array_equal(np.asarray(lf2.data), np.asarray(lf.data))


def test_vertical_option_transposes(tmp_path):
    # names say a_<horizontal>_<vertical>: the {row} slot holds the horizontal index
    names = {(v, u): f"a_{u}_{v}.png" for v in range(1, 3) for u in range(1, 4)}
    imgs = _write_views(tmp_path, names)
    lf = read_lightfield(tmp_path, pattern="a_{row}_{col}.png", vertical="col")
    assert lf.grid == (2, 3)
    for (v, u), img in imgs.items():
        np.testing.assert_array_equal(lf.view(v - 1, u - 1), img / np.float32(255))


def test_pattern_in_path_and_centred_indices(tmp_path):
    names = {(v, u): f"cam_{v}_{u}.png" for v in (-1, 0, 1) for u in (-1, 0, 1)}
    imgs = _write_views(tmp_path, names)
    lf = read_lightfield(tmp_path / "cam_{row}_{col}.png")
    assert lf.grid == (3, 3) and lf.metadata["index_base"] == -1
    np.testing.assert_array_equal(lf.view(0, 2), imgs[-1, 1] / np.float32(255))


def test_generic_builtin_grid_option_and_ignored_files(tmp_path):
    names = {(r, c): f"lf_{r:02d}_{c:02d}.png" for r in range(3) for c in range(2)}
    _write_views(tmp_path, names, channels=1)
    iio.imwrite(tmp_path / "depth.png", np.zeros((6, 7), np.uint8))
    (tmp_path / "notes.txt").write_text("hello")
    lf = read_lightfield(tmp_path, grid=(4, 2))
    assert lf.metadata["pattern_name"] == "row_col"
    assert lf.grid == (4, 2) and lf.channels == 1
    assert not lf.view_mask[3].any() and lf.view_mask[:3].all()
    assert lf.metadata["ignored_files"] == ["depth.png"]


def test_opening_decodes_nothing_and_chunks_decode_one_view(tmp_path, monkeypatch):
    names = {(r, c): f"view_{r}_{c}.png" for r in range(1, 4) for c in range(1, 4)}
    imgs = _write_views(tmp_path, names)
    calls = []
    real = _views.decode_view

    def counting(path, *args, **kw):
        calls.append(path)
        return real(path, *args, **kw)

    monkeypatch.setattr(_views, "decode_view", counting)
    lf = read_lightfield(tmp_path)
    assert lf.is_lazy and calls == []
    v = np.asarray(lf.data[2, 0].compute())
    assert len(calls) == 1 and calls[0].name == "view_3_1.png"
    np.testing.assert_array_equal(v, imgs[3, 1] / np.float32(255))
    eager = read_lightfield(tmp_path, lazy=False)
    assert not eager.is_lazy
    np.testing.assert_array_equal(eager.data, np.asarray(lf.data))


def test_16bit_and_greyscale_views(tmp_path):
    for r in range(2):
        for c in range(2):
            iio.imwrite(tmp_path / f"view_{r}_{c}.png", np.full((4, 5), 1000 * (r + 2 * c + 1), np.uint16))
    lf = read_lightfield(tmp_path)
    assert lf.channels == 1 and lf.metadata["source_dtype"] == "uint16"
    assert float(lf.view(1, 1)[0, 0, 0]) == pytest.approx(4000 / 65535)


def test_sparse_auto_detected_names_are_not_a_light_field(tmp_path):
    # two holiday photos that happen to end in _N_M: not claimed by auto-detection
    _write_views(tmp_path, {(1, 2): "trip_1_2.png", (5, 6): "trip_5_6.png"})
    with pytest.raises(LightFieldError, match="pass pattern="):
        read_lightfield(tmp_path)
    with pytest.warns(RuntimeWarning, match="28 of its 30 positions empty"):  # explicit: the user knows
        lf = read_lightfield(tmp_path, pattern="trip_{row}_{col}.png")
    assert lf.grid == (5, 6) and lf.n_views == 2


# -- views lying apart from the grid ------------------------------------------
def test_a_stray_view_outside_a_complete_block_is_ignored_with_a_warning(tmp_path):
    """A stray view_9_9.png in a 0-based 5x5 folder made a 10x10 grid with 74 NaN views, silently."""
    names = {(r, c): f"view_{r}_{c}.png" for r in range(5) for c in range(5)}
    imgs = _write_views(tmp_path, {**names, (9, 9): "view_9_9.png"})
    with pytest.warns(RuntimeWarning, match=r"ignored 1 view file .*\(view_9_9\.png\).*10x10 grid with 74 of"):
        lf = read_lightfield(tmp_path)
    assert lf.grid == (5, 5) and lf.view_mask.all() and lf.n_views == 25
    assert lf.metadata["stray_files"] == ["view_9_9.png"] and "view_9_9.png" in lf.metadata["ignored_files"]
    np.testing.assert_array_equal(lf.view(4, 4), imgs[4, 4] / np.float32(255))
    # grid= states the grid: every view is read, the empty positions missing
    whole = read_lightfield(tmp_path, grid=(10, 10))
    assert whole.grid == (10, 10) and whole.n_views == 26 and whole.view_mask[9, 9]


def test_views_in_separate_groups_are_an_error_naming_them(tmp_path):
    left = {(r, c): f"view_{r}_{c}.png" for r in range(1, 4) for c in range(1, 4)}
    right = {(r, c + 6): f"view_{r}_{c + 6}.png" for r in range(1, 4) for c in range(1, 4)}
    _write_views(tmp_path, {**left, **right})
    with pytest.raises(LightFieldError, match=r"separate groups: columns 4-6 hold no view.*9 views; 9 lie outside "
                                              r"it \(view_1_7\.png.*3x9 grid with 9 of its 27 positions empty"):
        read_lightfield(tmp_path)
    # an explicit pattern claims the files: read as one sparse grid, with a warning saying how sparse
    with pytest.warns(RuntimeWarning, match="separate groups"):
        lf = read_lightfield(tmp_path, pattern="view_{row}_{col}.png")
    assert lf.grid == (3, 9) and lf.n_views == 18 and not lf.view_mask[:, 3:6].any()
