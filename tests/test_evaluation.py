"""Evaluation: ``compare`` on known inputs, ``evaluate`` on a folder of outputs or a model, CSV, CLI, errors.

Pair folders are small DPDD-layout folders made here (blur/ + sharp/ PNGs);
one test uses two real DPDD pairs from the shared data, downscaled.
"""

from __future__ import annotations

import csv
import math
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import napari_lfdeblur
from napari_lfdeblur import evaluation
from napari_lfdeblur.cli import main
from napari_lfdeblur.errors import DeblurInputError, LFDeblurError
from napari_lfdeblur.evaluation import compare, evaluate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _sharp(h=48, w=64, seed=0) -> np.ndarray:
    """A uint8 RGB pattern in 20..230, so +-20 offsets never clip."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 5.0) * np.cos(yy / 4.0)], axis=-1)
    img = 0.7 * base + 0.3 * rng.random((h, w, 3))
    return (20 + img / img.max() * 210).round().astype(np.uint8)


def _blurred(img: np.ndarray) -> np.ndarray:
    from scipy.ndimage import uniform_filter

    return uniform_filter(img.astype(np.float64), size=(5, 5, 1)).round().astype(np.uint8)


def _pair_folder(root, names=("a", "b")):
    """DPDD layout: blur/NAME.png + sharp/NAME.png; returns {name: (blur, sharp)} as uint8."""
    (root / "blur").mkdir(parents=True)
    (root / "sharp").mkdir()
    pairs = {}
    for i, n in enumerate(names):
        sharp = _sharp(seed=i)
        blur = _blurred(sharp)
        Image.fromarray(blur).save(root / "blur" / f"{n}.png")
        Image.fromarray(sharp).save(root / "sharp" / f"{n}.png")
        pairs[n] = (blur, sharp)
    return root


def _outputs(folder, images: dict, suffix=""):
    folder.mkdir(parents=True, exist_ok=True)
    for n, img in images.items():
        Image.fromarray(img).save(folder / f"{n}{suffix}.png")
    return folder


def _psnr_of_offset(offset, data_range):
    return 10 * math.log10(data_range**2 / offset**2)


# ---------------------------------------------------------------- compare
def test_compare_identical_images_infinite_psnr_zero_mae():
    img = _sharp()
    s = compare(img, img)
    assert s["psnr"] == math.inf and s["mae"] == 0.0 and s["ssim"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("ref", "offset", "mae", "psnr"),
    [
        (_sharp().astype(np.float32) / 255, 0.1, 0.1, 20.0),  # floats in [0, 1]: as they are
        (_sharp(), 10, 10 / 255, _psnr_of_offset(10, 255)),  # uint8: / 255
    ],
    ids=["float01", "uint8"],
)
def test_compare_known_offset(ref, offset, mae, psnr):
    img = ref + np.asarray(offset, ref.dtype)
    s = compare(img, ref)
    assert s["mae"] == pytest.approx(mae, rel=1e-5)
    assert s["psnr"] == pytest.approx(psnr, abs=1e-3)
    assert 0 < s["ssim"] < 1


def test_compare_uint16_uses_the_reference_range():
    ref = np.linspace(1000, 2000, 40 * 50).reshape(40, 50).astype(np.uint16)  # a tenth of uint16
    s = compare(ref + 100, ref)
    assert s["psnr"] == pytest.approx(20.0, abs=1e-6)  # 100 / (2000 - 1000) = 0.1
    assert s["mae"] == pytest.approx(0.1)


def test_compare_stack_is_the_mean_over_planes_and_small_images_get_a_real_ssim():
    ref = np.zeros((2, 8, 8), np.float32) + 0.5
    img = ref.copy()
    img[1] += 0.1
    s = compare(img, ref, rgb=False)
    assert s["mae"] == pytest.approx(0.05)
    assert s["psnr"] == pytest.approx(20.0, abs=1e-4)  # the inf of plane 0 is left out of the mean
    # under 11x11: a 7x7 window, not NaN; flat planes leave only the luminance term (2 mu_a mu_b + c1) / (...)
    c1 = 0.01**2
    plane1 = (2 * 0.6 * 0.5 + c1) / (0.6**2 + 0.5**2 + c1)
    assert s["ssim"] == pytest.approx((1.0 + plane1) / 2, rel=1e-5)


def _weighted_ssim(a: np.ndarray, b: np.ndarray, sigma=1.5) -> float:
    """SSIM at the centre pixel of an odd-sided square image (the one pixel its window leaves), by hand: the
    11x11 Gaussian-weighted statistics of the image mirrored at its borders."""
    c = a.shape[0] // 2 + 5
    a, b = (np.pad(x, 5, mode="symmetric")[c - 5:c + 6, c - 5:c + 6] for x in (a, b))
    g = np.exp(-np.arange(-5, 6) ** 2 / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    ma, mb = (w * a).sum(), (w * b).sum()
    va, vb, cov = (w * a * a).sum() - ma**2, (w * b * b).sum() - mb**2, (w * a * b).sum() - ma * mb
    c1, c2 = 0.01**2, 0.03**2
    return (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))


@pytest.mark.parametrize("side", [3, 5, 7, 9])
def test_small_images_are_scored_with_the_largest_odd_window_that_fits(side):
    rng = np.random.default_rng(side)
    ref = rng.random((side, side))
    img = np.clip(ref + 0.2 * rng.standard_normal((side, side)), 0, 1)
    s = compare(img, ref, rgb=False)
    assert math.isfinite(s["ssim"]) and s["ssim"] == pytest.approx(_weighted_ssim(img, ref), rel=1e-9)
    assert compare(ref, ref, rgb=False)["ssim"] == pytest.approx(1.0)
    # an even side uses the odd window below it: 8 pixels -> 7x7, the first 7x7 block gives one of its scores
    from napari_lfdeblur.training.metrics import ssim_window

    assert ssim_window(side + 1, 40) == side and ssim_window(40, 40) == 11


def test_compare_under_3x3_is_a_clear_error_not_nan():
    with pytest.raises(DeblurInputError, match=r"at least 3x3 pixels.*got 6x2"):
        compare(np.zeros((2, 6, 3), np.uint8), np.ones((2, 6, 3), np.uint8))


def test_compare_errors_say_what_to_do():
    with pytest.raises(DeblurInputError, match="same size"):
        compare(np.zeros((20, 30, 3), np.uint8), np.zeros((20, 31, 3), np.uint8))
    with pytest.raises(DeblurInputError, match="same type"):
        compare(np.zeros((20, 30), np.uint16), np.zeros((20, 30), np.float32) + 5)


# ---------------------------------------------------------------- evaluate: a folder of outputs
def test_outputs_folder_known_scores_and_csv(tmp_path):
    root = _pair_folder(tmp_path / "pairs")
    sharp = {n: np.asarray(Image.open(root / "sharp" / f"{n}.png")) for n in ("a", "b")}
    blur = {n: np.asarray(Image.open(root / "blur" / f"{n}.png")) for n in ("a", "b")}
    # a: perfect; b: off by 20 grey levels everywhere (NAME_deblurred, as `lfdeblur deblur` names it)
    out = _outputs(tmp_path / "out", {"a": sharp["a"]})
    _outputs(out, {"b": sharp["b"] + np.uint8(20)}, suffix="_deblurred")
    res = evaluate(root, outputs=out, csv=tmp_path / "scores" / "eval.csv", lpips=False)

    assert [r["name"] for r in res.rows] == ["a", "b"]
    a, b = res.rows
    assert a["psnr"] == math.inf and a["mae"] == 0.0
    assert b["psnr"] == pytest.approx(_psnr_of_offset(20, 255), abs=1e-3)
    assert b["mae"] == pytest.approx(20 / 255, rel=1e-5)
    for r in res.rows:  # the blurry input is scored too, the same way
        assert r["input_psnr"] == pytest.approx(compare(blur[r["name"]], sharp[r["name"]])["psnr"], abs=1e-3)
        assert r["gain_db"] == r["psnr"] - r["input_psnr"]
    # means: finite PSNRs only (a's inf is left out), plain mean of MAE
    assert res.mean["psnr"] == pytest.approx(b["psnr"])
    assert res.mean["mae"] == pytest.approx((a["mae"] + b["mae"]) / 2)
    assert res.mean["input_psnr"] == pytest.approx((a["input_psnr"] + b["input_psnr"]) / 2)
    assert "lpips" not in res.metrics and res.lpips_note == ""

    with open(res.csv, newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "input_psnr", "psnr", "gain_db", "input_ssim", "ssim", "input_mae", "mae"]
    assert [r["name"] for r in rows] == ["a", "b", "mean"]
    assert rows[0]["psnr"] == "inf" and float(rows[1]["mae"]) == pytest.approx(b["mae"])
    assert float(rows[2]["psnr"]) == pytest.approx(res.mean["psnr"])
    assert not [p for p in res.csv.parent.iterdir() if p.name.startswith(".")]  # atomic: no leftovers

    table = res.table()
    assert "mean of 2" in table and "inf" in table and f"{b['psnr']:.2f}" in table


def test_missing_and_wrong_size_outputs_are_clear_errors(tmp_path):
    root = _pair_folder(tmp_path / "pairs", names=("a", "b", "c"))
    out = _outputs(tmp_path / "out", {"a": _sharp()})
    with pytest.raises(DeblurInputError, match=r"2 of 3 pairs have no output image.*b, c"):
        evaluate(root, outputs=out)
    res = evaluate(root, outputs=out, limit=1)  # only the pairs asked for must be there
    assert [r["name"] for r in res.rows] == ["a"]

    small = _outputs(tmp_path / "small", {n: _sharp(40, 64) for n in "abc"})
    with pytest.raises(DeblurInputError, match=r"a\.png is 64x40 but the sharp image of 'a' is 64x48"):
        evaluate(root, outputs=small)


@pytest.mark.parametrize("limit", [0, -1, 1.5, True])
def test_limit_must_be_a_positive_number(tmp_path, limit):
    root = _pair_folder(tmp_path / "pairs")
    with pytest.raises(DeblurInputError, match="limit must be a positive number"):
        evaluate(root, outputs=root / "sharp", limit=limit)  # 0 and -1 gave NaN means


def test_unwritable_csv_is_refused_before_scoring(tmp_path):
    from napari_lfdeblur.errors import OutputError

    root = _pair_folder(tmp_path / "pairs")
    (tmp_path / "file.txt").write_text("a file, not a folder")
    scored = []
    with pytest.raises(OutputError, match="cannot write the CSV"):
        evaluate(root, model=torch.nn.Identity(), device="cpu", csv=tmp_path / "file.txt" / "e.csv",
                 progress=lambda d, t: scored.append(d))
    assert scored == []


def test_manifest_listing_missing_files_is_an_error_naming_them(tmp_path):
    from napari_lfdeblur.errors import TrainingError

    root = _pair_folder(tmp_path / "pairs", names=("a", "b", "c"))
    (root / "manifest.csv").write_text("name,blur,sharp\n" + "".join(
        f"{n},blur/{n}.png,sharp/{n}.png\n" for n in ("a", "b", "c")))
    (root / "sharp" / "b.png").unlink()
    with pytest.raises(TrainingError, match=r"lists 1 image file.*sharp/b\.png"):
        evaluate(root, outputs=root / "sharp")  # used to score a and c without a word


def test_model_xor_outputs(tmp_path):
    root = _pair_folder(tmp_path / "pairs")
    with pytest.raises(DeblurInputError, match="exactly one"):
        evaluate(root)
    with pytest.raises(DeblurInputError, match="exactly one"):
        evaluate(root, model=torch.nn.Identity(), outputs=tmp_path)


# ---------------------------------------------------------------- images under SSIM's 11x11 window
def _small_pairs(root, sizes: dict):
    """A DPDD-layout folder of tiny pairs {name: (h, w)}: the blurred image a dimmer, noisier copy."""
    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
    for name, (h, w) in sizes.items():
        sharp = rng.integers(40, 216, (h, w, 3), dtype=np.uint8)
        blur = np.clip(sharp * 0.8 + rng.normal(0, 12, sharp.shape), 0, 255).astype(np.uint8)
        Image.fromarray(sharp).save(root / "sharp" / f"{name}.png")
        Image.fromarray(blur).save(root / "blur" / f"{name}.png")
    return root


def _lfdeblur(*args, timeout=300):
    """The ``lfdeblur`` command in its own process, as a user runs it."""
    import os
    import subprocess

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "napari_lfdeblur.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_evaluate_small_images_have_a_real_ssim_and_say_which_window(tmp_path):
    root = _small_pairs(tmp_path / "pairs", {"tiny": (8, 9), "big": (16, 16)})
    res = napari_lfdeblur.evaluate(root, outputs=root / "sharp", lpips=False)
    tiny, big = sorted(res.rows, key=lambda r: r["name"] != "tiny")
    assert all(math.isfinite(r[k]) for r in res.rows for k in ("ssim", "input_ssim"))
    assert tiny["ssim"] == pytest.approx(1.0) and 0 < tiny["input_ssim"] < 1
    blur, sharp = (np.asarray(Image.open(root / sub / "tiny.png")) for sub in ("blur", "sharp"))
    assert tiny["input_ssim"] == pytest.approx(compare(blur, sharp)["ssim"])
    assert math.isfinite(res.mean["input_ssim"])
    assert "tiny (7x7)" in res.ssim_note and "big" not in res.ssim_note
    assert "SSIM: 1 image under 11x11 pixels scored with a smaller window" in res.table()
    assert "nan" not in res.table().lower()


def test_cli_eval_small_images_shows_scores_not_nan(tmp_path):
    root = _small_pairs(tmp_path / "pairs", {"a": (8, 8), "b": (10, 12)})
    r = _lfdeblur("eval", root, "--outputs", root / "blur", "--lpips", "off")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "nan" not in r.stdout.lower() and "mean of 2" in r.stdout
    assert "2 images under 11x11 pixels scored with a smaller window (a (7x7), b (9x9))" in r.stdout


def test_images_under_3x3_are_refused_by_name(tmp_path):
    root = _small_pairs(tmp_path / "pairs", {"ok": (8, 8), "sliver": (2, 30)})
    with pytest.raises(DeblurInputError, match=r"pair 'sliver': SSIM needs images of at least 3x3 pixels"):
        napari_lfdeblur.evaluate(root, outputs=root / "sharp", lpips=False)
    r = _lfdeblur("eval", root, "--outputs", root / "sharp", "--lpips", "off")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("lfdeblur eval: error: pair 'sliver': SSIM needs images of at least 3x3")
    assert r.stderr.count("\n") == 1


def test_score_model_scores_small_images_and_refuses_slivers_before_running_the_network(tmp_path):
    from napari_lfdeblur.training import score_model

    calls = []

    class Identity(torch.nn.Module):
        def forward(self, x):
            calls.append(tuple(x.shape))
            return x

    small = score_model(Identity(), str(_small_pairs(tmp_path / "small", {"a": (8, 8), "b": (9, 12)})),
                        device="cpu")
    assert small["n"] == 2 and small["ssim_window"] == 7
    assert math.isfinite(small["ssim"]) and small["ssim"] == pytest.approx(small["input_ssim"])
    assert score_model(Identity(), str(_small_pairs(tmp_path / "big", {"a": (16, 16)})), device="cpu")[
        "ssim_window"] == 11
    calls.clear()
    with pytest.raises(DeblurInputError, match="at least 3x3"):
        score_model(Identity(), str(_small_pairs(tmp_path / "sliver", {"a": (2, 8)})), device="cpu")
    assert calls == []


# ---------------------------------------------------------------- evaluate: a model
def test_identity_model_gains_nothing(tmp_path):
    root = _pair_folder(tmp_path / "pairs")
    res = napari_lfdeblur.evaluate(root, model=torch.nn.Identity(), device="cpu", lpips=False)
    for r in res.rows:
        assert r["psnr"] == pytest.approx(r["input_psnr"], abs=1e-4)
        assert r["mae"] == pytest.approx(r["input_mae"], abs=1e-6)
        assert abs(r["gain_db"]) < 1e-4
    assert res.source == "model Identity"


def test_drbnet_rows_equal_deblur_then_compare(tmp_path):
    from napari_lfdeblur import DRBNet, deblur

    root = _pair_folder(tmp_path / "pairs")
    torch.manual_seed(0)
    net = DRBNet(base=4).eval()
    seen = []
    # float32: in bfloat16 a 1-ulp difference in the input may round an output differently
    res = evaluate(root, model=net, device="cpu", dtype="float32", tile=32 + 2 * 48 + 16 + 8, lpips=False,
                   progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]
    for r in res.rows:
        blur = np.asarray(Image.open(root / "blur" / f"{r['name']}.png")).astype(np.float32) / 255
        sharp = np.asarray(Image.open(root / "sharp" / f"{r['name']}.png")).astype(np.float32) / 255
        expected = compare(deblur(blur, model=net, device="cpu", dtype="float32", tile=32 + 2 * 48 + 16 + 8), sharp)
        assert r["psnr"] == pytest.approx(expected["psnr"], abs=1e-6)
        assert r["ssim"] == pytest.approx(expected["ssim"], abs=1e-6)
        assert r["mae"] == pytest.approx(expected["mae"], abs=1e-7)


def test_cancel_keeps_what_was_scored_and_writes_no_csv(tmp_path):
    root = _pair_folder(tmp_path / "pairs", names=("a", "b", "c"))
    done = []  # cancel once the first image is scored
    res = evaluate(root, model=torch.nn.Identity(), device="cpu", progress=lambda d, t: done.append(d),
                   cancel=lambda: bool(done), csv=tmp_path / "e.csv")
    assert res.cancelled and [r["name"] for r in res.rows] == ["a"]
    assert not (tmp_path / "e.csv").exists()


# ---------------------------------------------------------------- LPIPS
def test_lpips_auto_skips_with_a_reason_and_required_raises(tmp_path, monkeypatch):
    monkeypatch.setattr(evaluation, "lpips_status",
                        lambda: (False, "the lpips package is not installed (pip install lpips)"))
    root = _pair_folder(tmp_path / "pairs")
    out = _outputs(tmp_path / "out", {n: _sharp(seed=i) for i, n in enumerate("ab")})
    res = evaluate(root, outputs=out)
    assert "pip install lpips" in res.lpips_note and "lpips" not in res.rows[0]
    assert "LPIPS skipped: the lpips package" in res.table()
    with pytest.raises(LFDeblurError, match="pip install lpips"):
        evaluate(root, outputs=out, lpips=True)


_FAKE_LPIPS = '''
import torch


class LPIPS(torch.nn.Module):
    """The parts of lpips.LPIPS evaluate relies on: .net with torchvision-numbered slices."""

    def __init__(self, net="alex", pnet_rand=False, verbose=True):
        super().__init__()
        assert pnet_rand, "the backbone must not be fetched by torchvision"
        self.net = torch.nn.Module()
        self.net.slice1 = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 3))

    def forward(self, a, b, normalize=False):
        return ((self.net.slice1(a) - self.net.slice1(b)) ** 2).mean().reshape(1, 1, 1, 1)
'''


def test_lpips_from_local_files_only(tmp_path, monkeypatch):
    """A stand-in lpips package: the weight files are looked up where lpips and torch keep them, never fetched."""
    import importlib.util

    pkg = tmp_path / "site" / "lpips"
    (pkg / "weights" / "v0.1").mkdir(parents=True)
    (pkg / "__init__.py").write_text(_FAKE_LPIPS)
    (tmp_path / "site" / "torchvision").mkdir()
    (tmp_path / "site" / "torchvision" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = importlib.util.spec_from_file_location("lpips", pkg / "__init__.py")
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    monkeypatch.setitem(sys.modules, "lpips", fake)

    ok, why = evaluation.lpips_status()
    assert not ok and "reinstall lpips" in why
    (pkg / "weights" / "v0.1" / "alex.pth").write_bytes(b"")
    ok, why = evaluation.lpips_status()
    backbone = tmp_path / "torch" / "hub" / "checkpoints" / evaluation.ALEXNET_FILE
    assert not ok and str(backbone) in why and evaluation.ALEXNET_URL in why

    torch.manual_seed(0)
    backbone.parent.mkdir(parents=True)
    torch.save({"features.0.weight": torch.randn(2, 3, 3, 3), "features.0.bias": torch.randn(2),
                "classifier.1.weight": torch.randn(4, 4)}, backbone)
    assert evaluation.lpips_status() == (True, "")

    root = _pair_folder(tmp_path / "pairs")
    out = _outputs(tmp_path / "out", {"a": _sharp(seed=0), "b": _blurred(_sharp(seed=1))})
    res = evaluate(root, outputs=out, lpips=True, device="cpu", csv=tmp_path / "e.csv")
    assert res.metrics[-1] == "lpips" and res.lpips_note == ""
    a, b = res.rows
    assert a["lpips"] == 0.0 and a["input_lpips"] > 0  # identical images: distance 0
    assert b["lpips"] == pytest.approx(b["input_lpips"])  # b's output is its blurred input
    with open(res.csv, newline="") as f:
        assert next(csv.reader(f))[-2:] == ["input_lpips", "lpips"]


# ---------------------------------------------------------------- CLI
def test_cli_outputs_table_and_csv(tmp_path, capsys):
    root = _pair_folder(tmp_path / "pairs")
    sharp = {n: np.asarray(Image.open(root / "sharp" / f"{n}.png")) for n in ("a", "b")}
    out = _outputs(tmp_path / "out", {"a": sharp["a"] + np.uint8(10), "b": sharp["b"] + np.uint8(10)})
    csv_path = tmp_path / "eval.csv"
    assert main(["eval", str(root), "--outputs", str(out), "--csv", str(csv_path), "--lpips", "off"]) == 0
    text = capsys.readouterr().out
    assert "2 pairs from" in text and "mean of 2" in text and "gain dB" in text
    assert f"{_psnr_of_offset(10, 255):.2f}" in text
    with open(csv_path, newline="") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["a", "b", "mean"]


def test_cli_errors_are_one_line(tmp_path, capsys, monkeypatch):
    root = _pair_folder(tmp_path / "pairs")
    assert main(["eval", str(root), "--outputs", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lfdeblur eval: error: outputs folder not found") and "Traceback" not in err
    monkeypatch.setattr(evaluation, "lpips_status", lambda: (False, "no lpips here (pip install lpips)"))
    assert main(["eval", str(root), "--outputs", str(root / "sharp"), "--lpips", "on"]) == 2
    assert "pip install lpips" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # --model or --outputs is required
        main(["eval", str(root)])


def test_cli_csv_unwritable_fails_first_and_a_late_failure_keeps_the_table(tmp_path, capsys, monkeypatch):
    import errno

    from napari_lfdeblur.io.atomic import output_error

    root = _pair_folder(tmp_path / "pairs")
    (tmp_path / "file.txt").write_text("x")
    calls = []
    monkeypatch.setattr(evaluation, "evaluate", lambda *a, **k: calls.append(1))
    assert main(["eval", str(root), "--outputs", str(root / "sharp"), "--csv",
                 str(tmp_path / "file.txt" / "e.csv")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lfdeblur eval: error: cannot write the CSV") and err.count("\n") == 1
    assert calls == []  # refused before any scoring
    monkeypatch.undo()

    def full_disk(self, path):
        raise output_error(path, OSError(errno.ENOSPC, "No space left on device"))

    monkeypatch.setattr(evaluation.Evaluation, "write_csv", full_disk)
    assert main(["eval", str(root), "--outputs", str(root / "sharp"), "--csv", str(tmp_path / "e.csv"),
                 "--lpips", "off"]) == 2
    captured = capsys.readouterr()
    assert "mean of 2" in captured.out  # the scores are printed before the CSV fails
    assert captured.err.startswith("lfdeblur eval: error: cannot write") and "No space left" in captured.err


def test_cli_model_on_real_dpdd_pairs(tmp_path, dpdd_pairs, capsys):
    from napari_lfdeblur import DRBNet, save_model

    root = tmp_path / "dpdd"
    for sub in ("blur", "sharp"):
        (root / sub).mkdir(parents=True)
        for f in sorted((dpdd_pairs / "blur").iterdir())[:2]:
            with Image.open(dpdd_pairs / sub / f.name) as im:
                im.resize((im.width // 8, im.height // 8), Image.BILINEAR).save(root / sub / f"{f.stem}.png")
    torch.manual_seed(0)
    ckpt = save_model(DRBNet(base=4), tmp_path / "tiny.pt")
    assert main(["eval", str(root), "--model", str(ckpt), "--device", "cpu", "--limit", "1",
                 "--csv", str(tmp_path / "e.csv")]) == 0
    text = capsys.readouterr().out
    name = min((dpdd_pairs / "blur").iterdir()).stem
    assert "1 pair from" in text and name in text and f"model {ckpt}" in text
    with open(tmp_path / "e.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["name"] for r in rows] == [name, "mean"]
    assert 10 < float(rows[0]["input_psnr"]) < 60 and math.isfinite(float(rows[0]["psnr"]))


# ---------------------------------------------------------------- arguments of the wrong kind
def test_lpips_takes_the_command_lines_words_and_refuses_other_values(tmp_path, monkeypatch):
    """lpips="off" (the command line's word) was read as "required", a non-empty string being true, and so was
    lpips="maybe": both failed with "LPIPS asked for but not available"."""
    asked = []
    monkeypatch.setattr(evaluation, "lpips_status",
                        lambda: asked.append(1) or (False, "the lpips package is not installed (pip install lpips)"))
    root = _pair_folder(tmp_path / "pairs")
    out = _outputs(tmp_path / "out", {n: _sharp(seed=i) for i, n in enumerate("ab")})
    for off in ("off", "OFF", False):
        res = napari_lfdeblur.evaluate(root, outputs=out, lpips=off)
        assert res.lpips_note == "" and "lpips" not in res.metrics and len(res.rows) == 2
    assert asked == []  # never even looked for
    assert "pip install lpips" in napari_lfdeblur.evaluate(root, outputs=out, lpips="auto").lpips_note
    with pytest.raises(LFDeblurError, match="LPIPS asked for but not available"):
        napari_lfdeblur.evaluate(root, outputs=out, lpips="on")
    for bad in ("maybe", "", None, 1):
        with pytest.raises(DeblurInputError, match=r"lpips must be True \(or 'on': required\), False \(or 'off': "
                                                   r"never\) or 'auto' \(when available\), got "):
            napari_lfdeblur.evaluate(root, outputs=out, lpips=bad)


def test_a_progress_that_is_not_a_function_is_refused_before_any_scoring(tmp_path):
    """progress="x" failed with "'str' object is not callable" after the first image was scored."""
    root = _pair_folder(tmp_path / "pairs")
    out = _outputs(tmp_path / "out", {n: _sharp(seed=i) for i, n in enumerate("ab")})
    with pytest.raises(DeblurInputError, match=r"progress must be None or a function called as progress\(done, "
                                               r"total\), got str"):
        napari_lfdeblur.evaluate(root, outputs=out, lpips=False, progress="x", csv=tmp_path / "e.csv")
    assert not (tmp_path / "e.csv").exists()
