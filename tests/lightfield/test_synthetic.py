"""Procedural light fields: determinism, shapes, ground truth, occlusion, refocus consistency."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest
from scipy import ndimage as ndi

import napari_lfdeblur as lfd
from napari_lfdeblur import LightFieldError
from napari_lfdeblur.lightfield.synthetic import BUNDLED_TEXTURES


@functools.lru_cache(maxsize=4)
def scene(seed=0, views=7, size=128, n_layers=5, rng=(-1.5, 1.5)):
    return lfd.synthetic_lightfield(seed, views=views, size=size, n_layers=n_layers, disparity_range=rng)


def _psnr(a, b):
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))


def test_bundled_textures_need_no_network():
    import skimage.data

    for name in BUNDLED_TEXTURES:
        img = getattr(skimage.data, name)()  # would raise if it had to be downloaded
        assert img.size > 0


def test_shapes_dtype_metadata():
    lf = scene()
    assert lf.data.shape == (7, 7, 128, 128, 3) and lf.data.dtype == np.float32
    assert lf.disparity.shape == (128, 128) and lf.disparity.dtype == np.float32
    assert 0.0 <= lf.data.min() and lf.data.max() <= 1.0
    assert lf.metadata["format"] == "synthetic"
    assert lf.metadata["disparity_range"] == (-1.5, 1.5)
    layers = lf.metadata["layers"]
    assert len(layers) == 5 and layers[0]["shape"] == "plane"
    ds = [L["disparity"] for L in layers]
    assert ds == sorted(ds) and -1.5 <= ds[0] and ds[-1] <= 1.5
    # the ground truth only takes layer disparities; the background is the farthest
    assert set(np.unique(lf.disparity)) <= {np.float32(d) for d in ds}
    assert float(lf.disparity.min()) == pytest.approx(ds[0])

    lf2 = lfd.synthetic_lightfield(1, views=(3, 5), size=(40, 56), n_layers=2, channels=1)
    assert lf2.data.shape == (3, 5, 40, 56, 1)
    assert lfd.synthetic_lightfield(2, views=3, size=32, channels=4).data.shape == (3, 3, 32, 32, 4)


def test_deterministic_per_seed():
    a = lfd.synthetic_lightfield(3, views=5, size=64)
    b = lfd.synthetic_lightfield(3, views=5, size=64)
    c = lfd.synthetic_lightfield(4, views=5, size=64)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.disparity, b.disparity)
    assert a.metadata["layers"] == b.metadata["layers"]
    assert not np.array_equal(a.data, c.data)


def test_views_follow_the_parallax_convention():
    # a single textured plane at disparity d: view (v, u) = centre shifted by -d*(v - vc, u - uc)
    d = 1.0
    lf = lfd.synthetic_lightfield(5, views=5, size=64, n_layers=1, disparity_range=(d, d))
    c = lf.center_view()
    for v, u in [(0, 0), (4, 1), (2, 4)]:
        sy, sx = int(-d * (v - 2)), int(-d * (u - 2))
        expected = np.roll(c, (sy, sx), axis=(0, 1))
        np.testing.assert_allclose(lf.view(v, u)[4:-4, 4:-4], expected[4:-4, 4:-4], atol=1e-5)


def test_refocus_at_layer_disparity_brings_it_into_focus():
    checked = 0
    for seed in (0, 2):
        lf = scene(seed)
        c = lf.center_view()
        gt = lf.disparity
        span = 3.0 * 3  # largest disparity difference x largest view offset
        for L in lf.metadata["layers"]:
            # pixels of this layer far enough from every other layer's edge
            region = ndi.binary_erosion(gt == np.float32(L["disparity"]), iterations=int(span) + 1)
            if region.sum() < 200:
                continue
            d = L["disparity"]
            p_true = _psnr(lfd.refocus(lf, d)[region], c[region])
            p_off = max(_psnr(lfd.refocus(lf, d + dd)[region], c[region]) for dd in (-0.5, 0.5))
            # measured: 33-52 dB at the layer's disparity, 7-10 dB lower at +-0.5
            assert p_true > 31.0
            assert p_true > p_off + 4.0
            checked += 1
    assert checked >= 4


def test_ground_truth_is_the_front_layer():
    """Occlusion: at every pixel the views agree with the centre view at the gt disparity."""
    lf = scene(1)
    c = lf.center_view()
    gt = lf.disparity
    layers = [L["disparity"] for L in lf.metadata["layers"]]
    # all-in-focus rendering with the gt map: each pixel gathered along its own disparity
    aif = lfd.refocus(lf, gt)
    edges = ndi.binary_dilation(ndi.morphological_gradient(gt, size=3) > 0, iterations=10)
    inner = ~edges
    inner[:10] = inner[-10:] = False
    inner[:, :10] = inner[:, -10:] = False
    p_gt = _psnr(aif[inner], c[inner])
    assert p_gt > 32.0  # measured 36.7 dB
    # the same with every occluding layer replaced by the one behind it: clearly wrong
    behind = gt.copy()
    for lo, hi in itertools.pairwise(layers):
        behind[gt == np.float32(hi)] = lo
    front = inner & (gt != np.float32(layers[0]))
    assert front.sum() > 500
    p_front = _psnr(aif[front], c[front])
    p_behind = _psnr(lfd.refocus(lf, behind)[front], c[front])
    assert p_front > p_behind + 4.0  # measured 34.8 vs 28.2 dB
    # an object's pixel shows that object (not what is behind it) in an outer view
    top = np.float32(max(np.unique(gt)))
    region = ndi.binary_erosion(gt == top, iterations=12)
    assert region.sum() > 100
    # in an outer corner view the front object is seen at p - d * (v - vc, u - uc)
    v, u = 0, 6
    ys, xs = np.nonzero(region)
    seen = ndi.shift(lf.view(v, u), (top * (v - 3), top * (u - 3), 0), order=1, mode="nearest")
    assert _psnr(seen[ys, xs], c[ys, xs]) > 30.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"views": 1},
        {"size": 8},
        {"n_layers": 0},
        {"channels": 0},
        {"disparity_range": (2, 1)},
        {"disparity_range": "wide"},
        {"textures": ["no-such-texture"]},
        {"shapes": ["torus"]},
        {"noise": -1.0},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises(LightFieldError):
        lfd.synthetic_lightfield(0, **{"views": 3, "size": 32, **kwargs})


def test_noise_and_even_grids():
    lf = lfd.synthetic_lightfield(0, views=4, size=48, n_layers=3, noise=0.02)
    assert lf.data.shape[:2] == (4, 4)
    clean = lfd.synthetic_lightfield(0, views=4, size=48, n_layers=3)
    diff = lf.data - clean.data
    assert 0.01 < float(diff.std()) < 0.03
    # the gt belongs to the reference view (1, 1) of an even grid, not to the (missing) exact centre
    assert lf.center_index() == (1, 1)
    np.testing.assert_array_equal(lf.disparity, clean.disparity)


def _coordinate_photo(h=300, w=400):
    """A photo whose pixels name their own position: R = column, G = row (both / 1000), B = 0.5."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([xx / 1000, yy / 1000, np.full_like(xx, 0.5)], -1)


def test_images_texture_the_layers_with_crops_at_native_scale():
    photo = _coordinate_photo()
    # one in-focus plane (disparity 0): every view is the same crop of the photo
    lf = lfd.synthetic_lightfield(3, views=3, size=64, n_layers=1, disparity_range=(0, 0), images=[photo])
    assert lf.metadata["layers"][0]["texture"] == "image0"
    v = lf.center_view()
    x0, y0 = round(float(v[0, 0, 0]) * 1000), round(float(v[0, 0, 1]) * 1000)
    crop = photo[y0:y0 + 64]
    # left to right or mirrored (a random flip), but never resampled: neighbours stay 1 px apart
    crop = crop[:, x0:x0 + 64] if v[0, 1, 0] > v[0, 0, 0] else crop[:, x0 - 63:x0 + 1][:, ::-1]
    np.testing.assert_allclose(v, crop, atol=1e-5)
    for lf_view in (lf.view(0, 0), lf.view(2, 1)):
        np.testing.assert_allclose(lf_view, v, atol=1e-5)


def test_images_give_multi_layer_scenes_with_the_photos_own_pixels():
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (200, 240, 3), dtype=np.uint8), np.full((120, 90), 40000, np.uint16)]
    lf = lfd.synthetic_lightfield(0, views=5, size=48, n_layers=4, disparity_range=(-1, 1), images=photos)
    assert [L["texture"] for L in lf.metadata["layers"]] == ["image0", "image1", "image1", "image0"]
    # the centre view is every layer unshifted: each pixel is a pixel of one of the photos, neither
    # resampled nor contrast-stretched (the bundled textures are): k / 255 of the noise photo, or the grey
    c = lf.center_view().astype(np.float64)
    grey = np.isclose(c, 40000 / 65535, atol=1e-6).all(-1)
    noise = np.isclose(c * 255, np.round(c * 255), atol=1e-3).all(-1)
    assert 0.05 < grey.mean() < 0.95 and (grey | noise).all()


@pytest.mark.parametrize("photo, colour", [
    (np.dstack([np.full((64, 64), 0.3), np.ones((64, 64))]), (0.3, 0.3, 0.3)),  # grey + alpha (an "LA" PNG)
    (np.full((64, 64, 1), 0.6), (0.6, 0.6, 0.6)),  # one channel axis, as some TIFF readers give
    (np.dstack([np.full((64, 64), 0.2), np.full((64, 64), 0.4), np.full((64, 64), 0.8), np.zeros((64, 64))]),
     (0.2, 0.4, 0.8)),  # RGBA, alpha 0: the colour is kept, not the transparency
])
def test_images_with_alpha_or_a_channel_axis_texture_with_their_colour(photo, colour):
    lf = lfd.synthetic_lightfield(0, views=3, size=32, n_layers=2, images=[photo])
    np.testing.assert_allclose(lf.center_view(), np.broadcast_to(colour, (32, 32, 3)), atol=1e-6)


@pytest.mark.parametrize("photo", [np.full((20, 20, 3), 128, np.uint8), np.full((20, 20), 32896, np.uint16)])
def test_integer_photos_smaller_than_the_scene_keep_their_values_when_enlarged(photo):
    """A 20 px photo under a 40 px scene is enlarged: its values stay 128/255, not clipped to white."""
    lf = lfd.synthetic_lightfield(0, views=3, size=40, n_layers=1, disparity_range=(0, 0), images=[photo])
    np.testing.assert_allclose(lf.center_view(), 128 / 255, atol=1e-4)


@pytest.mark.parametrize("images, match", [
    ([], "at least one sharp image"),
    ([np.zeros((8, 8, 3))], "at least 16x16"),
    ([np.zeros((32, 32, 5))], "greyscale or RGB"),
    ([np.zeros((32, 32, 3), dtype=object)], "numbers"),
    ([np.full((32, 32), 4000.0)], r"outside \[0, 1\].*img / img.max\(\)"),
])
def test_bad_images_raise_with_what_to_give(images, match):
    with pytest.raises(LightFieldError, match=match):
        lfd.synthetic_lightfield(0, views=3, size=32, images=images)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 10**6}, r"size must be from 16 to 4096 pixels per side, got 1000000x1000000"),
    ({"size": (32, 4097)}, r"size must be from 16 to 4096 pixels per side, got 32x4097"),
    ({"views": 18}, r"views must be at most 17 per side \(a grid from 1x2 to 17x17\), got 18x18"),
    ({"views": (3, 40)}, r"views must be at most 17 per side .*got 3x40"),
])
def test_sizes_beyond_the_largest_are_refused_with_the_range(kwargs, match):
    """size=10**6 asked numpy for 10.9 TiB (a MemoryError) instead of saying what the function makes."""
    with pytest.raises(LightFieldError, match=match):
        lfd.synthetic_lightfield(0, **{"views": 3, "size": 32, **kwargs})


def test_the_largest_grid_and_the_defaults_are_made():
    assert lfd.synthetic_lightfield(0, views=17, size=16, n_layers=2).data.shape == (17, 17, 16, 16, 3)
    assert lfd.synthetic_lightfield(0, views=(1, 2), size=(16, 20), n_layers=1).data.shape == (1, 2, 16, 20, 3)
    assert lfd.synthetic_lightfield(0).data.shape == (9, 9, 256, 256, 3)
