"""``lfdeblur deblur``: files, folders, globs, stacks, big TIFF -> OME-Zarr, interrupts, bad input, a dask cluster.

Everything runs a tiny random DRBNet (base 4) saved as a checkpoint (the
mechanics, fast; the default model's quality is not what these test).  Images
are a few hundred pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch

from napari_lfdeblur import io as lfio
from napari_lfdeblur.cli import main
from napari_lfdeblur.inference import runtime
from napari_lfdeblur.inference.deblur import deblur
from napari_lfdeblur.network.checkpoint import save_model
from napari_lfdeblur.network.drbnet import DRBNet
from napari_lfdeblur.network.precision import cpu_has_native_bf16

iio = pytest.importorskip("imageio.v3")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    return str(save_model(DRBNet(base=4).eval(), tmp_path_factory.mktemp("model") / "tiny.pt"))


def _rgb(h, w, seed=0, dtype=np.uint8):
    """A smooth-ish colour image (noise on gradients), so deblurring has structure to work on."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 9.0) * np.cos(yy / 7.0)], axis=-1)
    img = np.clip(0.8 * base + 0.2 * rng.random((h, w, 3)), 0, 1)
    if dtype == np.uint8:
        return (img * 255).round().astype(np.uint8)
    return (1000 + img * 20000).round().astype(dtype)


def _leftovers(folder):
    """Temporary files or folders the writers left behind (names start with '.')."""
    return sorted(p.name for p in folder.rglob(".*") if ".part" in p.name or ".old" in p.name)


def _one_error_line(err: str) -> bool:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    return len(lines) == 1 and lines[0].startswith("lfdeblur deblur: error:") and "Traceback" not in err


def test_png_in_png_out_equals_the_api(tmp_path, ckpt, capsys):
    img = _rgb(160, 224)
    iio.imwrite(tmp_path / "a.png", img)
    out = tmp_path / "res" / "sharp.png"
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(out), "--model", ckpt, "--device", "cpu"]) == 0
    got = iio.imread(out)
    assert got.shape == img.shape and got.dtype == np.uint8
    np.testing.assert_array_equal(got, deblur(img, model=ckpt, device="cpu"))
    line = capsys.readouterr().out
    # the precision it ran in is said: bfloat16 by default on a CPU that has it natively
    assert "in memory" in line and f"network in {'bfloat16' if cpu_has_native_bf16() else 'float32'}" in line
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(out), "--model", ckpt, "--device", "cpu",
                 "--dtype", "float32"]) == 0
    assert "network in float32" in capsys.readouterr().out
    assert _leftovers(tmp_path) == []


def test_folder_of_two_images_and_a_glob(tmp_path, ckpt):
    src = tmp_path / "in"
    src.mkdir()
    iio.imwrite(src / "a.png", _rgb(96, 128, 1))
    grey16 = _rgb(80, 120, 2, np.uint16)[..., 0]
    tifffile.imwrite(src / "b.tif", grey16)
    (src / "notes.txt").write_text("not an image")  # ignored in a folder
    assert main(["deblur", str(src), "-o", str(tmp_path / "out"), "--model", ckpt, "--device", "cpu"]) == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["a_deblurred.png", "b_deblurred.tif"]
    b = tifffile.imread(tmp_path / "out" / "b_deblurred.tif")
    assert b.shape == grey16.shape and b.dtype == np.uint16
    # a quoted glob is expanded by the command itself; --format changes the output type
    assert main(["deblur", str(src / "*.png"), "-o", str(tmp_path / "g"), "--format", "tif",
                 "--model", ckpt, "--device", "cpu"]) == 0
    assert [p.name for p in (tmp_path / "g").iterdir()] == ["a_deblurred.tif"]
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "g" / "a_deblurred.tif"),
                                  iio.imread(tmp_path / "out" / "a_deblurred.png"))


def test_tiff_stack_comes_back_as_a_stack(tmp_path, ckpt):
    stack = np.stack([_rgb(72, 96, s, np.uint16)[..., 0] for s in range(3)])  # (Z, Y, X) greyscale
    tifffile.imwrite(tmp_path / "stack.tif", stack, photometric="minisblack")
    assert main(["deblur", str(tmp_path / "stack.tif"), "-o", str(tmp_path / "o"), "--model", ckpt,
                 "--device", "cpu"]) == 0
    got = tifffile.imread(tmp_path / "o" / "stack_deblurred.tif")
    assert got.shape == stack.shape and got.dtype == np.uint16
    np.testing.assert_array_equal(got, deblur(stack, model=ckpt, device="cpu", rgb=False))


def test_rgb_stack_chunk_by_chunk_to_tiff(tmp_path, ckpt):
    stack = np.stack([_rgb(200, 264, s) for s in range(2)])  # (Z, Y, X, 3)
    tifffile.imwrite(tmp_path / "rgb.tif", stack, photometric="rgb")
    # float32: chunks and whole-image tiles then differ only by summation order
    assert main(["deblur", str(tmp_path / "rgb.tif"), "-o", str(tmp_path / "o"), "--lazy", "--chunk", "128",
                 "--model", ckpt, "--device", "cpu", "--dtype", "float32"]) == 0
    got = tifffile.imread(tmp_path / "o" / "rgb_deblurred.tif")
    assert got.shape == stack.shape and got.dtype == np.uint8
    ref = deblur(stack, model=ckpt, device="cpu", dtype="float32")
    assert np.abs(got.astype(int) - ref).max() <= 2


def test_big_tiled_tiff_to_ome_zarr(tmp_path, ckpt, monkeypatch, capsys):
    zarr = pytest.importorskip("zarr")
    img = _rgb(1200, 1000, 3)
    tifffile.imwrite(tmp_path / "big.tif", img, tile=(256, 256), photometric="rgb")
    monkeypatch.setattr(lfio.read, "LAZY_BYTES", 2**20)  # "big": read lazily through tifffile's zarr store
    out = tmp_path / "big.ome.zarr"
    assert main(["deblur", str(tmp_path / "big.tif"), "-o", str(out), "--model", ckpt, "--device", "cpu",
                 "--dtype", "float32"]) == 0
    assert "chunk by chunk" in capsys.readouterr().out
    root = zarr.open_group(str(out), mode="r")
    ms = root.attrs["multiscales"][0]
    assert [a["name"] for a in ms["axes"]] == ["c", "y", "x"] and ms["datasets"][0]["path"] == "0"
    got = np.moveaxis(np.asarray(root["0"][...]), 0, -1)
    assert got.shape == img.shape and got.dtype == np.uint8
    ref = deblur(img, model=ckpt, device="cpu", dtype="float32")
    assert np.abs(got.astype(int) - ref).max() <= 2
    # and it reads back as the same image, channels last
    back, info = lfio.open_image_info(out)
    assert info.lazy and info.rgb and back.shape == img.shape
    np.testing.assert_array_equal(np.asarray(back), got)
    assert _leftovers(tmp_path) == []


def _interrupt_after(monkeypatch, n: int):
    real = runtime.run_torch
    calls = []

    def network(tiles, how):
        calls.append(len(tiles))
        if len(calls) > n:
            raise KeyboardInterrupt
        return real(tiles, how)

    monkeypatch.setattr(runtime, "run_torch", network)
    return calls


@pytest.mark.parametrize("fmt, lazy", [("png", False), ("tif", True), ("ome.zarr", True)])
def test_interrupt_leaves_no_output(tmp_path, ckpt, monkeypatch, capsys, fmt, lazy):
    iio.imwrite(tmp_path / "a.png", _rgb(300, 330))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    calls = _interrupt_after(monkeypatch, 3)
    args = ["deblur", str(tmp_path / "a.png"), "-o", str(out_dir), "--format", fmt, "--tile", "192",
            "--model", ckpt, "--device", "cpu"]
    if lazy:
        args += ["--lazy", "--chunk", "128"]
    assert main(args) == 130
    assert len(calls) > 3  # it was interrupted in the middle
    assert "interrupted" in capsys.readouterr().err
    assert list(out_dir.iterdir()) == []  # neither the output nor a temporary
    _settle(calls)


def _settle(calls, quiet: float = 0.5, limit: float = 20.0):
    """Wait until no tile has been computed for ``quiet`` s: dask threads already running tiles when
    the interrupt came finish them, and in this one test process they would reach the next test's
    patched network (a CLI process exits and takes them with it)."""
    import time

    t0, n, last = time.perf_counter(), len(calls), time.perf_counter()
    while time.perf_counter() - t0 < limit:
        time.sleep(0.05)
        if len(calls) != n:
            n, last = len(calls), time.perf_counter()
        elif time.perf_counter() - last > quiet:
            return


def test_bad_inputs_exit_2_with_one_line(tmp_path, ckpt, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "fake.png").write_text("not a png")
    iio.imwrite(tmp_path / "dot.png", np.zeros((1, 1, 3), np.uint8))
    for bad in ("notes.txt", "fake.png", "dot.png", "missing.png"):
        assert main(["deblur", str(tmp_path / bad), "-o", str(tmp_path / "o"), "--model", ckpt]) == 2, bad
        assert _one_error_line(capsys.readouterr().err), bad
    # several inputs to one file name, and a checkpoint that does not exist
    iio.imwrite(tmp_path / "ok.png", _rgb(32, 32))
    assert main(["deblur", str(tmp_path / "ok.png"), str(tmp_path / "dot.png"), "-o", str(tmp_path / "x.png"),
                 "--model", ckpt]) == 2
    assert _one_error_line(capsys.readouterr().err)
    assert main(["deblur", str(tmp_path / "ok.png"), "-o", str(tmp_path / "o"), "--model", "nope.pt"]) == 2
    assert _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_a_bad_image_among_good_ones_is_skipped(tmp_path, ckpt, capsys):
    iio.imwrite(tmp_path / "ok.png", _rgb(40, 48))
    iio.imwrite(tmp_path / "dot.png", np.zeros((1, 1, 3), np.uint8))
    assert main(["deblur", str(tmp_path / "ok.png"), str(tmp_path / "dot.png"), "-o", str(tmp_path / "o"),
                 "--model", ckpt, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "dot.png" in err and "1 of 2" in err
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["ok_deblurred.png"]


def test_stack_to_png_is_refused_before_any_work(tmp_path, ckpt, capsys, monkeypatch):
    tifffile.imwrite(tmp_path / "s.tif", np.zeros((2, 32, 32), np.uint16))
    calls = _interrupt_after(monkeypatch, 10**9)
    assert main(["deblur", str(tmp_path / "s.tif"), "-o", str(tmp_path / "s.png"), "--model", ckpt]) == 2
    assert "stack" in capsys.readouterr().err and calls == []


def test_scheduler_runs_on_a_dask_cluster(tmp_path, ckpt, capsys):
    distributed = pytest.importorskip("distributed")
    zarr = pytest.importorskip("zarr")
    iio.imwrite(tmp_path / "a.png", _rgb(256, 320, 5))
    common = ["--model", ckpt, "--device", "cpu", "--chunk", "128", "--format", "ome.zarr"]
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "local"), "--lazy", *common]) == 0
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=40) as cluster:
        assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "remote"),
                     "--scheduler", cluster.scheduler_address, *common]) == 0
    assert "on the cluster" in capsys.readouterr().out
    local = zarr.open_group(str(tmp_path / "local" / "a_deblurred.ome.zarr"), mode="r")["0"][...]
    remote = zarr.open_group(str(tmp_path / "remote" / "a_deblurred.ome.zarr"), mode="r")["0"][...]
    assert remote.shape == local.shape == (3, 256, 320)
    assert np.abs(remote.astype(int) - local).max() <= 1  # workers may use other thread counts


def test_scheduler_without_distributed_says_how_to_install(tmp_path, ckpt, capsys, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_distributed(name, *a, **k):
        if name == "distributed" or name.startswith("distributed."):
            raise ImportError("No module named 'distributed'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_distributed)
    iio.imwrite(tmp_path / "a.png", _rgb(32, 32))
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "--scheduler", "tcp://x:1",
                 "--model", ckpt]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "pip install distributed" in err


def test_io_round_trips_without_a_network(tmp_path):
    """open_image / save_image_streaming alone: OME axis order, NGFF 0.5 groups, zarr arrays written lazily."""
    zarr = pytest.importorskip("zarr")
    import dask.array as da

    stack = np.stack([_rgb(150, 130, s) for s in range(2)])  # (Z, Y, X, C)
    lfio.save_image_streaming(da.from_array(stack, chunks=(1, 64, 64, 3)), tmp_path / "s.ome.zarr")
    root = zarr.open_group(str(tmp_path / "s.ome.zarr"), mode="r")
    assert [a["name"] for a in root.attrs["multiscales"][0]["axes"]] == ["c", "z", "y", "x"]  # NGFF: t, c, z, y, x
    back, info = lfio.open_image_info(tmp_path / "s.ome.zarr")
    assert info.rgb and info.axes == "zyxc"
    np.testing.assert_array_equal(np.asarray(back), stack)

    # an OME-Zarr 0.5 (zarr v3) group: metadata under "ome", channels first on disk
    g = zarr.open_group(str(tmp_path / "v3.ome.zarr"), mode="w", zarr_format=3)
    g.create_array("0", shape=(3, 40, 50), chunks=(3, 32, 32), dtype="uint16")[...] = np.moveaxis(
        _rgb(40, 50, 1, np.uint16), -1, 0)
    g.attrs["ome"] = {"version": "0.5", "multiscales": [{"axes": [{"name": "c", "type": "channel"},
                                                                   {"name": "y", "type": "space"},
                                                                   {"name": "x", "type": "space"}],
                                                          "datasets": [{"path": "0"}]}]}
    back = lfio.open_image(tmp_path / "v3.ome.zarr")
    assert isinstance(back, da.Array) and back.shape == (40, 50, 3)
    np.testing.assert_array_equal(np.asarray(back), _rgb(40, 50, 1, np.uint16))

    # a zarr array (not dask, not numpy) is written chunk by chunk, to TIFF
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=(300, 260, 3), chunks=(128, 128, 3), dtype="uint8")
    z[...] = _rgb(300, 260, 2)
    calls = []
    lfio.save_image_streaming(z, tmp_path / "z.tif", progress=lambda d, t: calls.append((d, t)))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "z.tif"), _rgb(300, 260, 2))
    assert calls and calls[-1][0] == calls[-1][1]
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("lazy", [False, True])
def test_ome_zarr_output_carries_a_pyramid_napari_opens_as_multiscale(tmp_path, lazy):
    """Levels halved in y and x (2x2 means, odd edge dropped) down to one chunk, with NGFF scales."""
    zarr = pytest.importorskip("zarr")
    import dask.array as da

    img = _rgb(301, 250, 5)
    src = da.from_array(img, chunks=(64, 64, 3)) if lazy else img
    out = tmp_path / "p.ome.zarr"
    lfio.save_image_streaming(src, out, chunk=64)
    root = zarr.open_group(str(out), mode="r")
    ds = root.attrs["multiscales"][0]["datasets"]
    assert [d["path"] for d in ds] == ["0", "1", "2", "3"]  # 301 -> 150 -> 75 -> 37 <= 64
    assert [d["coordinateTransformations"][0]["scale"] for d in ds] == [[1.0, s, s] for s in (1.0, 2.0, 4.0, 8.0)]
    assert [root[d["path"]].shape for d in ds] == [(3, 301, 250), (3, 150, 125), (3, 75, 62), (3, 37, 31)]
    level1 = np.moveaxis(np.asarray(root["1"][...]), 0, -1)
    means = img[:300, :250].astype(np.float64).reshape(150, 2, 125, 2, 3).mean(axis=(1, 3))
    assert level1.dtype == np.uint8 and np.abs(level1 - np.round(means)).max() <= 1
    # the one block mean of every pyramid (the viewer's levels too): ties round up, the same on every path
    from napari_lfdeblur.io.levels import block_mean

    np.testing.assert_array_equal(level1, block_mean(img, 2, 0))
    # the full-resolution level reads back unchanged, and napari's own zarr reader sees a multiscale image
    np.testing.assert_array_equal(np.asarray(lfio.open_image(out)), img)
    read_zarr = pytest.importorskip("napari_builtins.io").read_zarr_dataset
    levels, shape = read_zarr(str(out))
    assert isinstance(levels, list) and len(levels) == 4 and tuple(shape) == (3, 301, 250)


# ---------------------------------------------------------------- the rest of the bad-input sweep
def test_two_channel_tiff_is_deblurred_channel_by_channel(tmp_path, ckpt):
    img = (np.random.default_rng(3).random((40, 48, 2)) * 4000).astype(np.uint16)
    tifffile.imwrite(tmp_path / "two.tif", img)  # tifffile calls it QYX: 40 pages of 48 x 2
    assert main(["deblur", str(tmp_path / "two.tif"), "-o", str(tmp_path / "out.tif"), "--model", ckpt,
                 "--device", "cpu"]) == 0
    got = tifffile.imread(tmp_path / "out.tif")
    assert got.shape == img.shape and got.dtype == np.uint16
    for c in range(2):
        np.testing.assert_array_equal(got[..., c], deblur(img[..., c], model=ckpt, device="cpu"))


def test_sixteen_bit_rgb_to_png_is_refused_before_any_work(tmp_path, ckpt, capsys, monkeypatch):
    tifffile.imwrite(tmp_path / "rgb16.tif", _rgb(40, 48, dtype=np.uint16), photometric="rgb")
    calls = _interrupt_after(monkeypatch, 10**9)
    assert main(["deblur", str(tmp_path / "rgb16.tif"), "-o", str(tmp_path / "out.png"), "--model", ckpt]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "16-bit colour PNG" in err and "tif" in err
    assert calls == [] and not (tmp_path / "out.png").exists()


def test_output_with_an_image_suffix_deblur_cannot_write_is_an_error(tmp_path, ckpt, capsys):
    iio.imwrite(tmp_path / "a.png", _rgb(32, 32))
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "out.bmp"), "--model", ckpt]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and ".png, .jpg, .tif or .ome.zarr" in err
    assert not (tmp_path / "out.bmp").exists()  # it used to become a folder out.bmp/


def test_symbolic_link_loops_in_a_folder_are_skipped(tmp_path, ckpt, capsys):
    import os

    src = tmp_path / "in"
    src.mkdir()
    iio.imwrite(src / "good.png", _rgb(32, 40))
    os.symlink("b.png", src / "a.png")  # a.png -> b.png -> a.png
    os.symlink("a.png", src / "b.png")
    os.symlink("nowhere.png", src / "broken.png")
    assert main(["deblur", str(src), "-o", str(tmp_path / "out"), "--model", ckpt, "--device", "cpu"]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good_deblurred.png"]
    assert "skipping 3 symbolic link(s)" in capsys.readouterr().err
    assert main(["deblur", str(src / "a.png"), "-o", str(tmp_path / "o2"), "--model", ckpt]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "symbolic link to nothing" in err


def test_unwritable_output_is_refused_before_any_work(tmp_path, ckpt, capsys, monkeypatch):
    iio.imwrite(tmp_path / "a.png", _rgb(32, 32))
    (tmp_path / "file.txt").write_text("a file where the output folder should be")
    calls = _interrupt_after(monkeypatch, 10**9)
    assert main(["deblur", str(tmp_path / "a.png"), "-o", str(tmp_path / "file.txt" / "out"),
                 "--model", ckpt]) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "cannot write" in err and calls == []


def test_sigterm_leaves_no_half_written_output(tmp_path, ckpt):
    import os
    import signal
    import subprocess
    import sys

    iio.imwrite(tmp_path / "a.png", _rgb(300, 330))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    script = f"""
import os, signal, sys
import torch
torch.set_num_threads(1)
from napari_lfdeblur.cli import main
from napari_lfdeblur.inference import runtime

real, calls = runtime.run_torch, []

def network(tiles, how):  # terminated (kill, a batch system's time limit) in the middle of the work
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGTERM)
    return real(tiles, how)

runtime.run_torch = network
sys.exit(main(["deblur", {str(tmp_path / "a.png")!r}, "-o", {str(out_dir)!r}, "--format", "ome.zarr", "--lazy",
               "--chunk", "128", "--tile", "192", "--model", {ckpt!r}, "--device", "cpu"]))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 143, (r.returncode, r.stderr[-2000:])
    assert r.returncode != -signal.SIGTERM and "lfdeblur deblur: terminated" in r.stderr
    assert list(out_dir.iterdir()) == []  # no hidden .part folder left behind


def test_output_named_ome_zarr_that_is_an_ordinary_folder_is_refused_and_kept(tmp_path, ckpt, capsys, monkeypatch):
    """-o photos.ome.zarr, an existing folder of someone's files: refused before any work, nothing deleted; an
    OME-Zarr image written before is replaced as any output is."""
    iio.imwrite(tmp_path / "a.png", _rgb(64, 64))
    out = tmp_path / "photos.ome.zarr"
    out.mkdir()
    iio.imwrite(out / "holiday.png", _rgb(16, 16))
    (out / "notes.txt").write_text("keep me")
    argv = ["deblur", str(tmp_path / "a.png"), "-o", str(out), "--model", ckpt, "--device", "cpu"]
    with monkeypatch.context() as m:
        m.setattr(runtime, "run_torch", lambda *a: pytest.fail("deblurred before refusing"))
        assert main(argv) == 2
    err = capsys.readouterr().err
    assert _one_error_line(err) and "exists and is not an OME-Zarr image" in err and "choose another name" in err
    assert sorted(p.name for p in out.iterdir()) == ["holiday.png", "notes.txt"]
    assert (out / "notes.txt").read_text() == "keep me" and _leftovers(tmp_path) == []
    image = tmp_path / "image.ome.zarr"
    lfio.save_image(image, np.zeros((8, 8, 3), np.float32))
    assert main(argv[:3] + [str(image)] + argv[4:]) == 0
    assert lfio.open_image(image).shape == (64, 64, 3) and _leftovers(tmp_path) == []


def test_a_scheduler_address_that_is_not_one_is_one_line_and_the_command_ends_at_once(tmp_path, ckpt):
    """The half-made dask client was never closed: the command printed its error, then waited 40 s at exit and
    printed "Exception ignored in Client.__del__" with a traceback."""
    pytest.importorskip("distributed")
    import os
    import subprocess
    import sys
    import time

    iio.imwrite(tmp_path / "a.png", _rgb(32, 32))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "napari_lfdeblur.cli", "deblur", str(tmp_path / "a.png"), "--scheduler",
                        "not a url", "-o", str(tmp_path / "o.png"), "--model", ckpt, "--device", "cpu"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    took = time.perf_counter() - t0
    assert p.returncode == 2 and _one_error_line(p.stderr), p.stderr
    assert "cannot connect to the dask scheduler at not a url" in p.stderr
    assert took < 20, f"{took:.0f} s"
    assert not (tmp_path / "o.png").exists()
