"""napari_lfdeblur.io: one format table, one decoder, one writer per format, atomic writes, one error type.

The commands that meet image files (``lfdeblur deblur``, ``train --photos``,
``write_pairs``, ``evaluate``) and the light-field readers accept the same
files and fail the same way.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from napari_lfdeblur import io
from napari_lfdeblur.errors import (
    DeblurInputError,
    ImageFileError,
    LFDeblurError,
    LightFieldError,
    OutputError,
    TrainingError,
)


def _grad(h=24, w=32, c=3):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy) * 255 // (h + w)], axis=-1).astype(np.uint8)
    return img[..., :c] if c > 1 else img[..., 0]


def _one_of_each(folder):
    """A file of every readable format, and files that are not images."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = _grad()
    Image.fromarray(rgb).save(folder / "a.png")
    Image.fromarray(rgb).save(folder / "b.JPG", quality=95)
    Image.fromarray(rgb).save(folder / "c.tif")
    Image.fromarray(rgb).save(folder / "d.bmp")
    Image.fromarray(rgb).save(folder / "e.webp", lossless=True)
    Image.fromarray(rgb).save(folder / "f.ppm")
    Image.fromarray(rgb[..., 0]).save(folder / "g.pgm")
    Image.fromarray(rgb).convert("P").save(folder / "h.gif")
    (folder / "notes.txt").write_text("not an image")
    (folder / "._a.png").write_bytes(b"macOS metadata")
    (folder / "sub.png").mkdir()
    return rgb


def test_the_table_is_the_one_list_of_suffixes():
    assert io.IMAGE_SUFFIXES == (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".ppm", ".pgm", ".gif")
    assert set(io.WRITE_SUFFIXES) == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".zarr"}
    assert not set(io.WRITE_SUFFIXES) & set(io.NOT_WRITTEN_SUFFIXES)
    assert {".bmp", ".webp", ".ppm", ".pgm", ".gif"} <= set(io.NOT_WRITTEN_SUFFIXES)
    assert [io.image_format(f"x{s.upper()}") for s in (".png", ".jpeg", ".tiff", ".bmp", ".zarr")] == \
        ["png", "jpg", "tif", "bmp", "ome.zarr"]
    assert io.image_format("x.txt") is None and not io.is_image_path("x.npy")
    assert [io.result_format(f"x{s}") for s in (".png", ".jpg", ".tif", ".bmp", ".webp", ".pgm", ".gif")] == \
        ["png", "jpg", "tif", "png", "png", "tif", "png"]
    assert io.output_format("x.ome.zarr") == "ome.zarr" and io.suffix_of("ome.zarr") == ".ome.zarr"
    with pytest.raises(ImageFileError, match=r"\.png, \.jpg, \.tif or \.ome\.zarr"):
        io.output_format("x.bmp")
    assert io.stem("a/b.ome.zarr") == "b" and io.stem("c.ome.tif") == "c" and io.stem("d.png") == "d"


def test_image_files_lists_every_readable_file_and_nothing_else(tmp_path):
    _one_of_each(tmp_path)
    (tmp_path / "s.zarr").mkdir()
    (tmp_path / "s.zarr" / ".zarray").write_text("{}")
    os.symlink("nowhere.png", tmp_path / "broken.png")
    names = [p.name for p in io.image_files(tmp_path)]
    assert names == ["a.png", "b.JPG", "c.tif", "d.bmp", "e.webp", "f.ppm", "g.pgm", "h.gif"]
    broken: list = []
    with_zarr = [p.name for p in io.image_files(tmp_path, zarr=True, broken=broken)]
    assert with_zarr == names + ["s.zarr"] and [p.name for p in broken] == ["broken.png"]


def test_read_image_decodes_every_format_to_its_stored_samples(tmp_path):
    rgb = _one_of_each(tmp_path)
    for name in ("a.png", "c.tif", "d.bmp", "e.webp", "f.ppm"):
        np.testing.assert_array_equal(io.read_image(tmp_path / name), rgb, err_msg=name)
    assert np.abs(io.read_image(tmp_path / "b.JPG").astype(int) - rgb).max() < 16
    np.testing.assert_array_equal(io.read_image(tmp_path / "g.pgm"), rgb[..., 0])
    assert io.read_image(tmp_path / "h.gif").shape == rgb.shape  # palette -> RGB
    for p in io.image_files(tmp_path):  # the header says what decoding gives, without decoding
        h, a = io.image_header(p), io.read_image(p)
        assert (h.shape, h.dtype) == (a.shape, a.dtype), p.name


def test_read_image_layouts_and_sample_types(tmp_path):
    g16 = (np.arange(24 * 32, dtype=np.uint16).reshape(24, 32) * 80)
    Image.fromarray(g16).save(tmp_path / "g16.png")
    a = io.read_image(tmp_path / "g16.png")
    assert a.dtype == np.uint16 and a.dtype.byteorder in "=<|" and np.array_equal(a, g16)
    Image.fromarray(_grad(c=1)).convert("1").save(tmp_path / "bw.png")
    assert io.read_image(tmp_path / "bw.png").dtype == np.uint8  # bilevel: grey 0/255
    Image.fromarray(np.dstack([_grad(c=1), _grad(c=1)]), "LA").save(tmp_path / "la.png")
    assert io.read_image(tmp_path / "la.png").shape == (24, 32, 2)  # alpha kept
    import tifffile

    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(_grad(), -1, 0), photometric="rgb", planarconfig="separate")
    np.testing.assert_array_equal(io.read_image(tmp_path / "planar.tif"), _grad())
    assert io.image_header(tmp_path / "planar.tif").shape == (24, 32, 3)


def test_a_damaged_file_is_one_error_for_every_reader(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    for read in (io.read_image, io.image_header, io.open_image):
        with pytest.raises(ImageFileError, match=r"bad\.png.*corrupt or truncated") as e:
            read(tmp_path / "bad.png")
        assert all(isinstance(e.value, t) for t in (DeblurInputError, LightFieldError, TrainingError, LFDeblurError))
    with pytest.raises(ImageFileError, match="does not exist"):
        io.read_image(tmp_path / "missing.png")


def test_save_image_round_trips_and_refuses_what_a_format_cannot_hold(tmp_path):
    img = _grad() / np.float32(255)
    np.testing.assert_array_equal(io.read_image(io.save_image(tmp_path / "a.png", img)), _grad())
    back = io.read_image(io.save_image(tmp_path / "a.tif", img))
    assert back.dtype == np.uint16 and np.abs(back / 65535 - img).max() < 1e-4
    assert io.read_image(io.save_image(tmp_path / "g.png", img[..., :1])).shape == (24, 32)  # (H, W, 1): grey
    with pytest.raises(ImageFileError, match="not 2 channels"):
        io.save_image(tmp_path / "la.png", img[..., :2])
    with pytest.raises(ImageFileError, match="unknown output type"):
        io.save_image(tmp_path / "a.bmp", img)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.tif", "g.png"]  # nothing half-written


def test_atomic_writes_give_the_usual_permissions_without_touching_the_umask(tmp_path, monkeypatch):
    if not os.path.exists("/proc/self/status"):
        pytest.skip("the umask is read from /proc on Linux only")
    old = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("os.umask was called"))
        with io.atomic_path(tmp_path / "f.txt") as tmp:
            tmp.write_text("x")
        with io.atomic_dir(tmp_path / "d") as tmp:
            (tmp / "x").write_text("x")
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o750
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.txt"]


def test_a_file_where_a_folder_should_be_is_an_output_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        io.check_writable_file(tmp_path / "file" / "out.png")
    with pytest.raises(OutputError, match="it is a file"):
        io.writable_folder(tmp_path / "file")
    dst = io.link_or_copy(tmp_path / "file", tmp_path / "copy")
    assert dst.read_text() == "x" and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_deblur_photos_and_evaluate_accept_the_same_files(tmp_path, one_torch_thread):
    """``lfdeblur deblur folder/`` reads the BMP/WebP/PPM/GIF files that ``train --photos`` reads."""
    import torch

    from napari_lfdeblur import cli
    from napari_lfdeblur.cli.deblurring import _deblur_inputs
    from napari_lfdeblur.evaluation import evaluate
    from napari_lfdeblur.network.checkpoint import save_model
    from napari_lfdeblur.network.drbnet import DRBNet

    _one_of_each(tmp_path / "photos")
    photos = cli.read_photos(tmp_path / "photos")
    inputs, _ = _deblur_inputs([str(tmp_path / "photos")])
    assert len(photos) == len(inputs) == len(io.image_files(tmp_path / "photos")) == 8

    torch.manual_seed(0)
    ckpt = str(save_model(DRBNet(base=4).eval(), tmp_path / "tiny.pt"))
    src = tmp_path / "in"
    src.mkdir()
    for name in ("d.bmp", "e.webp", "g.pgm"):
        os.replace(tmp_path / "photos" / name, src / name)
    assert cli.main(["deblur", str(src), "-o", str(tmp_path / "out"), "--model", ckpt, "--device", "cpu"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        ["d_deblurred.png", "e_deblurred.png", "g_deblurred.tif"]

    pairs = tmp_path / "pairs"
    for sub in ("blur", "sharp"):
        (pairs / sub).mkdir(parents=True)
        Image.fromarray(_grad()).save(pairs / sub / "x.png")
    (tmp_path / "outputs").mkdir()
    Image.fromarray(_grad()).save(tmp_path / "outputs" / "x.bmp")  # scored like any other image
    result = evaluate(pairs, outputs=tmp_path / "outputs", lpips=False)
    assert [r["name"] for r in result.rows] == ["x"] and result.rows[0]["psnr"] == float("inf")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantisers_work_block_by_block_like_one_pass_and_leave_the_input(dtype):
    """Sizes off the block grid, a strided view and every special value give what the one-pass formula gives."""
    from napari_lfdeblur.io import pixels

    rng = np.random.default_rng(1)
    x = (rng.random((3, pixels._BLOCK + 7, 2)) * 1.4 - 0.2).astype(dtype)
    x[0, :4, 0] = [np.nan, np.inf, -np.inf, 0.5]
    x = x[:, ::2]  # not contiguous
    before = x.copy()
    ref = np.nan_to_num(np.clip(x.astype(np.float32), 0, 1), nan=0.0)
    np.testing.assert_array_equal(pixels.to_uint8(x), (ref * 255 + 0.5).astype(np.uint8))
    ref16 = np.nan_to_num(np.clip(x, 0, 1), nan=0.0) if dtype == np.float64 else ref
    np.testing.assert_array_equal(pixels.to_uint16(x), (ref16 * 65535 + 0.5).astype(np.uint16))
    np.testing.assert_array_equal(x, before)


def test_to_uint8_and_uint16_clip_and_take_nan_as_black():
    from napari_lfdeblur.io import to_uint8, to_uint16

    x = np.array([np.nan, np.inf, -np.inf, -0.5, 0.3, 2.0], np.float32)
    assert to_uint8(x).tolist() == [0, 255, 0, 0, 77, 255]
    assert to_uint16(x.astype(np.float64)).tolist() == [0, 65535, 0, 0, 19661, 65535]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32, np.uint64, np.int64])
def test_block_means_of_every_integer_type_are_exact_and_never_wrap(dtype):
    """The sum of a block is held without overflow in every type (64-bit integers in float64: no integer type
    holds their sums; a uint64 image's pyramid raised a bare StopIteration)."""
    from napari_lfdeblur.io.levels import block_mean

    info = np.iinfo(dtype)
    big = min(int(info.max), 2**50)  # float64 holds 64-bit sums exactly below 2**53
    img = np.array([[big, big - 1, 3, 4], [big, big - 2, 5, 6]], dtype=dtype)
    ref = [(4 * big - 3 + 2) // 4, (3 + 4 + 5 + 6 + 2) // 4]  # ties round up
    assert block_mean(img, 2, 0).tolist() == [ref] and block_mean(img, 2, 0).dtype == dtype
    if info.min < 0:
        low = np.full((2, 2), max(int(info.min), -(2**50)), dtype)
        assert block_mean(low, 2, 0).tolist() == [[int(low[0, 0])]]


def test_a_uint64_image_saves_as_ome_zarr_with_its_pyramid(tmp_path):
    zarr = pytest.importorskip("zarr")
    from napari_lfdeblur.io.levels import block_mean

    img = np.random.default_rng(0).integers(0, 2**40, (130, 100), dtype=np.uint64)
    io.save_image_streaming(img, tmp_path / "big.ome.zarr", chunk=64)
    root = zarr.open_group(str(tmp_path / "big.ome.zarr"), mode="r")
    np.testing.assert_array_equal(root["0"][...], img)
    np.testing.assert_array_equal(root["1"][...], block_mean(img, 2, 0))
