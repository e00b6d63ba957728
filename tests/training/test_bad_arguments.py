"""Malformed arguments of ``train`` and ``finetune`` (``import napari_lfdeblur as lfd``): every one a project
error that says what is wrong, before the run, never a hang, a raw Python error or a silently padded score."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from PIL import Image

import napari_lfdeblur as lfd

TINY = {"model": 4, "batch": 1, "patch": 32, "device": "cpu", "steps": 2, "seed": 0}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pair_folder(root, sizes: dict):
    """DPDD layout (blur/NAME.png, sharp/NAME.png) of textured pairs of the (H, W) given per name."""
    rng = np.random.default_rng(0)
    (root / "blur").mkdir(parents=True)
    (root / "sharp").mkdir()
    for name, (h, w) in sizes.items():
        sharp = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        blur = ((sharp.astype(np.uint16) + np.roll(sharp, 1, axis=1)) // 2).astype(np.uint8)
        Image.fromarray(sharp).save(root / "sharp" / f"{name}.png")
        Image.fromarray(blur).save(root / "blur" / f"{name}.png")
    return root


@pytest.fixture
def pairs44(tmp_path):
    """Pairs of 44x44 px, as in the sweep (A427, A478)."""
    return _pair_folder(tmp_path / "pairs", {f"p{i}": (44, 44) for i in range(3)})


# ---------------------------------------------------------------- validation crops and the validation pairs
def test_validation_crops_are_no_larger_than_the_validation_pairs(pairs44):
    """val_patch=64 on 44x44 pairs scored 64x64 copies padded by reflection (53% made-up pixels), without a word."""
    events = []
    with pytest.warns(RuntimeWarning, match=r"validation scores 44-px crops, not 64-px ones \(val_patch\): the "
                                            r"smallest validation pair is .*p0\.png \(44x44 px\).*val_patch=None"):
        r = lfd.train(pairs44, val=pairs44, val_patch=64, val_samples=1, callback=events.append, **TINY)
    validations = [e for e in events if e.kind == "validation"]
    assert validations and validations[0].n_images == 3  # every pair scored ...
    name, blurred, output, sharp = validations[0].samples[0]
    assert blurred.shape == output.shape == sharp.shape == (44, 44, 3)  # ... on its own pixels only
    assert r.validations and np.isfinite(r.validations[-1]["psnr"])


@pytest.mark.timeout(300)
def test_a_validation_crop_far_larger_than_the_pairs_does_not_hang(pairs44):
    """val_patch=4096 padded each 44x44 pair to 4096x4096 and validation ran for minutes (killed at 60 s)."""
    t0 = time.perf_counter()
    with pytest.warns(RuntimeWarning, match="validation scores 44-px crops, not 4096-px ones"):
        r = lfd.train(pairs44, val=pairs44, val_patch=4096, **TINY)
    assert r.validations and time.perf_counter() - t0 < 60


def test_validation_pairs_too_small_for_the_network_are_left_out_or_refused(pairs44, tmp_path):
    mixed = _pair_folder(tmp_path / "mixed", {"big": (44, 48), "dot": (4, 4)})
    events = []
    with pytest.warns(RuntimeWarning) as rec:
        lfd.train(pairs44, val=mixed, val_patch=32, callback=events.append, **TINY)
    said = [str(w.message) for w in rec.list]
    assert any(m.startswith("1 of the 2 validation pairs are under 8x8 px, too small for the network, and are left "
                            "out: ") and "dot.png (4x4 px)" in m for m in said), said
    assert not any("validation scores" in m for m in said)  # the 44x48 pair holds the 32-px crop
    assert {e.n_images for e in events if e.kind == "validation"} == {1}

    dots = _pair_folder(tmp_path / "dots", {"dot": (4, 4), "speck": (2, 6)})
    with pytest.raises(lfd.TrainingError, match=r"no validation pair is as large as 8x8 px.*dot\.png \(4x4 px\).*"
                                                 r"give larger validation pairs"):
        lfd.train(pairs44, val=dots, **TINY)


def test_validation_pairs_as_large_as_the_crop_are_scored_as_before(pairs44):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no note: nothing shrinks
        r = lfd.train(pairs44, val=pairs44, val_patch=40, **TINY)
    assert r.validations


def test_procedural_validation_scenes_hold_the_validation_crop():
    """Held-out procedural scenes were as small as the training ones (patch + 96 px), so the default 256-px
    validation crop of a patch-128 run padded its 224-px scenes: they are now rendered large enough."""
    from napari_lfdeblur.training import split

    ds = lfd.open_pairs("synthetic", patch=32, views=5, size=48, length=20)
    _, va = split(ds, val_fraction=0.5, val_patch=64, val_count=2)
    assert va.size >= 64 and [hw for _, hw in va.item_sizes()] == [(va.size, va.size)] * 2
    blurred, sharp = va[0]
    assert blurred.shape == (3, 64, 64)
    _, same = split(ds, val_fraction=0.5, val_patch=32, val_count=2)
    assert same.size == 48  # a crop the scenes hold: scenes as before
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = lfd.train(ds, val=0.5, val_patch=64, **TINY)
    assert r.validations


def test_procedural_scenes_beyond_the_synthetic_limits_are_refused_when_opened():
    with pytest.raises(lfd.TrainingError, match=r"views must be from 3 to 17 and size at most 4096 px, got views=21"):
        lfd.open_pairs("synthetic", views=21)
    with pytest.raises(lfd.TrainingError, match=r"size at most 4096 px, got views=11, size=100000"):
        lfd.open_pairs("synthetic", size=100_000)


# ---------------------------------------------------------------- options and callbacks
@pytest.mark.parametrize("func", ["train", "finetune"])
def test_an_unknown_option_is_a_training_error_and_still_a_type_error(func):
    from napari_lfdeblur.errors import OptionError

    with pytest.raises(lfd.TrainingError, match=r"\(\) got an unknown training option 'foo'.*the options are the "
                                                r"fields of TrainConfig") as e:
        getattr(lfd, func)("synthetic", foo=1, **TINY)
    assert isinstance(e.value, TypeError) and isinstance(e.value, OptionError)
    with pytest.raises(TypeError, match=r"'stepz' \(did you mean 'steps'\?\)"):  # what Python's callers catch
        lfd.TrainConfig().replace(stepz=3)


@pytest.mark.parametrize("func", ["train", "finetune"])
@pytest.mark.parametrize("callback, shown", [("x", "str 'x'"), (3, "int 3")])
def test_a_callback_that_is_not_a_function_is_refused_before_the_run(tmp_path, func, callback, shown):
    """callback="x" failed with "'str' object is not callable" at the first event, once the run had started."""
    with pytest.raises(lfd.TrainingError, match=rf"callback must be None or a function called as callback\(event\), "
                                                rf"got {shown}"):
        getattr(lfd, func)("synthetic", callback=callback, out=tmp_path / "run", **TINY)
    assert not (tmp_path / "run").exists()
