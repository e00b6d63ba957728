"""Pair datasets: layouts, crops/augmentation, determinism, splits, on-the-fly light-field pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from napari_lfdeblur.errors import TrainingError
from napari_lfdeblur.training.datasets import (
    ConcatPairs,
    FolderPairs,
    LightFieldPairs,
    ProceduralPairs,
    detect_layout,
    open_pairs,
    split,
)


def _save(path, a):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)


def _pair_images(rng, h=40, w=48):
    sharp = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return 255 - sharp, sharp  # "blurred" = negative: blur + sharp == 1 everywhere, whatever the crop


@pytest.fixture
def dpdd_folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "dpdd"
    for i in range(6):
        b, s = _pair_images(rng)
        _save(root / "blur" / f"scene{i}.png", b)
        _save(root / "sharp" / f"scene{i}.png", s)
    return root


def test_dpdd_layout_crops_augments_identically(dpdd_folder):
    assert detect_layout(dpdd_folder) == "dpdd"
    ds = open_pairs(dpdd_folder, patch=32)
    assert isinstance(ds, FolderPairs) and len(ds) == 6
    assert ds.names == [f"scene{i}" for i in range(6)]
    for key in [(0, 1, 0), (3, 1, 7), (5, 2, 11), 2]:
        b, s = ds[key]
        assert b.shape == s.shape == (3, 32, 32) and b.dtype == torch.float32
        assert 0 <= float(b.min()) and float(b.max()) <= 1
        # the same crop, flip and rotation for both images
        torch.testing.assert_close(b + s, torch.ones_like(b), atol=1e-6, rtol=0)


def test_keys_are_deterministic_and_draws_differ(dpdd_folder):
    ds = open_pairs(dpdd_folder, patch=16)
    a1, _ = ds[(1, 5, 3)]
    a2, _ = ds[(1, 5, 3)]
    assert torch.equal(a1, a2)
    others = [ds[(1, 5, d)][0] for d in range(4, 12)]
    assert any(not torch.equal(a1, o) for o in others)
    assert torch.equal(ds[1][0], ds[1][0])  # int keys: fixed crop


def test_source_target_layout_full_images_and_signed(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "dd"
    for i in range(2):
        b, s = _pair_images(rng, 24, 30)
        _save(root / "source" / f"x{i}.png", b)
        _save(root / "target" / f"x{i}.jpg", s)  # the extension may differ
    ds = open_pairs(root)
    assert ds.crop == "full" and not ds.augment
    b, s = ds[0]
    assert b.shape == (3, 24, 30)
    ds2 = open_pairs(root, signed=True)
    b2, _ = ds2[0]
    torch.testing.assert_close(b2, b * 2 - 1)


def test_greyscale_becomes_rgb_and_small_images_are_padded(tmp_path):
    root = tmp_path / "g"
    g = np.arange(20 * 20, dtype=np.uint8).reshape(20, 20)
    _save(root / "blur" / "a.png", g)
    _save(root / "sharp" / "a.png", g)
    b, _ = open_pairs(root, patch=32, augment=False)[0]
    assert b.shape == (3, 32, 32)
    assert torch.equal(b[0], b[1]) and torch.equal(b[1], b[2])


def test_lfdof_layout_groups_inputs_by_ground_truth(tmp_path):
    root = tmp_path / "lfdof"
    gts = {"sceneA": 10, "scene_B": 200}
    for name, v in gts.items():
        _save(root / "ground_truth" / f"{name}.png", np.full((16, 16, 3), v, np.uint8))
    for stem, v in [("sceneA_ap1_f1", 10), ("sceneA_ap3_f5", 10), ("scene_B_1_2", 200)]:
        _save(root / "input" / f"{stem}.png", np.full((16, 16, 3), v, np.uint8))
    _save(root / "input" / "scene_B" / "extra.png", np.full((16, 16, 3), 200, np.uint8))  # input/NAME/ too
    assert detect_layout(root) == "lfdof"
    ds = open_pairs(root)
    assert len(ds) == 4
    assert sorted(ds.groups) == ["sceneA", "sceneA", "scene_B", "scene_B"]
    for i in range(len(ds)):
        b, s = ds[i]
        assert torch.equal(b, s)  # each input matched to its own ground truth
    tr, va = split(ds, val_names=["scene_B"])
    assert set(va.groups) == {"scene_B"} and set(tr.groups) == {"sceneA"}


def test_manifest_folder_from_write_pairs(tmp_path):
    from napari_lfdeblur.lightfield.pairs import make_pairs, write_pairs
    from napari_lfdeblur.lightfield.synthetic import synthetic_lightfield

    for seed in (1, 2):
        lf = synthetic_lightfield(seed=seed, views=3, size=40)
        write_pairs(make_pairs(lf, apertures=[1.0], focus=2, skip_duplicates=False), tmp_path / "pairs")
    assert detect_layout(tmp_path / "pairs") == "manifest"
    ds = open_pairs(tmp_path / "pairs", patch=16)
    assert len(ds) == 4 and sorted(set(ds.groups)) == ["synthetic_1", "synthetic_2"]
    b, s = ds[(0, 0, 0)]
    assert b.shape == s.shape == (3, 16, 16)
    tr, va = split(ds, val_fraction=0.5, seed=3, val_patch=16)
    assert len(tr) == len(va) == 2 and not set(tr.groups) & set(va.groups)


def test_split_fraction_is_deterministic_and_by_group(dpdd_folder):
    ds = open_pairs(dpdd_folder, patch=16)
    tr1, va1 = split(ds, val_fraction=0.34, seed=0, val_patch=16)
    _, va2 = split(ds, val_fraction=0.34, seed=0, val_patch=16)
    assert va1.names == va2.names and len(va1) == 2 and len(tr1) == 4
    assert not set(tr1.names) & set(va1.names)
    assert va1.crop == "center" and not va1.augment and tr1.crop == "random" and tr1.augment
    b, _ = va1[0]
    assert b.shape == (3, 16, 16)
    _, va_full = split(ds, val_names=["scene3"], val_patch=None)
    assert va_full.names == ["scene3"] and va_full.crop == "full" and va_full[0][0].shape == (3, 40, 48)
    with pytest.raises(TrainingError, match="not in the data"):
        split(ds, val_names=["nope"])


def test_errors_say_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="neither a pair folder"):
        open_pairs(tmp_path / "empty")
    with pytest.raises(TrainingError, match="not found"):
        open_pairs(tmp_path / "missing")
    root = tmp_path / "bad"
    _save(root / "blur" / "a.png", np.zeros((16, 16, 3), np.uint8))
    _save(root / "sharp" / "a.png", np.zeros((16, 20, 3), np.uint8))
    with pytest.raises(TrainingError, match="same size"):
        open_pairs(root)[0]
    root2 = tmp_path / "nomatch"
    _save(root2 / "blur" / "a.png", np.zeros((16, 16, 3), np.uint8))
    _save(root2 / "sharp" / "b.png", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(TrainingError, match="same name"):
        open_pairs(root2)
    with pytest.raises(TrainingError, match="multiple of|>= 8|patch"):
        open_pairs(root2, patch=4)


def test_cache_keeps_uint8(dpdd_folder):
    ds = open_pairs(dpdd_folder, patch=16)
    ds[(0, 0, 0)]
    assert ds._cache and all(a.dtype == np.uint8 for a in ds._cache.values())
    nocache = open_pairs(dpdd_folder, patch=16, cache=False)
    nocache[(0, 0, 0)]
    assert not nocache._cache


def test_lightfield_pairs_on_the_fly():
    from napari_lfdeblur.lightfield.synthetic import synthetic_lightfield

    lf = synthetic_lightfield(seed=4, views=5, size=64, disparity_range=(-1, 1))
    ds = open_pairs(lf, patch=32, length=10)
    assert isinstance(ds, LightFieldPairs) and len(ds) == 10
    b, s = ds[(2, 0, 9)]
    assert b.shape == s.shape == (3, 32, 32)
    b2, s2 = ds[(2, 0, 9)]
    assert torch.equal(b, b2) and torch.equal(s, s2)
    # blurred differs from sharp on average (random focus away from most layers)
    diffs = [float((ds[(i, 0, i)][0] - ds[(i, 0, i)][1]).abs().mean()) for i in range(4)]
    assert max(diffs) > 1e-3
    full = ds.options(patch=None)
    fb, fs = full[0]
    assert fb.shape == fs.shape and fb.shape[1] >= 48


def test_procedural_pairs_and_heldout():
    ds = open_pairs("synthetic", patch=32, views=5, size=48, pool=2, refresh=4, length=50)
    assert isinstance(ds, ProceduralPairs)
    b, s = ds[(0, 0, 0)]
    assert b.shape == s.shape == (3, 32, 32)
    assert torch.equal(ds[(3, 0, 5)][0], ds[(3, 0, 5)][0])
    tr, va = split(ds, val_fraction=0.1, val_count=3, val_patch=32)
    assert tr is ds and len(va) == 3 and va.seed != ds.seed and va.crop == "center"
    v0 = va[0][0]
    assert torch.equal(v0, va[0][0])  # fixed validation items (kept after the first time)


def test_concat_and_split_mixed(dpdd_folder):
    ds = open_pairs([dpdd_folder, "synthetic"], patch=16, views=5, size=40, length=20)
    assert isinstance(ds, ConcatPairs) and len(ds) == 26
    assert ds[(25, 0, 1)][0].shape == (3, 16, 16)
    _, va = split(ds, val_fraction=0.34, val_count=2, val_patch=16)
    assert len(va) == 2 + 2


def test_real_dpdd_folder(dpdd_pairs):
    ds = open_pairs(dpdd_pairs, patch=64)
    assert len(ds) == 60 and ds.layout == "dpdd"
    names = sorted(ds.names)[:10]
    tr, va = split(ds, val_names=names, val_patch=128)
    assert len(tr) == 50 and sorted(va.names) == names
    b, s = tr[(0, 0, 0)]
    assert b.shape == (3, 64, 64) and float((b - s).abs().mean()) < 0.5


def test_match_exposure_maps_the_sharp_shot_onto_the_blurry_shots_exposure(tmp_path):
    """A sharp shot 20 % brighter plus an offset per channel than its blurred twin comes back at the
    blurred shot's exposure; crops and augmentation still apply identically."""
    from scipy.ndimage import gaussian_filter

    from napari_lfdeblur.training.datasets import match_exposure

    rng = np.random.default_rng(3)
    shapes = gaussian_filter(rng.random((128, 160, 3)), (12, 12, 0))  # large bright and dark regions
    shapes = (shapes - shapes.min()) / np.ptp(shapes)
    scene = 0.15 + 0.5 * shapes + 0.15 * gaussian_filter(rng.random((128, 160, 3)), (1, 1, 0))  # + texture
    blur = gaussian_filter(scene, (3, 3, 0), mode="nearest")
    brighter = np.clip(scene * [1.2, 1.1, 0.9] + [0.02, -0.03, 0.05], 0, 1)
    to8 = lambda a: (a * 255).round().astype(np.uint8)  # noqa: E731
    out = match_exposure(to8(brighter), to8(blur))
    assert out.dtype == np.uint8 and out.shape == blur.shape
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), to8(blur).reshape(-1, 3).mean(0), atol=1.0)
    err = np.abs(out.astype(int) - to8(scene))  # the sharp shot's detail, at the blurry shot's exposure
    assert err.mean() < 1.5 and np.percentile(err, 99) <= 4
    naive = np.clip(brighter * 0 + brighter.mean((0, 1)) + (brighter - brighter.mean((0, 1))) *
                    (blur.std((0, 1)) / brighter.std((0, 1))), 0, 1)  # matching pixel statistics instead
    assert np.abs(to8(naive).astype(int) - to8(scene)).mean() > 2 * err.mean()  # shrinks the contrast: worse
    _save(tmp_path / "p" / "blur" / "a.png", to8(blur))
    _save(tmp_path / "p" / "sharp" / "a.png", to8(brighter))
    raw = open_pairs(tmp_path / "p", patch=32)
    matched = open_pairs(tmp_path / "p", patch=32, match_exposure=True)
    assert "exposure matched" in matched.describe() and "exposure matched" not in raw.describe()
    (b1, s1), (b2, s2) = raw[(0, 5, 0)], matched[(0, 5, 0)]
    assert torch.equal(b1, b2)  # the same crop and flips; only the target's exposure changes
    assert float((s2 - b2).mean().abs()) < 0.02 < float((s1 - b1).mean().abs())


def test_match_exposure_raises_psnr_of_real_pairs_only_where_exposure_differs(dpdd_pairs):
    """On DPDD pair 1P0A1924 the two shots differ in exposure: matching gains > 4 dB for the input."""
    raw = open_pairs(dpdd_pairs)
    matched = open_pairs(dpdd_pairs, match_exposure=True)
    i = raw.names.index("1P0A1924")

    def psnr(a, b):
        return float(-10 * torch.log10(((a - b) ** 2).mean()))

    (b, s), (_, sm) = raw[i], matched[i]
    assert psnr(b, sm) > psnr(b, s) + 4


def _marked_lightfield(width=96, marked_from=67):
    """5x5 views, 64 x ``width`` px: 0 everywhere, 1 in columns ``marked_from`` and beyond."""
    from napari_lfdeblur.lightfield.core import LightField

    data = np.zeros((5, 5, 64, width, 3), np.float32)
    data[:, :, :, marked_from:] = 1.0
    return LightField(data, metadata={"name": "marked"})


def test_single_lightfield_holds_out_a_band_training_never_reads():
    lf = _marked_lightfield()
    ds = LightFieldPairs([lf], patch=32, length=40, focus=(-1.0, 1.0))
    tr, va = split(ds, val_fraction=0.3, val_patch=256)
    # 30 % of 96 columns = 29: columns 67-96 are held out, refocused only from themselves
    assert "columns 67-96 held out" in va.describe()
    assert len(tr) == 40 and len(va) == 8 and va.crop == "full" and not va.augment
    for i in range(30):  # random training draws: never a pixel of the held-out band
        b, s = tr[(i, 0, i)]
        assert float(b.max()) == 0.0 and float(s.max()) == 0.0
    for i in range(len(va)):  # validation: only the band (its whole width less the refocus border)
        b, s = va[i]
        assert float(b.min()) > 0.999 and float(s.min()) > 0.999
        assert b.shape[1] <= 64 and b.shape[2] <= 29
    assert torch.equal(va[3][0], va[3][0])  # fixed validation items


def test_single_lightfield_too_small_to_split_says_what_to_do():
    ds = LightFieldPairs([_marked_lightfield(width=60)], patch=48, focus=(-1.0, 1.0))
    with pytest.raises(TrainingError, match="separate validation data, a smaller patch, or no validation"):
        split(ds, val_fraction=0.15)


def test_train_on_one_real_lightfield_validates_on_the_held_out_band(lytro_plants, tmp_path):
    from napari_lfdeblur import read_lightfield
    from napari_lfdeblur.training import train

    lf = read_lightfield(lytro_plants)
    torch.set_num_threads(1)
    r = train(lf, model=4, steps=2, batch=1, patch=64, val=0.15, out=tmp_path / "run", device="cpu")
    assert r.summary["n_val"] == 8
    assert "held out" in r.summary["val_data"]
    assert 15 < r.summary["input_psnr"] < 60 and np.isfinite(r.summary["val_psnr"])


def test_single_scene_pair_folder_holds_out_a_band_of_every_image(tmp_path):
    root = tmp_path / "one_scene"
    for name in ("a", "b"):  # two pairs, one scene (the manifest's scene column)
        img = np.zeros((40, 96, 3), np.uint8)
        img[:, 67:] = 255  # 30 % of 96 columns = 29: columns 67-95 are the validation band
        _save(root / "blur" / f"{name}.png", img)
        _save(root / "sharp" / f"{name}.png", img)
    (root / "manifest.csv").write_text("name,blur,sharp,scene\na,blur/a.png,sharp/a.png,lf\n"
                                       "b,blur/b.png,sharp/b.png,lf\n")
    ds = open_pairs(root, patch=32)
    assert ds.groups == ["lf", "lf"]
    tr, va = split(ds, val_fraction=0.3, val_patch=256)
    assert len(tr) == len(va) == 2 and va.crop == "full" and "held out" in va.describe()
    for i in range(20):  # random training crops never reach the band
        b, s = tr[(i % 2, 0, i)]
        assert b.shape == (3, 32, 32) and float(b.max()) == 0.0 and float(s.max()) == 0.0
    b, s = va[1]
    assert b.shape == (3, 40, 29) and float(b.min()) == 1.0 and float(s.min()) == 1.0
    with pytest.raises(TrainingError, match="a smaller patch, or no validation"):
        split(open_pairs(root, patch=48), val_fraction=0.3)


def test_procedural_pairs_from_your_own_photos(one_torch_thread):
    # a photo of stripes textures the scene (a plane), so sharp targets keep its stripes and only its
    # stripes (no bundled texture), and the blurred input is a defocused copy of them
    x = np.arange(300)
    stripes = np.repeat(((x // 4) % 2 * 180 + 40).astype(np.uint8)[None, :, None], 200, 0).repeat(3, 2)
    ds = ProceduralPairs(patch=32, length=4, layers=(1, 1), images=[stripes], seed=1)  # one plane
    assert "textured with 1 of your image," in ds.describe()
    for i in range(len(ds)):
        s = ds[i][1].numpy()  # the sharp target
        # constant along one axis (rotations are part of the augmentation): stripes only
        assert np.allclose(s, s[:, :1, :], atol=0.02) or np.allclose(s, s[:, :, :1], atol=0.02)
        assert s.min() < 0.2 and s.max() > 0.65
    assert any(float((ds[i][0] - ds[i][1]).abs().mean()) > 0.01 for i in range(len(ds)))


def test_procedural_pairs_reject_unusable_photos():
    with pytest.raises(TrainingError, match="ProceduralPairs: .*at least 16x16"):
        ProceduralPairs(patch=32, images=[np.zeros((8, 8, 3), np.uint8)])


def test_each_input_gets_its_own_exposure_matched_target(tmp_path):
    """LFDOF inputs share one ground truth: the matched target was cached for whichever input came first."""
    from napari_lfdeblur.training.datasets import match_exposure

    root = tmp_path / "lfdof"
    sharp = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    _save(root / "ground_truth" / "s.png", sharp)
    inputs = {"s_dark": (sharp * 0.5 + 10).astype(np.uint8), "s_bright": (sharp * 0.5 + 120).astype(np.uint8)}
    for stem, img in inputs.items():
        _save(root / "input" / f"{stem}.png", img)
    ds = open_pairs(root, match_exposure=True)
    for i in (1, 0):  # the second input first: each one's target whatever came before
        name = ds.names[i]
        got = np.rint(ds[i][1].numpy() * 255).astype(np.uint8).transpose(1, 2, 0)
        np.testing.assert_array_equal(got, match_exposure(sharp, inputs[name]))


def test_item_sizes_and_the_training_patch_check(tmp_path, dpdd_folder):
    from napari_lfdeblur.training.datasets.base import fit_patch

    _save(dpdd_folder / "blur" / "tiny.png", np.zeros((4, 6, 3), np.uint8))
    _save(dpdd_folder / "sharp" / "tiny.png", np.zeros((4, 6, 3), np.uint8))
    ds = open_pairs(dpdd_folder, patch=32)
    sizes = dict(ds.item_sizes())
    assert sizes[str(dpdd_folder / "blur" / "scene0.png")] == (40, 48) and sizes[str(dpdd_folder / "blur" /
                                                                                   "tiny.png")] == (4, 6)
    with pytest.warns(RuntimeWarning, match=r"1 of the 7 training pairs .*tiny\.png \(6x4 px\)"):
        kept = fit_patch(ds, 32)
    assert "tiny" not in kept.names and len(kept) == 6
    assert fit_patch(kept, 32) is kept  # all large enough: nothing to do
    both = ConcatPairs([ds, ProceduralPairs(patch=32, length=4, size=40)])
    with pytest.raises(TrainingError, match=r"no training pair is as large as the 64-px patch: .*scene0\.png "
                                            r"\(48x40 px\).* and 4 more; train with patch=40 or less"):
        fit_patch(both.options(patch=64), 64)
