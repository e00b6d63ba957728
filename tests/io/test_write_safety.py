"""Nothing a user sees or saves is wrong: every write leaves the new file or the old one, never a user's folder
deleted, never junk on a full disk, never NaN or 0-255 floats silently written as black or white, and a full disk
is one line, not a traceback (issue #23).

Full disks are simulated: a write failing with ENOSPC in zarr's chunk writer, numpy's short write as tifffile
meets it, a file torch's zip writer cannot finish, and ``/dev/full`` behind the temporary file of an atomic write.
"""

from __future__ import annotations

import errno
import gc
import os
import sys
import tempfile
import threading
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from napari_lfdeblur import io
from napari_lfdeblur.errors import ImageFileError, OutputError
from napari_lfdeblur.io import atomic


def _photos(folder):
    """A folder of someone's photos that happens to be named like an OME-Zarr output."""
    folder.mkdir(parents=True)
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(folder / "holiday.jpg")
    (folder / "notes.txt").write_text("keep me")
    (folder / "sub").mkdir()
    (folder / "sub" / "more.png").write_bytes(b"png bytes")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _listing(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _rgb(h=64, w=64):
    return np.random.default_rng(0).random((h, w, 3)).astype(np.float32)


# ------------------------------------------------------------------ 1. an ordinary folder named X.ome.zarr
@pytest.mark.parametrize("how", ["save_image", "streaming", "streaming_dask"])
def test_saving_over_an_ordinary_folder_named_ome_zarr_is_refused(tmp_path, how):
    out = tmp_path / "X.ome.zarr"
    before = _photos(out)
    img = _rgb()
    with pytest.raises(OutputError, match=r"X\.ome\.zarr exists and is not an OME-Zarr image.*another name.*remove"):
        if how == "save_image":
            io.save_image(out, img)
        elif how == "streaming":
            io.save_image_streaming(img, out)
        else:
            import dask.array as da

            io.save_image_streaming(da.from_array(img, chunks=(32, 32, 3)), out)
    assert _listing(out) == before and (out / "notes.txt").read_text() == "keep me"
    assert _leftovers(tmp_path) == []


def test_check_writable_refuses_the_folder_before_any_work(tmp_path):
    out = tmp_path / "X.ome.zarr"
    _photos(out)
    with pytest.raises(OutputError, match="is not an OME-Zarr image"):
        io.check_writable((64, 64, 3), np.float32, out)
    (tmp_path / "f.zarr").write_text("a file")
    with pytest.raises(OutputError, match="is not an OME-Zarr image"):
        io.save_image(tmp_path / "f.zarr", _rgb())
    assert (tmp_path / "f.zarr").read_text() == "a file"


def test_a_folder_with_zarr_metadata_but_other_files_is_not_replaced(tmp_path):
    """Metadata alone does not make a folder an image: loose files beside it are someone's, and kept."""
    out = tmp_path / "X.ome.zarr"
    io.save_image(out, _rgb())
    (out / "photo.jpg").write_bytes(b"jpeg bytes")
    with pytest.raises(OutputError, match="is not an OME-Zarr image"):
        io.save_image(out, _rgb())
    assert (out / "photo.jpg").read_bytes() == b"jpeg bytes"
    plain = tmp_path / "plain.zarr"  # a zarr array, not an OME-Zarr image: data of another program
    import zarr

    zarr.create_array(str(plain), shape=(4, 4), dtype="f4", zarr_format=2)[...] = 1
    with pytest.raises(OutputError, match="is not an OME-Zarr image"):
        io.save_image(plain, _rgb())
    assert (plain / ".zarray").is_file()


def test_an_ome_zarr_image_or_an_empty_folder_is_replaced(tmp_path):
    out = tmp_path / "X.ome.zarr"
    io.save_image(out, _rgb())
    new = np.zeros((40, 48, 3), np.float32) + 0.25
    io.save_image(out, new)
    np.testing.assert_array_equal(np.asarray(io.open_image(out)), new)
    empty = tmp_path / "empty.ome.zarr"
    empty.mkdir()
    io.save_image(empty, new)
    assert io.image_format(empty) == "ome.zarr"
    assert _leftovers(tmp_path) == []


def test_a_failed_final_rename_puts_the_old_image_back(tmp_path, monkeypatch):
    out = tmp_path / "x.ome.zarr"
    io.save_image(out, np.full((8, 8, 3), 0.5, np.float32))
    before = _listing(out)
    real = os.replace

    def replace(src, dst):
        if str(src).endswith(".part"):  # the new image into place: the disk says no
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(dst))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OutputError, match="x.ome.zarr"):
        io.save_image(out, _rgb())
    monkeypatch.undo()
    assert _listing(out) == before and _leftovers(tmp_path) == []


# ------------------------------------------------------------------ 2. chunk writes still in flight
def _one_chunk_fails(monkeypatch) -> list:
    """zarr's chunk writer: chunk 0/0/0/0 of level 0 fails with a full disk while the other chunks are slow, so
    they are still in flight when the error reaches the caller.  Returns the times of the writes done."""
    import zarr.storage._local as local

    real = local._put
    done: list = []

    def put(path, value, exclusive=False):
        name = str(path).replace(os.sep, "/")
        if "/0/" in name and not name.endswith((".zarray", ".zattrs", ".zgroup")):
            if name.endswith("/0/0/0/0"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            time.sleep(0.2)
        result = real(path, value, exclusive)
        done.append(time.monotonic())
        return result

    monkeypatch.setattr(local, "_put", put)
    return done


@pytest.mark.parametrize("lazy", [False, True])
def test_a_full_disk_during_an_ome_zarr_save_leaves_no_part_folder(tmp_path, monkeypatch, lazy):
    done = _one_chunk_fails(monkeypatch)
    img = _rgb(512, 512)
    if lazy:
        import dask.array as da

        img = da.from_array(img, chunks=(512, 512, 3))  # one block over 4 zarr chunks: written concurrently
    with pytest.raises(OutputError, match="No space left on device.*free some space"):
        io.save_image_streaming(img, tmp_path / "x.ome.zarr", chunk=256)
    returned = time.monotonic()
    assert _leftovers(tmp_path) == []
    time.sleep(0.5)  # a write still in flight would re-create the folder now
    assert _leftovers(tmp_path) == [] and not (tmp_path / "x.ome.zarr").exists()
    assert done and all(t <= returned for t in done)  # no write after the call returned


def test_a_failed_replacement_keeps_the_old_image(tmp_path, monkeypatch):
    out = tmp_path / "x.ome.zarr"
    old = np.full((40, 40, 3), 0.5, np.float32)
    io.save_image(out, old)
    before = _listing(out)
    _one_chunk_fails(monkeypatch)
    with pytest.raises(OutputError, match="No space left"):
        io.save_image(out, _rgb(512, 512))
    assert _listing(out) == before and _leftovers(tmp_path) == []
    np.testing.assert_array_equal(np.asarray(io.open_image(out)), old)


# ------------------------------------------------------------------ 3. NaN, and floats that are not 0..1
def test_nan_is_refused_with_how_many_and_what_to_do(tmp_path):
    img = _rgb()
    img[:2, :5] = np.nan
    img[10, 10, 0] = np.inf
    for name in ("a.png", "a.tif", "a.jpg"):
        with pytest.raises(ImageFileError, match=r"11 of 4096 pixels .*not finite.*np\.nan_to_num"):
            io.save_image(tmp_path / name, img)
    assert list(tmp_path.iterdir()) == []
    io.save_image(tmp_path / "a.ome.zarr", img)  # floats kept as floats: NaN stays NaN, nothing wrong
    assert np.isnan(np.asarray(io.open_image(tmp_path / "a.ome.zarr"))).sum() == 30


def test_floats_on_a_0_255_scale_are_refused_not_written_white(tmp_path):
    img = _rgb() * 255  # e.g. a 0-255 float image deblurred through the API
    with pytest.raises(ImageFileError, match=r"0-255 values.*divide by 255"):
        io.save_image(tmp_path / "a.png", img)
    with pytest.raises(ImageFileError, match=r"0-65535 values.*divide by 65535"):
        io.save_image(tmp_path / "a.tif", _rgb() * 60000)
    with pytest.raises(ImageFileError, match=r"scale them to \[0, 1\]"):
        io.save_image(tmp_path / "a.png", _rgb() * 4 - 2)
    assert list(tmp_path.iterdir()) == []


def test_a_small_overshoot_is_clipped_with_a_warning_naming_the_fraction(tmp_path):
    img = _rgb()
    img[:8] = 1.2  # 8 of 64 rows: 12.5 % of the values
    img[8, :, :] = -0.1  # ... and one row below 0: 1.56 %
    with pytest.warns(UserWarning, match=r"14\.1 % of the values.*outside \[0, 1\].*clipped"):
        io.save_image(tmp_path / "a.png", img)
    back = io.read_image(tmp_path / "a.png")
    assert (back[:8] == 255).all() and (back[8] == 0).all()
    ok = np.clip(_rgb(), 0, 1)
    ok[0, 0] = 1 + 1e-7  # rounding noise: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        io.save_image(tmp_path / "b.png", ok)
        io.save_image(tmp_path / "b.tif", ok)


# ------------------------------------------------------------------ 4. full disk in TIFF and checkpoint writes
@pytest.mark.parametrize("lazy", [False, True])
def test_a_full_disk_during_a_tiff_write_is_one_output_error_and_keeps_the_old_file(tmp_path, monkeypatch, lazy):
    import tifffile

    out = tmp_path / "a.tif"
    out.write_bytes(b"the old file")

    def short_write(self, data, dtype=None):
        self._fh.write(b"\0" * 1912)
        raise OSError("12288 requested and 1912 written")  # what numpy's tofile raises, without an errno

    monkeypatch.setattr(tifffile.FileHandle, "write_array", short_write)
    img = (_rgb(300, 300) * 65535).astype(np.uint16)
    if lazy:
        import dask.array as da

        img = da.from_array(img, chunks=(128, 128, 3))
    with pytest.raises(OutputError, match=r"cannot write .*a\.tif: No space left on device.*free some space") as e:
        io.save_image_streaming(img, out)
    assert e.value.errno == errno.ENOSPC and "\n" not in str(e.value)
    assert out.read_bytes() == b"the old file" and _leftovers(tmp_path) == []


def test_a_full_disk_during_save_model_is_one_output_error_and_keeps_the_old_file(tmp_path, monkeypatch):
    import torch

    from napari_lfdeblur.network.checkpoint import save_model
    from napari_lfdeblur.network.drbnet import DRBNet

    out = tmp_path / "m.pt"
    out.write_bytes(b"the old checkpoint")
    real_save = torch.save

    class FullAfter:  # a file on a disk that fills after 1000 bytes
        def __init__(self, fh):
            self.fh, self.n = fh, 0

        def write(self, b):
            if self.n + len(b) > 1000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.n += len(b)
            return self.fh.write(b)

        def flush(self):
            self.fh.flush()

    monkeypatch.setattr(torch, "save", lambda obj, f, **kw: real_save(obj, FullAfter(f), **kw))
    with pytest.raises(OutputError, match=r"m\.pt: No space left on device.*free some space") as e:
        save_model(DRBNet(base=4), out)
    assert "enforce fail" not in str(e.value) and "\n" not in str(e.value)
    assert out.read_bytes() == b"the old checkpoint" and _leftovers(tmp_path) == []


# ------------------------------------------------------------------ 5. a full disk under the CLI: one line
@pytest.fixture
def full_disk(monkeypatch):
    """Every atomic write's temporary file is /dev/full: each write to it fails with ENOSPC, as on a full disk."""
    if not sys.platform.startswith("linux") or not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    real = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        os.unlink(name)
        os.symlink("/dev/full", name)
        return fd, name

    monkeypatch.setattr(atomic.tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(atomic, "_usual_mode", lambda path: None)  # never chmod /dev/full itself


@pytest.mark.parametrize("fmt", ["png", "tiff16"])
def test_pairs_on_a_full_disk_print_one_line(tmp_path, full_disk, capsys, monkeypatch, fmt):
    from napari_lfdeblur.cli import main

    lf = tmp_path / "lf.npy"
    np.save(lf, np.random.default_rng(0).random((3, 3, 24, 24, 3)).astype(np.float32))
    unraisable: list = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    rc = main(["pairs", str(lf), "-o", str(tmp_path / "p"), "--focus", "2", "--apertures", "1",
               "--image-format", fmt])
    gc.collect()  # a writer retrying its failed close when collected printed a second traceback
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("lfdeblur pairs: error: cannot write") and "No space left on device" in lines[0]
    assert unraisable == []
    assert [p for p in (tmp_path / "p").rglob("*") if p.is_file()] == []


def test_save_image_on_a_full_disk_leaves_nothing(tmp_path, full_disk):
    for name in ("a.png", "a.jpg", "a.tif"):
        with pytest.raises(OutputError, match="No space left on device"):
            io.save_image(tmp_path / name, _rgb())
    assert list(tmp_path.iterdir()) == []


def test_the_write_gate_waits_for_writes_in_flight():
    """The gate a failed OME-Zarr save closes: new writes are refused, the running ones finish first."""
    from napari_lfdeblur.io.write import _WriteGate

    gate, finished = _WriteGate(), []

    def slow():
        with gate:
            time.sleep(0.2)
            finished.append(1)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.05)
    gate.close()
    assert finished == [1]
    with pytest.raises(OSError), gate:
        pass
    t.join()


# ------------------------------------------------------------------ arguments a writer cannot use
@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda d: io.save_image(d / "o.png", np.zeros((0, 0, 3), np.float32)), ImageFileError, "no pixels"),
        (lambda d: io.save_image(None, np.zeros((8, 8, 3), np.float32)), OutputError, "file path"),
        (lambda d: io.save_image_streaming(np.zeros((0, 0, 3), np.float32), d / "o.tif"), ImageFileError,
         "no pixels"),
        (lambda d: io.save_image_streaming(np.zeros((64, 64, 3), np.float32), d / "o.ome.zarr", chunk=0),
         ImageFileError, "chunk"),
        (lambda d: io.save_image_streaming(np.zeros((64, 64, 3), np.float32), d / "o.ome.zarr", chunk=-1),
         ImageFileError, "chunk"),
        (lambda d: io.open_image(None), ImageFileError, "file path"),
        (lambda d: io.save_image_streaming(np.zeros((64, 64, 3), np.float32), d / "o.tif", progress="x",
                                           cancel=lambda: False), ImageFileError, "progress must be None"),
    ],
    ids=["empty png", "no path", "empty tiff", "chunk 0", "chunk -1", "open None", "progress not a function"],
)
def test_arguments_a_writer_cannot_use_are_refused_and_nothing_is_written(tmp_path, call, error, match):
    with pytest.raises(error, match=match):
        call(tmp_path)
    assert list(tmp_path.iterdir()) == []
