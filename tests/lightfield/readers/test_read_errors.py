"""Bad input gives a LightFieldError that says what is wrong, and nothing else escapes."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from napari_lfdeblur import LightFieldError, read_lightfield


def _views(folder, shapes):
    """Write view_R_C.png files; ``shapes`` maps (r, c) -> array shape (uint8 content)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for (r, c), shape in shapes.items():
        iio.imwrite(folder / f"view_{r}_{c}.png", rng.integers(0, 256, size=shape, dtype=np.uint8))
    return folder


def test_missing_path(tmp_path):
    with pytest.raises(LightFieldError, match="does not exist"):
        read_lightfield(tmp_path / "nope")
    with pytest.raises(LightFieldError, match="does not exist"):
        read_lightfield(tmp_path / "nope.npy", format="array")


def test_empty_folder(tmp_path):
    with pytest.raises(LightFieldError, match="empty"):
        read_lightfield(tmp_path)


def test_folder_of_text_files(tmp_path):
    for i in range(3):
        (tmp_path / f"note_{i}_{i}.txt").write_text("not an image")
    with pytest.raises(LightFieldError, match="No light field found.*pattern="):
        read_lightfield(tmp_path)


def test_single_2d_image(tmp_path):
    iio.imwrite(tmp_path / "photo.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(LightFieldError, match="single image.*format='eslf'"):
        read_lightfield(tmp_path / "photo.png")
    # in a folder, one image is not a grid of views either
    iio.imwrite(tmp_path / "img_1_1.png", np.zeros((20, 30, 3), np.uint8))
    with pytest.raises(LightFieldError, match="at least two views|No light field"):
        read_lightfield(tmp_path)


def test_views_of_different_sizes(tmp_path):
    shapes = {(r, c): (8, 9, 3) for r in range(2) for c in range(2)}
    shapes[1, 0] = (8, 10, 3)
    _views(tmp_path, shapes)
    with pytest.raises(LightFieldError, match="different sizes.*view_1_0.png"):
        read_lightfield(tmp_path)


def test_views_of_different_channel_counts(tmp_path):
    shapes = {(r, c): (8, 9, 3) for r in range(2) for c in range(2)}
    shapes[0, 1] = (8, 9)
    _views(tmp_path, shapes)
    with pytest.raises(LightFieldError, match="channel counts.*view_0_1.png"):
        read_lightfield(tmp_path)


def test_corrupt_header_is_found_at_open(tmp_path):
    _views(tmp_path, {(r, c): (8, 9, 3) for r in range(2) for c in range(2)})
    (tmp_path / "view_1_1.png").write_bytes(b"\x89PNG garbage, not an image")
    with pytest.raises(LightFieldError, match="view_1_1.png.*corrupt"):
        read_lightfield(tmp_path)


def test_corrupt_payload_is_found_when_computed(tmp_path):
    _views(tmp_path, {(r, c): (64, 64, 3) for r in range(2) for c in range(2)})
    p = tmp_path / "view_0_1.png"
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])  # header intact, pixels cut
    lf = read_lightfield(tmp_path)  # lazy: headers only, so this opens
    lf.data[0, 0].compute()  # intact views still decode
    with pytest.raises(LightFieldError, match="view_0_1.png.*corrupt or truncated"):
        lf.data[0, 1].compute()
    with pytest.raises(LightFieldError, match="view_0_1.png"):
        read_lightfield(tmp_path, lazy=False)


def test_3d_and_flat_arrays(tmp_path):
    import tifffile

    with pytest.raises(LightFieldError, match="3D array"):
        read_lightfield(np.zeros((9, 16, 16), np.uint8))
    np.save(tmp_path / "stack.npy", np.zeros((9, 16, 16), np.uint8))
    with pytest.raises(LightFieldError, match="3D array"):
        read_lightfield(tmp_path / "stack.npy")
    tifffile.imwrite(tmp_path / "flat.tif", np.zeros((32, 32), np.uint8))
    with pytest.raises(LightFieldError, match="2D array"):
        read_lightfield(tmp_path / "flat.tif")
    with pytest.raises(LightFieldError, match="colour channels"):
        read_lightfield(np.zeros((81, 16, 16, 3), np.uint8))
    with pytest.raises(LightFieldError, match="axes="):
        read_lightfield(np.zeros((3, 3, 8, 8, 3), np.uint8), axes="VUYX")
    with pytest.raises(LightFieldError, match="axes="):
        read_lightfield(np.zeros((3, 3, 8, 8), np.uint8), axes="VVYX")


def test_pattern_that_matches_nothing(tmp_path):
    _views(tmp_path, {(r, c): (8, 9, 3) for r in range(2) for c in range(2)})
    with pytest.raises(LightFieldError, match="matches none of the 4 image files.*view_0_0.png"):
        read_lightfield(tmp_path, pattern="cam_{row}_{col}.png")
    with pytest.raises(LightFieldError, match="Unknown placeholder"):
        read_lightfield(tmp_path, pattern="view_{r}_{c}.png")
    with pytest.raises(LightFieldError, match="both"):
        read_lightfield(tmp_path, pattern="view_{row}_*.png")


def test_wrong_format_options_and_odd_inputs(tmp_path):
    _views(tmp_path / "grid", {(r, c): (8, 9, 3) for r in range(2) for c in range(2)})
    with pytest.raises(LightFieldError, match="Unknown format"):
        read_lightfield(tmp_path / "grid", format="lytro")
    with pytest.raises(LightFieldError, match="not apply to format 'grid'"):
        read_lightfield(tmp_path / "grid", views=(2, 2), format="grid")
    with pytest.raises(LightFieldError, match="HCI"):
        read_lightfield(tmp_path / "grid", format="hci")
    with pytest.raises(LightFieldError):
        read_lightfield(tmp_path / "grid", format="eslf")
    (tmp_path / "junk.npy").write_bytes(b"definitely not numpy")
    with pytest.raises(LightFieldError, match="junk.npy"):
        read_lightfield(tmp_path / "junk.npy")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5 either")
    with pytest.raises(LightFieldError, match="junk.h5"):
        read_lightfield(tmp_path / "junk.h5")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(LightFieldError):
        read_lightfield(tmp_path / "empty.zarr")
    (tmp_path / "table.mat").write_bytes(b"x")
    with pytest.raises(LightFieldError, match="centers="):
        read_lightfield(tmp_path / "table.mat")
    (tmp_path / "data.xyz").write_text("1 2 3")
    with pytest.raises(LightFieldError, match="unknown light-field file type"):
        read_lightfield(tmp_path / "data.xyz")
    with pytest.raises(LightFieldError, match="disparity_range"):
        read_lightfield(np.zeros((2, 2, 4, 5), np.uint8), disparity_range=3)


@pytest.mark.parametrize("bad", [None, 42, "", [1, 2, 3], {"a": 1}])
def test_nothing_else_escapes(bad):
    with pytest.raises(LightFieldError):
        read_lightfield(bad)


def test_user_metadata_options(tmp_path):
    lf = read_lightfield(np.zeros((2, 2, 4, 5), np.uint8), angular_spacing=0.5, disparity_range=(-1, 2))
    assert lf.metadata["angular_spacing"] == 0.5 and lf.metadata["disparity_range"] == (-1.0, 2.0)
