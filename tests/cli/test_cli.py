"""The ``lfdeblur`` command line, run in-process through its ``main``."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

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
    summary = load_model(run2 / "last.pt", device="cpu").record.training
    assert "exposure matched" in summary["data"]


def test_mixed_precision_option(tmp_path, capsys, monkeypatch):
    import torch

    from napari_lfdeblur import load_model
    from napari_lfdeblur.network import precision as devices

    torch.set_num_threads(1)
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    common = ["--base", "4", "--steps", "1", "--batch", "1", "--patch", "32", "--device", "cpu"]
    assert main(["train", "synthetic", "-o", str(tmp_path / "bf16"), "--amp", "bfloat16", *common]) == 0
    assert "on cpu (bfloat16 mixed precision)" in capsys.readouterr().out
    assert load_model(tmp_path / "bf16" / "last.pt").record.training["amp"] == "bfloat16"
    assert main(["train", "synthetic", "-o", str(tmp_path / "fp32"), "--amp", "off", *common]) == 0
    assert "mixed precision" not in capsys.readouterr().out
    assert load_model(tmp_path / "fp32" / "last.pt").record.training["amp"] == "off"
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
    assert "textured with 3 of your images" in load_model(run / "last.pt", device="cpu").record.training["data"]
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
    assert load_model(run / "last.pt", device="cpu").record.training["steps"] == 3
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


# ---------------------------------------------------------------- bad input: one line and exit 2
def _tiny_lightfield(tmp_path):
    arr = np.random.default_rng(0).random((3, 3, 24, 24, 3)).astype(np.float32)
    np.save(tmp_path / "lf.npy", arr)
    return tmp_path / "lf.npy"


@pytest.mark.parametrize("argv, flag", [
    (["train", "synthetic", "-o", "{tmp}/run", "--threads", "-4"], "--threads"),
    (["pairs", "{lf}", "-o", "{tmp}/p", "--apertures", "abc"], "--apertures"),
    (["pairs", "{lf}", "-o", "{tmp}/p", "--focus", "0"], "--focus"),
    (["info", "{lf}", "--views", "abc"], "--views"),
    (["eval", "{tmp}", "--outputs", "{tmp}", "--limit", "0"], "--limit"),
])
def test_arguments_of_the_wrong_kind_are_refused_by_the_parser(tmp_path, capsys, argv, flag):
    lf = _tiny_lightfield(tmp_path)
    with pytest.raises(SystemExit) as e:
        main([a.format(tmp=tmp_path, lf=lf) for a in argv])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument {flag}:" in err and "Traceback" not in err


def _one_line(err: str, command: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith(f"lfdeblur {command}: error:") and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["refocus", "{lf}", "-d", "0.5", "-o", "{tmp}/file.txt/rf.png"],
    ["pairs", "{lf}", "-o", "{tmp}/file.txt/pairs", "--focus", "2"],
    ["train", "synthetic", "-o", "{tmp}/file.txt/run", "--base", "4", "--steps", "1"],
])
def test_writing_where_a_folder_cannot_be_is_one_line_and_exit_2(tmp_path, capsys, argv):
    lf = _tiny_lightfield(tmp_path)
    (tmp_path / "file.txt").write_text("a file, where the command needs a folder")
    assert main([a.format(tmp=tmp_path, lf=lf) for a in argv]) == 2
    err = capsys.readouterr().err
    assert _one_line(err, argv[0]) and "cannot write" in err and "file.txt" in err


def test_a_full_disk_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    import errno

    from PIL import Image

    lf = _tiny_lightfield(tmp_path)

    def full(self, fp, *a, **k):  # the PNG encoder writing to a full disk
        raise OSError(errno.ENOSPC, "No space left on device", str(getattr(fp, "name", fp)))

    monkeypatch.setattr(Image.Image, "save", full)
    assert main(["refocus", str(lf), "-d", "0.5", "-o", str(tmp_path / "rf.png")]) == 2
    err = capsys.readouterr().err
    assert _one_line(err, "refocus") and "No space left on device" in err and "free some space" in err
    assert list(tmp_path.glob("*rf*")) == []  # no half-written file


def test_any_other_os_error_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    import errno

    from napari_lfdeblur.cli import lightfields as cli

    def denied(args):
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "x"))

    monkeypatch.setattr(cli, "cmd_info", denied)
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert _one_line(err, "info") and "Permission denied" in err


def test_errors_name_the_command_line_flags_not_python_arguments(tmp_path, capsys):
    import imageio.v3 as iio

    for name in ("cat", "dog", "emu", "fox"):
        iio.imwrite(tmp_path / f"{name}.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--pattern 'name_{row}_{col}.png'" in err and "pattern=" not in err and "format=" not in err
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "resume.pt").write_bytes(b"")  # a run is there: continuing it needs --resume
    assert main(["train", "synthetic", "-o", str(tmp_path / "run"), "--base", "4", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "continue it with --resume" in err and "resume=" not in err
    from napari_lfdeblur.cli.messages import cli_words as _cli_words

    assert _cli_words("train", "cannot write /data/out=1/x; give out=FOLDER") == \
        "cannot write /data/out=1/x; give -o FOLDER"  # paths are left alone
    assert _cli_words("pairs", "use format='tiff16'.") == "use --image-format tiff16."


def test_pairs_with_a_million_focus_planes_is_refused_at_once(tmp_path, capsys):
    import time

    t0 = time.perf_counter()
    assert main(["pairs", str(_tiny_lightfield(tmp_path)), "-o", str(tmp_path / "p"), "--focus", "1000000"]) == 2
    err = capsys.readouterr().err
    assert _one_line(err, "pairs") and "--focus 1000000 planes is too many" in err
    assert time.perf_counter() - t0 < 10


def test_refocus_far_beyond_the_image_is_refused(tmp_path, capsys):
    assert main(["refocus", str(_tiny_lightfield(tmp_path)), "-d", "1e9", "-o", str(tmp_path / "rf.png")]) == 2
    assert "beyond its 24x24-pixel views" in capsys.readouterr().err
    assert not (tmp_path / "rf.png").exists()


def test_resume_without_a_checkpoint_says_it_starts_afresh(tmp_path, capsys):
    import torch

    torch.set_num_threads(1)
    assert main(["train", "synthetic", "-o", str(tmp_path / "run"), "--resume", "--base", "4", "--steps", "1",
                 "--batch", "1", "--patch", "32", "--device", "cpu"]) == 0
    said = capsys.readouterr()
    assert "holds no checkpoint to resume from" in said.out and "starting from step 1" in said.out
    assert "RuntimeWarning" not in said.err


# ---------------------------------------------------------------- progress on a terminal
def _on_a_terminal(argv: list[str]) -> str:
    """Run ``lfdeblur ARGV`` in a new pseudo-terminal (0 columns wide, as some containers' and CI runners' are);
    returns everything it wrote."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "napari_lfdeblur.cli", *argv], stdin=slave, stdout=slave,
                            stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=600) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    return b"".join(chunks).decode(errors="replace")


def test_eval_and_train_show_progress_on_a_terminal(tmp_path):
    import imageio.v3 as iio

    rng = np.random.default_rng(0)
    for sub in ("blur", "sharp"):
        (tmp_path / "pairs" / sub).mkdir(parents=True)
    for name in ("a", "b"):
        img = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
        iio.imwrite(tmp_path / "pairs" / "blur" / f"{name}.png", img)
        iio.imwrite(tmp_path / "pairs" / "sharp" / f"{name}.png", img)
    text = _on_a_terminal(["eval", str(tmp_path / "pairs"), "--outputs", str(tmp_path / "pairs" / "sharp"),
                           "--lpips", "off"])
    assert "eval: 0img" in text  # the bar (cleared when done), between the command and its table
    text = _on_a_terminal(["train", str(tmp_path / "pairs"), "-o", str(tmp_path / "run"), "--base", "4",
                           "--steps", "3", "--batch", "1", "--patch", "32", "--device", "cpu", "--threads", "1"])
    assert "3/3" in text and "loss=" in text


def test_a_project_error_is_one_line_when_sigterm_already_has_a_handler(tmp_path, capsys):
    """An error raised inside the command, with SIGTERM handled by someone else (a test runner, an app), was
    caught by the SIGTERM guard's own except clause: 'generator didn't stop after throw()' instead of exit 2."""
    import signal

    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        assert main(["info", str(tmp_path / "missing")]) == 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert "error" in capsys.readouterr().err


# ---------------------------------------------------------------- training options out of range
@pytest.mark.parametrize("flags, said", [
    (["--lr", "5"], "lr must be a positive number, at most 1, or None (the phase's default), got 5.0"),
    (["--lr", "nan"], "lr must be"),
    (["--seed", "-1"], "seed must be a whole number from 0 to 4294967295, got -1"),
    (["--device", "cdua"], "device must be 'auto', 'gpu', 'cpu'"),
    (["--batch", "5000"], "batch must be a positive integer, at most 1024"),
    (["--patch", "1048576"], "patch must be a multiple of 8 from 16 to 2048"),  # 3 TiB of pairs
    (["--patch", "2048", "--batch", "32"], "got --batch 32, --patch 2048"),  # one step's pairs: 128 Mpx
])
def test_a_training_option_out_of_range_is_one_line_and_exit_2(tmp_path, capsys, flags, said):
    # the data does not exist: the option is refused first, before anything is read or written
    assert main(["train", str(tmp_path / "nothing"), "-o", str(tmp_path / "run"), *flags]) == 2
    err = capsys.readouterr().err
    assert _one_line(err, "train") and said in err, err
    assert "leave" in err or "lower" in err  # what to do
    assert not (tmp_path / "run").exists()


def test_the_lfdeblur_process_refuses_a_training_option_out_of_range(tmp_path):
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-m", "napari_lfdeblur.cli", "finetune", str(tmp_path / "nothing"), "-o",
                        str(tmp_path / "run"), "--model", str(tmp_path / "m.pt"), "--seed", "-1"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stdout == ""
    assert _one_line(p.stderr, "finetune") and "seed must be" in p.stderr and "got -1;" in p.stderr, p.stderr


# ---------------------------------------------------------------- progress in a log; batches past a bad entry
def _lfdeblur(argv: list[str], **env) -> subprocess.CompletedProcess:
    """``lfdeblur ARGV`` in a process of its own, its stdout and stderr pipes (as in a batch job's log)."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "napari_lfdeblur.cli", *argv], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1", **env})


def test_train_writes_progress_lines_where_stderr_is_a_pipe(tmp_path):
    """No bar is drawn in a log: the first step, then a line per interval (an hour here) and the last step."""
    p = _lfdeblur(["train", "synthetic", "-o", str(tmp_path / "run"), "--base", "4", "--steps", "3", "--batch", "1",
                   "--patch", "32", "--device", "cpu", "--threads", "1"], LFDEBLUR_LOG_INTERVAL_S="3600")
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("train: step")]
    assert [ln.split()[2] for ln in lines] == ["1/3", "3/3"], p.stderr
    assert "loss 0." in lines[0] and "ETA" in lines[0]
    assert "train finished at step 3/3" in p.stdout


def test_train_refuses_a_log_interval_it_cannot_use_before_reading_anything(tmp_path):
    p = _lfdeblur(["train", "synthetic", "-o", str(tmp_path / "run"), "--steps", "1"], LFDEBLUR_LOG_INTERVAL_S="soon")
    assert p.returncode == 2 and _one_line(p.stderr, "train"), p.stderr
    assert "$LFDEBLUR_LOG_INTERVAL_S is 'soon'" in p.stderr and not (tmp_path / "run").exists()


def test_pairs_of_several_light_fields_go_on_past_a_bad_one_and_list_it(lightfields_and_a_bad_entry, tmp_path):
    from napari_lfdeblur import read_manifest

    folder, out = lightfields_and_a_bad_entry, tmp_path / "pairs"
    p = _lfdeblur(["pairs", str(folder), "--each", "-o", str(out), "--focus", "2", "--apertures", "1"])
    assert p.returncode == 0, p.stderr[-3000:]
    assert {r["scene"] for r in read_manifest(out)} == {"a_scene", "c_scene"}  # the one after it too
    assert "skipped 1 of 3 light fields" in p.stderr and "b_raw_lenslet: No light field found" in p.stderr, p.stderr
    assert "pattern=" not in p.stderr and "--pattern" in p.stderr  # the command line's words
    assert "from 2 of 3 light field(s)" in p.stdout and "1 skipped" in p.stdout, p.stdout

    # nothing written at all: exit 2, the skipped entries still listed
    p = _lfdeblur(["pairs", str(folder / "b_raw_lenslet"), str(folder / "b_raw_lenslet"), "-o",
                   str(tmp_path / "none"), "--focus", "2"])
    assert p.returncode == 2 and "skipped 2 of 2 light fields" in p.stderr, p.stderr
    assert p.stderr.rstrip().splitlines()[-1].startswith("lfdeblur pairs: error: no pairs were written")


@pytest.mark.parametrize("content, said", [
    (b"garbage", "it is not a PyTorch file at all"),
    (b"PK\x03\x04" + b"\0" * 60, "it is truncated or damaged, or was not written by napari-lfdeblur"),
])
def test_a_damaged_resume_file_is_one_line_and_exit_2(tmp_path, content, said):
    """torch's own multi-line message (with its advice to load with weights_only=False) made 7 lines of stderr."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "resume.pt").write_bytes(content)
    p = _lfdeblur(["train", "synthetic", "-o", str(run), "--resume", "--base", "4", "--steps", "2", "--batch", "1",
                   "--patch", "32", "--device", "cpu", "--threads", "1"])
    assert p.returncode == 2 and _one_line(p.stderr, "train"), p.stderr
    assert f"could not read the resume file {run / 'resume.pt'}: {said}" in p.stderr
    assert "start afresh" in p.stderr and "weights_only" not in p.stderr
