"""Training pairs from light fields, and pair folders on disk."""

from __future__ import annotations

import csv
import functools
import os

import numpy as np
import pytest
from PIL import Image

import napari_lfdeblur as lfd
from napari_lfdeblur import LightFieldError
from napari_lfdeblur.lightfield.core import LightField
from napari_lfdeblur.lightfield.pairs import Pair, iter_pairs, read_manifest
from napari_lfdeblur.training.metrics import psnr


@functools.lru_cache(maxsize=4)
def scene(seed=0, views=7, size=96):
    return lfd.synthetic_lightfield(seed, views=views, size=size, disparity_range=(-1.5, 1.5))


def test_default_pairs():
    lf = scene()
    pairs = lfd.make_pairs(lf, skip_duplicates=False)
    assert len(pairs) == 15  # 3 apertures x 5 focus planes
    crop = int(np.ceil(1.5 * 3))  # max |focus| x largest view offset of a 7x7 grid
    sharp = lf.center_view()[crop:-crop, crop:-crop]
    for i, p in enumerate(pairs):
        assert isinstance(p, Pair)
        assert p.blurred.shape == p.sharp.shape == (96 - 2 * crop, 96 - 2 * crop, 3)
        assert p.blurred.dtype == p.sharp.dtype == np.float32
        np.testing.assert_array_equal(p.sharp, sharp)
        info = p.info
        assert info["index"] == i and info["crop"] == crop and info["scene"] == "synthetic_0"
        assert info["source"] == lf.metadata["source"]
        for key in ("aperture", "aperture_shape", "focus", "focus_index", "n_views", "psnr"):
            assert key in info
    # focus planes spread over the metadata range, apertures 1/3, 2/3, 1
    focuses = sorted({p.info["focus"] for p in pairs})
    np.testing.assert_allclose(focuses, np.linspace(-1.5, 1.5, 5))
    assert sorted({round(p.info["aperture"], 3) for p in pairs}) == [0.333, 0.667, 1.0]
    # a wider aperture blurs more (lower PSNR against the sharp view) at the same focus
    for j in range(5):
        ps = [pairs[3 * j + k].info["psnr"] for k in range(3)]
        assert ps[0] > ps[1] > ps[2]
    # the blurred image is the refocused light field, cropped
    p = pairs[7]
    full = lfd.refocus(lf, p.info["focus"], aperture=p.info["aperture"])
    np.testing.assert_array_equal(p.blurred, full[crop:-crop, crop:-crop])


def test_focus_list_crop_and_duplicates():
    lf = scene()
    pairs = lfd.make_pairs(lf, apertures=[0.01, 1.0], focus=[0.0, 0.5], crop=None)
    # aperture 0.01 keeps only the centre view: identical to the sharp image -> skipped
    assert [p.info["aperture"] for p in pairs] == [1.0, 1.0]
    assert [p.info["index"] for p in pairs] == [1, 3]  # indices stay those of the full grid
    assert pairs[0].blurred.shape == (96, 96, 3)
    assert len(lfd.make_pairs(lf, apertures=[0.01, 1.0], focus=[0.0], skip_duplicates=False)) == 2
    # the same focus twice: the second is a duplicate of the first
    assert len(lfd.make_pairs(lf, apertures=[1.0], focus=[0.3, 0.3])) == 1
    assert lfd.make_pairs(lf, apertures=[1.0], focus=[0.3], crop=7)[0].blurred.shape == (82, 82, 3)


def test_gt_range_and_estimated_range():
    lf = scene()
    gt_only = LightField(lf.data, disparity=lf.disparity)  # no metadata range: the gt's
    f = sorted({p.info["focus"] for p in lfd.make_pairs(gt_only, apertures=[1.0], focus=3, skip_duplicates=False)})
    assert f[0] == pytest.approx(float(np.percentile(lf.disparity, 0.5)), abs=1e-4)
    nothing = LightField(lf.data)  # neither: estimated from the views
    f = sorted({p.info["focus"] for p in lfd.make_pairs(nothing, apertures=[1.0], focus=3, skip_duplicates=False)})
    assert f[0] < lf.disparity.min() + 0.2 and f[-1] > lf.disparity.max() - 0.2


def test_even_grid_is_trimmed_around_the_sharp_view():
    lf = lfd.synthetic_lightfield(1, views=6, size=48, n_layers=2, disparity_range=(-1, 1))
    pairs = lfd.make_pairs(lf, apertures=[1.0], focus=[0.5], crop=None)
    p = pairs[0]
    assert p.info["reference_view"] == (2, 2)
    assert p.info["n_views"] == 25  # the 5x5 sub-grid centred on view (2, 2)
    np.testing.assert_array_equal(p.sharp, lf.view(2, 2))
    sub = LightField(lf.data[:5, :5])
    np.testing.assert_allclose(p.blurred, lfd.refocus(sub, 0.5), atol=1e-6)
    # view weights given for the whole 6x6 grid are trimmed with it
    w = np.zeros((6, 6))
    w[2, 1:4] = 1.0
    p = lfd.make_pairs(lf, apertures=[1.0], focus=[0.5], crop=None, aperture_shape=w)[0]
    assert p.info["n_views"] == 3 and p.info["aperture_shape"] == "weights"
    np.testing.assert_allclose(p.blurred, lfd.refocus(sub, 0.5, aperture_shape=w[:5, :5]), atol=1e-6)


def test_progress_cancel_generator():
    lf = scene()
    calls = []
    pairs = lfd.make_pairs(lf, apertures=[0.5, 1.0], focus=[-1, 1], progress=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)] and len(pairs) == 4
    stops = iter([False, False, True])
    assert len(lfd.make_pairs(lf, apertures=[0.5, 1.0], focus=[-1, 1], cancel=lambda: next(stops))) == 2
    gen = iter_pairs(lf, apertures=[1.0], focus=[-1, 0, 1])
    first = next(gen)
    assert first.info["focus"] == -1.0
    assert [p.info["focus"] for p in gen] == [0.0, 1.0]
    with pytest.raises(LightFieldError):  # checked at the call, not at the first next()
        iter_pairs(lf, apertures=[2.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"apertures": [0.0]},
        {"apertures": [1.2]},
        {"apertures": []},
        {"focus": 0},
        {"focus": []},
        {"focus": [np.nan]},
        {"crop": "some"},
        {"crop": -3},
        {"crop": 60},
        {"focus": [40.0]},  # the auto crop would eat the whole image
    ],
)
def test_bad_arguments(kwargs):
    with pytest.raises(LightFieldError):
        lfd.make_pairs(scene(), **{"apertures": [1.0], "focus": [0.5], **kwargs})


def test_focus_out_of_range_is_refused_up_front():
    import time

    t0 = time.perf_counter()
    with pytest.raises(LightFieldError, match="too many: at most 256"):
        lfd.make_pairs(scene(), focus=1_000_000)  # used to refocus a million planes, for minutes
    with pytest.raises(LightFieldError, match="beyond its 96x96-pixel views"):
        lfd.make_pairs(scene(), focus=[1e6], crop=None)  # no crop to notice it: flat "blurred" images
    assert time.perf_counter() - t0 < 10


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
def test_write_png_folder(tmp_path):
    lf = scene()
    pairs = lfd.make_pairs(lf, apertures=[0.5, 1.0], focus=[-1.0, 1.0])
    out = tmp_path / "pairs"
    manifest = lfd.write_pairs(pairs, out)
    assert manifest == out / "manifest.csv" and manifest.is_file()
    rows = read_manifest(out)
    assert len(rows) == len(pairs) == 4
    with open(manifest, newline="") as f:
        header = next(csv.reader(f))
    for col in ("name", "blur", "sharp", "source", "scene", "aperture", "focus", "index", "crop"):
        assert col in header
    for p, row in zip(pairs, rows):
        assert row["blur"] == f"blur/{row['name']}.png" and row["sharp"] == f"sharp/{row['name']}.png"
        assert row["name"].startswith("synthetic_0_")
        blur = np.asarray(Image.open(out / row["blur"]))
        sharp = np.asarray(Image.open(out / row["sharp"]))
        assert blur.dtype == np.uint8 and blur.shape == p.blurred.shape
        assert np.abs(blur / 255.0 - p.blurred).max() <= 0.5 / 255 + 1e-6
        assert np.abs(sharp / 255.0 - p.sharp).max() <= 0.5 / 255 + 1e-6
        assert float(row["focus"]) == pytest.approx(p.info["focus"], abs=1e-5)
    # the sharp image is written once and shared (hard links where the file system allows)
    sharp_files = [out / r["sharp"] for r in rows]
    assert len({f.read_bytes() for f in sharp_files}) == 1
    if hasattr(os, "link"):
        assert os.stat(sharp_files[0]).st_nlink == len(rows)
    # no temporary files left behind
    assert not [f for f in out.rglob("*") if f.name.startswith(".")]


def test_write_resumes_and_appends(tmp_path):
    lf = scene()
    pairs = lfd.make_pairs(lf, apertures=[1.0], focus=[-1.0, 0.0, 1.0])
    out = tmp_path / "ds"
    # cancelled after the first pair: the manifest lists exactly the finished one
    stops = iter([False, True])
    lfd.write_pairs(pairs, out, cancel=lambda: next(stops))
    assert [r["name"] for r in read_manifest(out)] == [f"synthetic_0_{pairs[0].info['index']:03d}_a1.00_f-1.00"]
    first = out / read_manifest(out)[0]["blur"]
    mtime = first.stat().st_mtime_ns
    calls = []
    lfd.write_pairs(pairs, out, progress=lambda i, n: calls.append((i, n)))  # resumes
    assert len(read_manifest(out)) == 3 and calls[-1] == (3, 3)
    assert first.stat().st_mtime_ns == mtime  # finished items are not rewritten
    # a second light field appends to the same data set, streamed from the generator
    lf2 = lfd.synthetic_lightfield(7, views=5, size=64, disparity_range=(-1, 1))
    lfd.write_pairs(iter_pairs(lf2, apertures=[1.0], focus=[-0.8, 0.8]), out)
    rows = read_manifest(out)
    assert len(rows) == 5
    assert {r["scene"] for r in rows} == {"synthetic_0", "synthetic_7"}
    # a missing file makes its pair be written again
    os.remove(out / rows[0]["blur"])
    lfd.write_pairs(pairs, out)
    assert (out / rows[0]["blur"]).is_file() and len(read_manifest(out)) == 5


def test_write_tiff16_and_name(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    lf = scene()
    pairs = lfd.make_pairs(lf, apertures=[1.0], focus=[0.5])
    lfd.write_pairs(pairs, tmp_path, format="tiff16", name="my scene")
    row = read_manifest(tmp_path)[0]
    assert row["name"].startswith("my_scene_") and row["blur"].endswith(".tif")
    blur = tifffile.imread(tmp_path / row["blur"])
    assert blur.dtype == np.uint16 and blur.shape == pairs[0].blurred.shape
    assert np.abs(blur / 65535.0 - pairs[0].blurred).max() < 1e-4
    # two light fields under one forced name would collide
    other = lfd.make_pairs(scene(1), apertures=[1.0], focus=[0.5])
    with pytest.raises(LightFieldError):
        lfd.write_pairs(pairs + other, tmp_path / "x", name="same")
    with pytest.raises(LightFieldError):
        lfd.write_pairs(pairs, tmp_path / "y", format="jpeg")


def test_psnr():
    a = np.zeros((4, 4, 3), np.float32)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 0.1) == pytest.approx(20.0)
