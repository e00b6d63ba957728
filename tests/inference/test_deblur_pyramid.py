"""``deblur_pyramid``: a lazy multiscale result whose overview is cheap (network calls and input reads counted)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import torch

from napari_lfdeblur.inference.deblur import deblur
from napari_lfdeblur.inference.pyramid import MIN_SIZE, deblur_pyramid, hold_small_levels, input_levels
from napari_lfdeblur.inference.tile_plan import DEFAULT_OVERLAP, LEVEL_CHUNK, level_chunk
from napari_lfdeblur.network.drbnet import DRBNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HALO = DEFAULT_OVERLAP


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return DRBNet(base=4).eval()


@pytest.fixture
def network_pixels(net):
    """Pixels through the network (halos included), counted by a forward hook."""
    seen = []
    handle = net.register_forward_hook(lambda m, inp, out: seen.append(int(np.prod(inp[0].shape[-2:]))))
    yield seen
    handle.remove()


def _source(side: int, chunk: int = 1024, reads: list | None = None):
    """A lazy (side, side, 3) uint8 image made chunk by chunk; every chunk made is recorded in ``reads``."""

    def block(block_info=None):
        (y0, y1), (x0, x1) = block_info[None]["array-location"][:2]
        if reads is not None:
            reads.append((y0, x0))
        yy, xx = np.mgrid[y0:y1, x0:x1]
        rgb = np.stack([(yy * 3 + xx) % 251, (xx * 7) % 253, (yy ^ xx) % 255], axis=-1)
        return rgb.astype(np.uint8)

    chunks = tuple(tuple(min(chunk, side - s) for s in range(0, side, chunk)) for _ in range(2)) + ((3,),)
    return da.map_blocks(block, chunks=chunks, dtype=np.uint8)


def test_creating_the_pyramid_computes_nothing(net, network_pixels):
    reads = []
    levels = deblur_pyramid(_source(20000, reads=reads), model=net, device="cpu")
    assert [lvl.shape[0] for lvl in levels] == [20000, 10000, 5000, 2500, 1250, 625, 312, 156]
    assert all(isinstance(lvl, da.Array) for lvl in levels)
    assert network_pixels == [] and reads == []


def test_level_chunk_cuts_a_side_into_equal_parts():
    assert [level_chunk((n, n)) for n in (20000, 1250, 1024, 625, 156)] == [520, 632, 512, 625, 156]
    for n in range(700, 5000, 37):  # several chunks: on the network's 8-px grid, within 0.75-1.5 x 512
        c = level_chunk((n,))
        assert c >= n or (c % 8 == 0 and 384 <= c <= 768), (n, c)


def test_level_chunks_are_bounded(net):
    """napari computes whole chunks of the level it draws: no level has a chunk much larger than 512 px."""
    levels = deblur_pyramid(_source(20000), model=net, device="cpu")
    for lvl in levels:
        assert max(max(c) for c in lvl.chunks[:2]) <= 1.5 * LEVEL_CHUNK, lvl.chunks[:2]
    # the 1250-px level (napari's whole-image view on a laptop) in 2 x 2 equal chunks, not 512 + 512 + 226
    assert levels[4].chunks[:2] == ((632, 618),) * 2
    assert max(levels[-1].shape[:2]) <= MIN_SIZE  # the thumbnail napari reads whole


def test_overview_level_costs_its_own_pixels_only(net, network_pixels):
    """The level napari draws for a whole-image view goes through the network chunk by chunk: its own pixels
    plus halos, not the full resolution's."""
    src = _source(4096)
    levels = hold_small_levels(input_levels(src, rgb=True), rgb=True, half_steps=False)
    out = deblur_pyramid(levels, model=net, device="cpu")
    level = out[3]  # 512 x 512: about one data pixel per screen pixel of a laptop's canvas
    assert level.shape[:2] == (512, 512)
    level.compute()
    assert network_pixels == [512 * 512]  # one chunk, the image border all round: no halo
    network_pixels.clear()
    out[2].compute()  # 1024 x 1024 in four chunks, each with a halo on its two inner sides
    assert network_pixels == [(512 + HALO) ** 2] * 4


def test_small_levels_are_read_in_one_pass(net, network_pixels):
    """Held small levels: each input chunk is read once for all of them, then never again for the overview."""
    reads = []
    src = _source(4096, chunk=512, reads=reads)
    levels = hold_small_levels(input_levels(src, rgb=True), rgb=True, half_steps=False)
    assert sorted(reads) == sorted({(y, x) for y in range(0, 4096, 512) for x in range(0, 4096, 512)})
    reads.clear()
    out = deblur_pyramid(levels, model=net, device="cpu")
    for lvl in out[1:]:
        lvl.compute()
    assert reads == []  # the coarse levels come from memory
    # level 0 stays lazy: one of its chunks reads its input chunk and the neighbours' halos only
    out[0].blocks[2, 3].compute()
    assert 1 <= len(set(reads)) <= 9


def test_half_steps_halve_the_whole_image_view(net, network_pixels):
    """Levels sqrt(2) apart among the held ones: the level napari picks for a whole-image view on a 700-px
    canvas has at most twice the canvas's pixels (with levels 2x apart: up to four times)."""
    layer_utils = pytest.importorskip("napari.layers.utils.layer_utils")
    src = _source(4096)
    plain = hold_small_levels(input_levels(src, rgb=True), rgb=True, half_steps=False)
    halves = hold_small_levels(input_levels(src, rgb=True), rgb=True)
    assert [lvl.shape[0] for lvl in plain] == [4096, 2048, 1024, 512, 256]
    assert [lvl.shape[0] for lvl in halves] == [4096, 2048, 1448, 1024, 724, 512, 362, 256]
    costs = []
    for levels in (plain, halves):
        factors = np.array([[4096 / lvl.shape[0]] * 2 for lvl in levels])
        k = layer_utils.compute_multiscale_level(np.array([4096, 4096]), np.array([700, 700]), factors)
        network_pixels.clear()
        deblur_pyramid(levels, model=net, device="cpu")[k].compute()
        costs.append(sum(network_pixels))
    assert costs[0] == 4 * (512 + HALO) ** 2  # the 1024-px level in four chunks
    assert costs[1] == 724 * 724 <= 2 * 700 * 700  # the 724-px level, one chunk
    # the half step is the held level resized, in its dtype
    assert halves[2].dtype == np.uint8 and halves[2].shape == (1448, 1448, 3)


def test_full_resolution_level_is_deblur_of_the_image(net):
    img = np.asarray(_source(600, chunk=600))
    levels = deblur_pyramid(da.from_array(img, chunks=(300, 300, 3)), model=net, device="cpu", min_size=128,
                            chunk=256, dtype="float32")
    assert [lvl.shape[:2] for lvl in levels] == [(600, 600), (300, 300), (150, 150), (75, 75)]
    lazy = deblur(da.from_array(img, chunks=(300, 300, 3)), model=net, device="cpu", chunk=level_chunk((600,), 256),
                  dtype="float32")
    np.testing.assert_array_equal(levels[0].compute(), lazy.compute())
    whole = deblur(img, model=net, device="cpu", dtype="float32")
    assert np.abs(levels[0].compute().astype(int) - whole).max() <= 2
    # a coarser level is the same network on the 2x2-mean image (rounded)
    half = ((img.reshape(300, 2, 300, 2, 3).sum(axis=(1, 3)) + 2) // 4).astype(np.uint8)
    assert np.abs(levels[1].compute().astype(int) - deblur(half, model=net, device="cpu", dtype="float32")).max() <= 2


def test_multiscale_input_keeps_its_levels(net, network_pixels):
    """A multiscale image's own levels are deblurred as they are; coarser ones are added down to min_size."""
    own = [_source(2048), _source(1024), _source(512)]
    levels = deblur_pyramid(own, model=net, device="cpu")
    assert [lvl.shape[0] for lvl in levels] == [2048, 1024, 512, 256]
    assert network_pixels == []
    np.testing.assert_array_equal(levels[2].compute(), deblur(np.asarray(own[2]), model=net, device="cpu"))


class _PickleCounter(torch.nn.Module):
    """Returns its input and counts how often it is pickled."""

    pickled = 0

    def forward(self, x):
        return x

    def __reduce_ex__(self, protocol):
        type(self).pickled += 1
        return super().__reduce_ex__(protocol)


def test_building_the_levels_never_pickles_the_network():
    """dask names a task graph by hashing its function, by pickling a closure: with the network inside, seconds
    for a pyramid's levels before napari could draw anything.  The results are named without that."""
    _PickleCounter.pickled = 0
    levels = deblur_pyramid(_source(8192), model=_PickleCounter(), device="cpu")
    assert len(levels) == 6 and _PickleCounter.pickled == 0
    assert len({lvl.name for lvl in levels}) == 6


def test_greyscale_uint16_non_square_pyramid(net):
    """Other shapes and dtypes: half steps keep the dtype, one normalisation serves every level."""
    rng = np.random.default_rng(3)
    img = da.from_array((1000 + rng.random((1200, 700)) * 3000).astype(np.uint16), chunks=400)
    levels = hold_small_levels(input_levels(img, rgb=False), rgb=False)
    assert [lvl.shape for lvl in levels] == [(1200, 700), (600, 350), (424, 247), (300, 175), (212, 124),
                                             (150, 87)]
    out = deblur_pyramid(levels, model=net, device="cpu", rgb=False)
    coarse = out[-1].compute()
    assert coarse.dtype == np.uint16 and coarse.shape == (150, 87)
    assert 900 <= coarse.min() and coarse.max() <= 4100  # back in the image's range


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_added_levels_are_rounded_block_means_of_the_image(dtype):
    """Level k is the 2**k x 2**k mean of the image in one step, rounded to its dtype (a chain of truncated 2x2
    means lost up to half a level per step); held levels made from each other in memory agree with it."""
    rng = np.random.default_rng(1)
    hi = 255 if dtype == np.uint8 else 1000
    img = (rng.random((520, 264, 3)) * hi).astype(dtype)
    levels = input_levels(img, rgb=True, min_size=64)
    assert [lvl.shape[:2] for lvl in levels] == [(520, 264), (260, 132), (130, 66), (65, 33), (32, 16)]
    for k, lvl in enumerate(levels[1:], 1):
        f = 2 ** k
        h, w = 520 // f, 264 // f
        mean = img[:h * f, :w * f].astype(np.float64).reshape(h, f, w, f, 3).mean(axis=(1, 3))
        expect = np.floor(mean + 0.5) if np.dtype(dtype).kind in "ui" else mean
        got = lvl.compute()
        assert got.dtype == dtype
        np.testing.assert_allclose(got, expect.astype(dtype), atol=1e-3 if dtype == np.float32 else 0)
    held = hold_small_levels(levels, rgb=True, half_steps=False, max_bytes=10**9)
    for lazy, kept in zip(levels[1:], held[1:]):  # levels 2 and 3 come from level 1 in memory: within rounding
        assert np.abs(lazy.compute().astype(float) - kept.compute()).max() <= 1


def test_numpy_images_are_wrapped_without_a_copy():
    """napari holds a single-scale image as numpy: the lazy levels read it through views (dask's from_array
    copies it whole, 1.2 GB for 20000 x 20000 RGB, before anything is shown)."""
    from napari_lfdeblur.inference.lazy import as_dask

    img = np.arange(600 * 400 * 3, dtype=np.uint16).reshape(600, 400, 3)
    from dask.local import get_sync

    lazy = as_dask(img)
    block = get_sync(dict(lazy.__dask_graph__()), (lazy.name, 0, 0, 0))  # the task's own result, no assembly
    assert np.shares_memory(block, img)
    np.testing.assert_array_equal(lazy.compute(), img)


def test_deblur_for_viewer_is_what_the_deblur_dock_shows(net, network_pixels, monkeypatch):
    """A script gets the dock's lazy result: one level up to 4096 px, else a pyramid of which only the
    thumbnail is deblurred up front; PyTorch whatever "auto" would pick (OpenVINO compiles each chunk shape)."""
    import napari_lfdeblur as lfd
    from napari_lfdeblur.inference import runtime

    monkeypatch.setenv("LFDEBLUR_BACKEND", "openvino")
    monkeypatch.setattr(runtime, "OpenVINONetwork", lambda *a: pytest.fail("a viewer's result ran OpenVINO"))
    small = lfd.deblur_for_viewer(_source(1024), model=net, device="cpu", chunk=512)
    assert len(small) == 1 and small[0].shape == (1024, 1024, 3) and small[0].chunks[:2] == ((512, 512),) * 2
    assert network_pixels == []  # lazy: nothing computed yet
    big = lfd.deblur_for_viewer(_source(6000), model=net, device="cpu")
    assert [lvl.shape[0] for lvl in big] == [6000, 3000, 2121, 1500, 1061, 750, 530, 375, 265, 187]
    assert network_pixels == [187 * 187]  # the thumbnail napari reads whole, and nothing else
    network_pixels.clear()
    big[-1].compute()
    assert network_pixels == []  # held in memory: napari's thumbnail costs nothing more
