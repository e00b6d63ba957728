"""``deblur`` at the API level: laziness, zarr inputs, dtypes and shapes, tiling seams, progress, cancel.

A tiny random DRBNet (base 4 or 8, fixed seed) stands for the network; an
identity network checks that intensities go through normalisation and back
unchanged.  Forward calls are counted with a forward hook.
"""

from __future__ import annotations

import threading

import dask.array as da
import numpy as np
import pytest
import torch

from napari_lfdeblur.errors import DeblurInputError
from napari_lfdeblur.inference.deblur import DeblurCancelled, deblur
from napari_lfdeblur.inference.tile_plan import DEFAULT_OVERLAP
from napari_lfdeblur.inference.tiling import plan_tiles, windows
from napari_lfdeblur.network.drbnet import DRBNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _net(base: int, seed: int = 0) -> DRBNet:
    torch.manual_seed(seed)
    return DRBNet(base=base).eval()


@pytest.fixture(scope="module")
def net4():
    return _net(4)


@pytest.fixture(scope="module")
def net8():
    return _net(8, seed=1)


class Identity(torch.nn.Module):
    """Returns its input: deblur with it must give the image back (normalisation round trip)."""

    def forward(self, x):
        return x


class Counter:
    """Counts forward calls of a module (and the input sizes) through a forward hook."""

    def __init__(self, module):
        self.shapes: list = []
        self.handle = module.register_forward_hook(lambda m, inp, out: self.shapes.append(tuple(inp[0].shape)))

    @property
    def n(self) -> int:
        return len(self.shapes)

    def close(self):
        self.handle.remove()


@pytest.fixture
def count():
    counters = []

    def make(module):
        c = Counter(module)
        counters.append(c)
        return c

    yield make
    for c in counters:
        c.close()


def _img(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random(shape)
    if np.dtype(dtype) == np.uint8:
        return (x * 255).round().astype(np.uint8)
    if np.dtype(dtype) == np.uint16:
        return (3000 + x * 20000).round().astype(np.uint16)
    return x.astype(dtype)


# ------------------------------------------------------------------ laziness
def test_dask_in_dask_out_without_running_the_network(net4, count):
    c = count(net4)
    for dtype in (np.uint8, np.uint16, np.float32):  # uint16/float sample intensities, never the network
        arr = da.from_array(_img((256, 384, 3), dtype), chunks=128)
        out = deblur(arr, model=net4, device="cpu", chunk=128)
        assert isinstance(out, da.Array) and out.shape == arr.shape and out.dtype == arr.dtype
    assert c.n == 0


def test_one_chunk_of_sixteen_runs_the_network_once(net4, count):
    arr = da.from_array(_img((512, 512, 3)), chunks=(128, 128, 3))
    out = deblur(arr, model=net4, device="cpu", chunk=128, tile=512)
    assert out.numblocks[:2] == (4, 4)
    c = count(net4)
    block = out.blocks[1, 2].compute()
    halo = DEFAULT_OVERLAP
    assert block.shape == (128, 128, 3)
    assert c.n == 1 and c.shapes[0][-2:] == (128 + 2 * halo, 128 + 2 * halo)  # one chunk plus its halo
    out.blocks[0, 0].compute()  # a corner chunk: the halo only on the inner sides
    assert c.n == 2 and c.shapes[1][-2:] == (128 + halo, 128 + halo)


def test_zarr_input_is_lazy_and_matches_numpy(net4, count):
    zarr = pytest.importorskip("zarr")
    img = _img((300, 416, 3), seed=3)
    z = zarr.create_array(store=zarr.storage.MemoryStore(), shape=img.shape, chunks=(128, 128, 3), dtype="uint8")
    z[...] = img
    c = count(net4)
    out = deblur(z, model=net4, device="cpu")
    assert isinstance(out, da.Array) and c.n == 0
    ref = deblur(img, model=net4, device="cpu")
    got = out.compute()
    assert got.dtype == np.uint8 and got.shape == img.shape
    assert np.abs(got.astype(int) - ref).max() <= 2
    # in chunks of 128 too: every chunk from itself plus a halo, still within 2/255 of the whole
    got = deblur(z, model=net4, device="cpu", chunk=128).compute()
    assert np.abs(got.astype(int) - ref).max() <= 2


@pytest.mark.parametrize(
    "shape, dtype",
    [
        ((96, 120, 3), np.uint8),
        ((96, 120), np.uint16),
        ((96, 120, 4), np.uint16),
        ((96, 120, 3), np.float32),
        ((2, 80, 96, 3), np.uint8),
    ],
)
def test_lazy_result_equals_numpy_result(net4, shape, dtype):
    img = _img(shape, dtype, seed=5)
    ref = deblur(img, model=net4, device="cpu")
    got = deblur(da.from_array(img, chunks=-1), model=net4, device="cpu").compute()
    assert got.dtype == ref.dtype and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)


# ------------------------------------------------------------------ dtypes and shapes
def test_uint8_and_greyscale_round_trip_through_identity():
    for img, rgb in ((_img((64, 80, 3)), None), (_img((64, 80)), None), (_img((64, 80, 1)), True)):
        out = deblur(img, model=Identity(), device="cpu", rgb=rgb)
        assert out.dtype == np.uint8 and out.shape == img.shape
        np.testing.assert_array_equal(out, img)


def test_uint16_percentile_normalisation_is_reversible(net4):
    img = (1000 + np.random.default_rng(2).integers(0, 500, (64, 96, 3))).astype(np.uint16)  # constant offset
    out = deblur(img, model=Identity(), device="cpu")
    assert out.dtype == np.uint16 and out.shape == img.shape
    assert (out == img).mean() > 0.99 and np.abs(out.astype(int) - img).max() <= 2  # only the clipped tails move
    # a real network's output comes back in the image's range, not in 0..65535
    out = deblur(img, model=net4, device="cpu")
    assert out.dtype == np.uint16 and 1000 <= out.min() and out.max() <= 1499


def test_uint16_range_of_a_huge_lazy_image_reads_only_a_few_chunks():
    """Choosing the percentile range samples at most 16 of 400 chunks, and the
    range matches the whole image's when the chunks look alike."""
    from napari_lfdeblur.inference.normalize import Normalization

    reads = []

    def block(block_info=None):
        (y0, _), (x0, _) = block_info[None]["array-location"][:2]
        reads.append((y0, x0))
        rng = np.random.default_rng(y0 * 7919 + x0)
        return (2000 + rng.random((64, 64)) * 10000).astype(np.uint16)

    arr = da.map_blocks(block, chunks=((64,) * 20, (64,) * 20), dtype=np.uint16)
    norm = Normalization.for_image(arr)
    assert 1 <= len(set(reads)) <= 16
    assert abs(norm.lo - 2000) < 50 and abs(norm.hi - 12000) < 50  # the whole image spans 2000..12000


def test_float32_stays_float32():
    img = _img((48, 64, 3), np.float32)
    out = deblur(img, model=Identity(), device="cpu")
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, img, atol=1e-6)
    wide = img * 300 + 50  # outside [0, 1]: by percentiles and back
    out = deblur(wide, model=Identity(), device="cpu")
    assert out.dtype == np.float32 and np.abs(out - wide).mean() < 0.05


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_rgba_alpha_passes_through_bit_exactly(net4, dtype):
    img = _img((72, 88, 4), dtype, seed=7)
    out = deblur(img, model=net4, device="cpu")
    assert out.dtype == img.dtype and out.shape == img.shape
    np.testing.assert_array_equal(out[..., 3], img[..., 3])
    lazy = deblur(da.from_array(img, chunks=(48, 48, 4)), model=net4, device="cpu", chunk=48).compute()
    np.testing.assert_array_equal(lazy[..., 3], img[..., 3])


def test_stack_is_deblurred_plane_by_plane(net4):
    stack = _img((2, 64, 96, 3), seed=9)
    out = deblur(stack, model=net4, device="cpu")
    assert out.shape == stack.shape and out.dtype == np.uint8
    for i in range(2):
        np.testing.assert_array_equal(out[i], deblur(stack[i], model=net4, device="cpu"))


# ------------------------------------------------------------------ tiling
@pytest.fixture(scope="module")
def tiled_and_whole(net8):
    img = _img((400, 600, 3), seed=11)
    tiled = deblur(img, model=net8, device="cpu", tile=256).astype(int)
    whole = deblur(img, model=net8, device="cpu", tile=4096).astype(int)
    return tiled, whole


def test_tiled_within_2_of_whole(tiled_and_whole):
    tiled, whole = tiled_and_whole
    assert np.abs(tiled - whole).max() <= 2


def test_no_seam_at_tile_borders(tiled_and_whole):
    """Where neighbouring tiles hand over (the middle of their overlap), the error is no larger than elsewhere."""
    tiled, whole = tiled_and_whole
    diff = np.abs(tiled - whole).max(axis=-1)  # (Y, X), over channels
    for axis, n in ((1, 600), (0, 400)):
        cuts = [a for _, _, a, _ in windows(n, 256, DEFAULT_OVERLAP)][1:]
        assert cuts, "the image must be tiled along this axis"
        border = np.zeros(n, bool)
        for c in cuts:
            border[c - 4: c + 4] = True  # the hand-over, and a few pixels either side
        profile = diff.max(axis=1 - axis)  # worst over the other axis: one value per column (row)
        assert profile[border].max() <= profile[~border].max() + 1, (axis, profile[border], profile[~border].max())
        # and along one row profile through the middle
        line = diff[200] if axis == 1 else diff[:, 300]
        assert line[border].max() <= line[~border].max() + 1


# ------------------------------------------------------------------ progress, cancel, refusals
def test_progress_totals():
    img = _img((400, 600, 3))
    calls = []
    deblur(img, model=Identity(), device="cpu", tile=256, progress=lambda d, t: calls.append((d, t)))
    n_tiles = len(plan_tiles((400, 600), 256, DEFAULT_OVERLAP))
    assert n_tiles > 1 and calls[-1] == (n_tiles, n_tiles)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and {t for _, t in calls} == {n_tiles}
    calls.clear()
    deblur(np.stack([img, img]), model=Identity(), device="cpu", tile=256, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (2 * n_tiles, 2 * n_tiles) and len(calls) == 2 * n_tiles


def test_cancel_raises_and_stops_the_network(net4, count):
    img = _img((300, 300, 3))
    with pytest.raises(DeblurCancelled):
        deblur(img, model=Identity(), device="cpu", tile=192, cancel=lambda: True)
    event = threading.Event()
    event.set()
    with pytest.raises(DeblurCancelled):
        deblur(img, model=Identity(), device="cpu", tile=192, cancel=event)
    c = count(net4)
    asked = []

    def cancel_third():
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(DeblurCancelled):
        deblur(img, model=net4, device="cpu", tile=192, cancel=cancel_third)
    assert c.n == 2


def test_nan_is_refused():
    img = _img((32, 40, 3), np.float32)
    img[3, 4, 1] = np.nan
    for normalize in ("auto", "none"):
        with pytest.raises(DeblurInputError, match="NaN"):
            deblur(img, model=Identity(), device="cpu", normalize=normalize)
