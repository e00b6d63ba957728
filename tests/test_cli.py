"""The ``lfdeblur`` command line, run in-process through its ``main``."""

from __future__ import annotations

import json

import numpy as np

from napari_lfdeblur.cli import main


def test_info_describes_hci_folder(hci_antinous, capsys):
    assert main(["info", str(hci_antinous)]) == 0
    out = capsys.readouterr().out
    assert "9 x 9" in out and "81 of 81" in out and "512 x 512" in out
    assert "-3.131 .. 2.689" in out


def test_info_json_and_partial_grid(tmp_path, capsys):
    arr = np.random.default_rng(0).random((3, 3, 16, 20, 3)).astype(np.float32)
    np.save(tmp_path / "lf.npy", arr)
    assert main(["info", str(tmp_path / "lf.npy"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["grid (V x U)"] == "3 x 3" and info["view size (Y x X)"] == "16 x 20"


def test_info_bad_path_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lfdeblur info: error:") and "Traceback" not in err


def test_demo_writes_figure_and_summary(tmp_path, capsys):
    report_dir = tmp_path / "demo"
    assert main(["demo", "--out", str(report_dir)]) == 0
    assert (report_dir / "demo_lightfield.png").stat().st_size > 10_000
    summary = json.loads((report_dir / "summary.json").read_text())
    assert summary["lightfield"]["grid (V x U)"] == "10 x 10"
    import imageio.v3 as iio

    near = iio.imread(report_dir / "plants_refocus_-1.0.png").astype(float)
    far = iio.imread(report_dir / "plants_refocus_+0.8.png").astype(float)
    centre = iio.imread(report_dir / "plants_centre.png").astype(float)
    # the flowers' plane (-1 px/view) is much closer to the all-in-focus view than a far plane
    assert np.abs(near - centre).mean() < 0.6 * np.abs(far - centre).mean()


def test_refocus_writes_one_image_per_plane(hci_antinous, tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "rf.png"
    assert main(["refocus", str(hci_antinous), "-d", "-1", "1", "-a", "0.5", "-o", str(out)]) == 0
    a = iio.imread(tmp_path / "rf_d-1.00.png")
    b = iio.imread(tmp_path / "rf_d+1.00.png")
    assert a.shape == b.shape == (512, 512, 3) and a.dtype == np.uint8
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 1  # different focus planes


def test_pairs_from_lightfield_folder(lytro_checkerboard, tmp_path):
    out = tmp_path / "pairs"
    assert main(["pairs", str(lytro_checkerboard), "-o", str(out), "--focus", "3", "--apertures", "0.5,1"]) == 0
    from napari_lfdeblur import read_manifest

    records = read_manifest(out)
    assert 1 <= len(records) <= 6
    assert len(list((out / "blur").glob("*.png"))) == len(records)
    # running again resumes: nothing new is written
    assert main(["pairs", str(lytro_checkerboard), "-o", str(out), "--focus", "3", "--apertures", "0.5,1"]) == 0
    assert len(read_manifest(out)) == len(records)


def test_demo_deblurs_with_the_default_model(tmp_path, monkeypatch, capsys):
    import torch

    from napari_lfdeblur import DRBNet, save_model
    from napari_lfdeblur.nn import checkpoint

    torch.manual_seed(0)
    weights = save_model(DRBNet(base=4), tmp_path / "default.pt")
    monkeypatch.setattr(checkpoint, "default_model_path", lambda: weights)
    assert main(["demo", "--out", str(tmp_path / "demo")]) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    scores = summary["deblur"]
    assert set(scores) == {"psnr_before", "psnr_after", "ssim_before", "ssim_after"}
    assert (tmp_path / "demo" / "plants_deblurred.png").exists()
    assert "Deblurred a refocused image: PSNR" in capsys.readouterr().out


def test_train_then_finetune_from_the_command_line(tmp_path, dpdd_pairs, capsys):
    import torch

    from napari_lfdeblur import load_model

    torch.set_num_threads(1)
    run1 = tmp_path / "p1"
    assert main(["train", "synthetic", "-o", str(run1), "--base", "4", "--steps", "3", "--batch", "1",
                 "--patch", "32", "--val", "0.2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "train finished at step 3/3" in out
    assert load_model(run1 / "last.pt", device="cpu").config["base"] == 4
    run2 = tmp_path / "p2"
    assert main(["finetune", str(dpdd_pairs), "-o", str(run2), "--model", str(run1 / "last.pt"), "--loss", "shift_l1",
                 "--steps", "2", "--batch", "1", "--patch", "32", "--val", "0.1", "--device", "cpu"]) == 0
    assert "finetune finished at step 2/2" in capsys.readouterr().out
    assert (run2 / "last.pt").exists()
