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


def test_train_then_finetune_from_the_command_line(tmp_path, dpdd_pairs, capsys):
    import torch

    from napari_lfdeblur import load_model

    torch.set_num_threads(1)
    run1 = tmp_path / "p1"
    assert main(["train", "synthetic", "-o", str(run1), "--base", "4", "--steps", "3", "--batch", "1",
                 "--patch", "32", "--val", "0.2", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "train finished at step 3/3" in out
    assert load_model(run1 / "last.pt", device="cpu").config == {
        "arch": "DRBNet", "base": 4, "res_blocks": 2, "input_detail": True}
    run2 = tmp_path / "p2"
    assert main(["finetune", str(dpdd_pairs), "-o", str(run2), "--model", str(run1 / "last.pt"), "--loss", "shift_l1",
                 "--steps", "2", "--batch", "1", "--patch", "32", "--val", "0.1", "--device", "cpu",
                 "--match-exposure"]) == 0
    assert "finetune finished at step 2/2" in capsys.readouterr().out
    assert (run2 / "last.pt").exists()
    summary = load_model(run2 / "last.pt", device="cpu").training_summary
    assert "exposure matched" in summary["data"]


def test_mixed_precision_option(tmp_path, capsys, monkeypatch):
    import torch

    from napari_lfdeblur import load_model
    from napari_lfdeblur.nn import devices

    torch.set_num_threads(1)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    common = ["--base", "4", "--steps", "1", "--batch", "1", "--patch", "32", "--device", "cpu"]
    assert main(["train", "synthetic", "-o", str(tmp_path / "bf16"), "--amp", "bfloat16", *common]) == 0
    assert "on cpu (bfloat16 mixed precision)" in capsys.readouterr().out
    assert load_model(tmp_path / "bf16" / "last.pt").training_summary["amp"] == "bfloat16"
    assert main(["train", "synthetic", "-o", str(tmp_path / "fp32"), "--amp", "off", *common]) == 0
    assert "mixed precision" not in capsys.readouterr().out
    assert load_model(tmp_path / "fp32" / "last.pt").training_summary["amp"] == "off"
    # float16 needs CUDA: a clear error, exit status 2
    assert main(["train", "synthetic", "-o", str(tmp_path / "fp16"), "--amp", "float16", *common]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err


def test_workers_option_prepares_the_same_pairs_in_other_processes(tmp_path, capsys):
    import torch

    from napari_lfdeblur import load_model

    torch.set_num_threads(1)
    common = ["--base", "4", "--steps", "2", "--batch", "2", "--patch", "32", "--device", "cpu", "--amp", "off"]
    assert main(["train", "synthetic", "-o", str(tmp_path / "w0"), *common]) == 0
    assert main(["train", "synthetic", "-o", str(tmp_path / "w2"), "--workers", "2", *common]) == 0
    here, workers = (load_model(tmp_path / r / "last.pt", device="cpu").state_dict() for r in ("w0", "w2"))
    for k in here:
        torch.testing.assert_close(workers[k], here[k], rtol=0, atol=0)
    capsys.readouterr()
    assert main(["train", "synthetic", "-o", str(tmp_path / "bad"), "--workers", "-1", *common]) == 2
    assert "num_workers must be 0" in capsys.readouterr().err


def test_train_on_procedural_light_fields_textured_with_your_photos(tmp_path, capsys):
    import numpy as np
    import torch
    from PIL import Image

    from napari_lfdeblur import load_model

    torch.set_num_threads(1)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)).save(photos / f"cell{k}.png")
    Image.fromarray(rng.integers(0, 256, (120, 150, 3), dtype=np.uint8)).save(photos / "cell2.BMP")
    # what a folder copied from a Mac or annotated by hand also holds: none of it is a photo
    (photos / "notes.txt").write_text("not an image")
    (photos / "._cell0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (photos / "crops.png").mkdir()
    run = tmp_path / "run"
    assert main(["train", "synthetic", "--photos", str(photos), "-o", str(run), "--base", "4", "--steps", "2",
                 "--batch", "1", "--patch", "32", "--device", "cpu"]) == 0
    assert "textured with 3 of your images" in capsys.readouterr().out
    assert "textured with 3 of your images" in load_model(run / "last.pt", device="cpu").training_summary["data"]
    # --photos without procedural data, or a folder without images: a clear error, exit code 2
    assert main(["train", str(photos), "--photos", str(photos), "-o", str(tmp_path / "r2"), "--steps", "1"]) == 2
    assert "add 'synthetic'" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["train", "synthetic", "--photos", str(tmp_path / "empty"), "-o", str(tmp_path / "r3")]) == 2
    assert "no PNG, JPEG, TIFF, BMP or WebP images" in capsys.readouterr().err


def test_ctrl_c_keeps_the_last_step_and_resume_continues(tmp_path, capsys, monkeypatch):
    import torch

    from napari_lfdeblur import load_model
    from napari_lfdeblur.training.trainer import Trainer

    torch.set_num_threads(1)
    real_step, calls = Trainer._train_step, []

    def interrupted_at_step_4(self, *a, **k):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a step
        return real_step(self, *a, **k)

    monkeypatch.setattr(Trainer, "_train_step", interrupted_at_step_4)
    run = tmp_path / "run"
    args = ["train", "synthetic", "-o", str(run), "--base", "4", "--steps", "6", "--batch", "1", "--patch", "32",
            "--device", "cpu"]
    assert main(args) == 130
    said = capsys.readouterr()
    assert "stopped after step 3" in said.out and "--resume" in said.out and "interrupted" in said.err
    assert load_model(run / "last.pt", device="cpu").training_summary["steps"] == 3
    monkeypatch.setattr(Trainer, "_train_step", real_step)
    assert main([*args, "--resume"]) == 0
    assert "train finished at step 6/6" in capsys.readouterr().out


def test_paper_arch_trains_the_papers_exact_network(tmp_path, capsys):
    import torch

    from napari_lfdeblur import load_model

    torch.set_num_threads(1)
    assert main(["train", "synthetic", "-o", str(tmp_path / "run"), "--base", "4", "--paper-arch", "--steps", "1",
                 "--batch", "1", "--patch", "32", "--device", "cpu"]) == 0
    config = load_model(tmp_path / "run" / "last.pt", device="cpu").config
    assert config == {"arch": "DRBNet", "base": 4, "res_blocks": 2}
    assert main(["train", "synthetic", "-o", str(tmp_path / "run2"), "--paper-arch", "--model",
                 str(tmp_path / "run" / "last.pt"), "--steps", "1"]) == 2
    assert "give one of the two" in capsys.readouterr().err
