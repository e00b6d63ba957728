"""Procedural light fields with exact ground-truth disparity: fronto-parallel textured layers (a background
plane, then discs, rotated rectangles and blobs in front of it), textured from images bundled with scikit-image,
procedural patterns, or the user's own sharp photographs (crops at their native scale, so that pairs keep the
photos' own detail, noise and colours).

Nearer content has the larger disparity (the sign of :class:`LightField`), so layers are painted back to front
in increasing disparity.  Each view shifts every layer by ``-d * (v - vc, u - uc)`` and composites "over"; the
ground truth is the frontmost layer in the reference view (:meth:`LightField.center_index`), where the layers
have their hard, unshifted edges.  The same arguments give the same light field, bit for bit.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np

from ..errors import LightFieldError
from ..io.pixels import grey_or_rgb, to_float, to_rgb
from .core import LightField

__all__ = ["BUNDLED_TEXTURES", "MAX_SIZE", "MAX_VIEWS", "PROCEDURAL_TEXTURES", "bundled_texture", "check_images",
           "synthetic_lightfield"]

#: ``skimage.data`` images shipped inside scikit-image (no network needed)
BUNDLED_TEXTURES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "camera",
    "brick",
    "grass",
    "gravel",
    "moon",
    "hubble_deep_field",
    "immunohistochemistry",
    "coins",
)
PROCEDURAL_TEXTURES = ("noise", "stripes", "checker")
_SHAPES = ("disc", "rectangle", "blob")

# The largest light field made here: every layer is a float32 canvas of the view size (plus the shift margin)
# and the result holds views² views, so a size of 10**6 asks for terabytes.  Training renders at most
# patch + 96 = 2144 px (an 11x11 grid by default), a validation scene at most 4096 px; 17x17 is the densest
# common camera grid (the Stanford gantry).
#: the largest view side (pixels) of a synthetic light field
MAX_SIZE = 4096
#: the most views on each side of a synthetic light field's grid
MAX_VIEWS = 17


@cache
def bundled_texture(name: str) -> np.ndarray:
    """A bundled image as float32 (H, W, 3) in [0, 1] (grey images replicated)."""
    import skimage.data

    return np.ascontiguousarray(to_rgb(to_float(getattr(skimage.data, name)()), name))


def _is_grey(img: np.ndarray) -> bool:
    return bool(np.allclose(img[..., 0], img[..., 1]) and np.allclose(img[..., 1], img[..., 2]))


def _stretch(tex: np.ndarray, rng, lo_range=(0.05, 0.3), hi_range=(0.7, 0.95)) -> np.ndarray:
    """Rescale so that the 1-99 percentiles map to a random [lo, hi] (enough contrast)."""
    p1, p99 = np.percentile(tex, [1, 99])
    lo, hi = rng.uniform(*lo_range), rng.uniform(*hi_range)
    return np.clip(lo + (tex - p1) * (hi - lo) / max(p99 - p1, 1e-3), 0.0, 1.0)


class _Photos(tuple):
    """Images that passed :func:`check_images` (a dataset renders many scenes from them: check once)."""


def check_images(images) -> _Photos:
    """The ``images`` argument as (H, W) or (H, W, 3) arrays (uint8/uint16 or floats in [0, 1]); alpha and
    single-channel axes are dropped (grey stays 2-D until cropped: a third of the memory)."""
    if isinstance(images, _Photos):
        return images
    out = []
    for k, img in enumerate(images):
        a = np.asarray(img)
        g = grey_or_rgb(a)
        if g is None or min(a.shape[:2]) < 16:
            raise LightFieldError(f"images[{k}] must be a greyscale or RGB(A) image (H, W[, C]) of at least 16x16 px, "
                                  f"got shape {a.shape}.")
        if a.dtype.kind not in "uif":
            raise LightFieldError(f"images[{k}] must hold numbers, got dtype {a.dtype}.")
        if a.dtype.kind == "f" and not (np.nanmin(a) >= -1e-3 and np.nanmax(a) <= 1 + 1e-3):
            raise LightFieldError(f"images[{k}] holds floats outside [0, 1] ({np.nanmin(a):.4g} .. "
                                  f"{np.nanmax(a):.4g}); scale it to [0, 1] first, e.g. img / img.max().")
        out.append(g)
    if not out:
        raise LightFieldError("images must not be empty: give at least one sharp image, or None.")
    return _Photos(out)


def _photo_texture(img: np.ndarray, shape: tuple[int, int], rng) -> np.ndarray:
    """(H, W, 3) float32 crop of a photograph at its native scale (enlarged only if it is smaller)."""
    H, W = shape
    h, w = img.shape[:2]
    if h < H or w < W:
        from skimage.transform import resize

        f = max(H / h, W / w)
        # to [0, 1] floats first (resizing integers with preserve_range keeps 0..255, which would clip to white);
        # grey stays 2-D until cropped
        img = resize(to_float(img), (math.ceil(h * f), math.ceil(w * f)), order=1, preserve_range=True)
        h, w = img.shape[:2]
    y0, x0 = int(rng.integers(0, h - H + 1)), int(rng.integers(0, w - W + 1))
    crop = to_rgb(to_float(img[y0 : y0 + H, x0 : x0 + W]), "a texture image")
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return np.ascontiguousarray(crop)


def _random_colour(rng) -> np.ndarray:
    return rng.uniform(0.05, 0.95, size=3)


def _texture(kind: str, shape: tuple[int, int], rng) -> np.ndarray:
    """(H, W, 3) float32 texture in [0, 1]."""
    from scipy import ndimage as ndi

    H, W = shape
    if kind in BUNDLED_TEXTURES:
        from skimage.transform import resize

        img = bundled_texture(kind)
        h, w = img.shape[:2]
        # a random crop with the target aspect ratio, 45-100 % of the largest that fits
        f = rng.uniform(0.45, 1.0)
        ch = min(h, round(w * H / W))
        cw = min(w, round(ch * W / H))
        ch, cw = max(8, int(ch * f)), max(8, int(cw * f))
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        crop = img[y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        tex = resize(crop, (H, W), order=1, anti_aliasing=True, preserve_range=True).astype(np.float32)
        if _is_grey(tex):  # tint grey images between two random colours
            c0, c1 = _random_colour(rng), _random_colour(rng)
            g = _stretch(tex[..., 0], rng)
            tex = c0 + (c1 - c0) * g[..., None]
        else:
            tex = _stretch(tex, rng)
        return np.clip(tex, 0, 1).astype(np.float32)
    if kind == "noise":
        acc = np.zeros((H, W, 3), np.float64)
        for k in range(5):
            sigma = 0.7 * 2**k
            n = rng.normal(size=(H, W, 3))
            acc += ndi.gaussian_filter(n, (sigma, sigma, 0), mode="wrap") * (sigma**0.6)
        acc = (acc - acc.mean()) / (acc.std() + 1e-9)
        c0, c1 = _random_colour(rng), _random_colour(rng)
        g = 1 / (1 + np.exp(-1.5 * acc.mean(-1)))  # luminance-like pattern
        tex = c0 + (c1 - c0) * g[..., None] + 0.08 * acc
        return np.clip(tex, 0, 1).astype(np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    theta = rng.uniform(0, np.pi)
    c0, c1 = _random_colour(rng), _random_colour(rng)
    fine = ndi.gaussian_filter(rng.normal(size=(H, W)), 0.8)
    fine = 0.06 * fine / (fine.std() + 1e-9)
    if kind == "stripes":
        period = rng.uniform(5.0, 20.0)
        t = xx * math.cos(theta) + yy * math.sin(theta)
        g = 0.5 + 0.5 * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))
    elif kind == "checker":
        cell = rng.uniform(6.0, 20.0)
        a = (xx * math.cos(theta) + yy * math.sin(theta)) / cell
        b = (-xx * math.sin(theta) + yy * math.cos(theta)) / cell
        g = ((np.floor(a) + np.floor(b)) % 2).astype(np.float64)
        g = ndi.gaussian_filter(g, 0.6)
    else:
        raise LightFieldError(
            f"unknown texture {kind!r}; use one of {BUNDLED_TEXTURES + PROCEDURAL_TEXTURES}."
        )
    tex = c0 + (c1 - c0) * g[..., None] + fine[..., None]
    return np.clip(tex, 0, 1).astype(np.float32)


def _shape_mask(kind: str, shape: tuple[int, int], centre, radius: float, rng) -> np.ndarray:
    """Binary (H, W) float32 mask of a shape in canvas coordinates."""
    H, W = shape
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    cy, cx = centre
    dy, dx = yy - cy, xx - cx
    if kind == "disc":
        m = dy * dy + dx * dx <= radius * radius
    elif kind == "rectangle":
        th = rng.uniform(0, np.pi)
        a = radius * rng.uniform(0.6, 1.0)
        b = radius * rng.uniform(0.35, 0.9)
        p = dx * math.cos(th) + dy * math.sin(th)
        q = -dx * math.sin(th) + dy * math.cos(th)
        m = (np.abs(p) <= a) & (np.abs(q) <= b)
    elif kind == "blob":
        ang = np.arctan2(dy, dx)
        r = np.hypot(dy, dx)
        rr = np.ones_like(ang)
        for k in range(2, 6):
            rr += rng.uniform(0.03, 0.14) * np.cos(k * ang + rng.uniform(0, 2 * np.pi))
        m = r <= radius * rr
    else:
        raise LightFieldError(f"unknown shape {kind!r}; use one of {_SHAPES}.")
    return m.astype(np.float32)


def _as_pair(x, what: str) -> tuple[int, int]:
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x), int(x)
    try:
        a, b = (int(v) for v in x)
    except (TypeError, ValueError) as e:
        raise LightFieldError(f"{what} must be an int or a pair of ints, got {x!r}.") from e
    return a, b


def _check_grid(views, size) -> tuple[int, int, int, int]:
    """(V, U, Y, X) from ``views`` and ``size``, checked."""
    V, U = _as_pair(views, "views")
    Y, X = _as_pair(size, "size")
    if V < 1 or U < 1 or V * U < 2:
        raise LightFieldError(f"views must give a grid of at least 2 views, got {V}x{U}.")
    if V > MAX_VIEWS or U > MAX_VIEWS:
        raise LightFieldError(f"views must be at most {MAX_VIEWS} per side (a grid from 1x2 to {MAX_VIEWS}x"
                              f"{MAX_VIEWS}), got {V}x{U}: give a smaller grid.")
    if not (16 <= Y <= MAX_SIZE and 16 <= X <= MAX_SIZE):
        raise LightFieldError(f"size must be from 16 to {MAX_SIZE} pixels per side, got {Y}x{X}: give a size in "
                              "that range.")
    return V, U, Y, X


def _check_numbers(n_layers, channels, disparity_range, noise) -> tuple[float, float]:
    """Check the layer and channel counts and the noise; the disparity range as (lo, hi)."""
    if not (isinstance(n_layers, (int, np.integer)) and n_layers >= 1):
        raise LightFieldError(f"n_layers must be an int >= 1, got {n_layers!r}.")
    if not (isinstance(channels, (int, np.integer)) and channels >= 1):
        raise LightFieldError(f"channels must be an int >= 1, got {channels!r}.")
    try:
        lo, hi = (float(v) for v in disparity_range)
    except (TypeError, ValueError) as e:
        raise LightFieldError(f"disparity_range must be a pair (lo, hi), got {disparity_range!r}.") from e
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise LightFieldError(f"disparity_range must be finite with lo <= hi, got {disparity_range!r}.")
    if not (noise >= 0 and math.isfinite(noise)):
        raise LightFieldError(f"noise must be >= 0, got {noise!r}.")
    return lo, hi


def _check_names(textures, shapes) -> tuple[tuple, tuple]:
    """The texture and shape names to draw from (the defaults for None), checked."""
    textures = tuple(textures) if textures is not None else BUNDLED_TEXTURES + PROCEDURAL_TEXTURES
    shapes = tuple(shapes) if shapes is not None else _SHAPES
    for t in textures:
        if t not in BUNDLED_TEXTURES + PROCEDURAL_TEXTURES:
            raise LightFieldError(f"unknown texture {t!r}; use names from {BUNDLED_TEXTURES + PROCEDURAL_TEXTURES}.")
    for s in shapes:
        if s not in _SHAPES:
            raise LightFieldError(f"unknown shape {s!r}; use names from {_SHAPES}.")
    if not textures or not shapes:
        raise LightFieldError("textures and shapes must not be empty.")
    return textures, shapes


def _make_layers(rng, disp, textures, shapes, photos, view: tuple[int, int], margin: int) -> list[dict]:
    """One layer per disparity, back to front: its texture (covering the canvas, the view plus ``margin`` on
    each side) and its opacity; the first is the background plane."""
    Y, X = view
    H, W = Y + 2 * margin, X + 2 * margin
    layers = []
    for i, d in enumerate(disp):
        if photos is None:
            tex_kind = str(textures[int(rng.integers(len(textures)))])
            tex = _texture(tex_kind, (H, W), rng)
        else:
            k = int(rng.integers(len(photos)))
            tex_kind = f"image{k}"
            tex = _photo_texture(photos[k], (H, W), rng)
        if i == 0:
            shape_kind = "plane"
            alpha = np.ones((H, W), np.float32)
        else:
            shape_kind = str(shapes[int(rng.integers(len(shapes)))])
            radius = rng.uniform(0.12, 0.3) * min(Y, X)
            centre = (margin + rng.uniform(0.15, 0.85) * Y, margin + rng.uniform(0.15, 0.85) * X)
            alpha = _shape_mask(shape_kind, (H, W), centre, radius, rng)
        layers.append({"disparity": float(d), "texture": tex_kind, "shape": shape_kind, "tex": tex, "alpha": alpha})
    return layers


def _colour_mix(channels: int, rng) -> np.ndarray | None:
    """(3, channels) RGB weights for channel counts other than 3 (grey: luminance; others: random mixtures)."""
    if channels == 3:
        return None
    if channels == 1:
        return np.array([[0.299], [0.587], [0.114]], np.float32)
    mix = rng.uniform(0, 1, size=(3, channels)).astype(np.float32)
    return mix / mix.sum(0, keepdims=True)


def _render(layers: list[dict], mix, grid: tuple[int, int], view: tuple[int, int], margin: int) -> np.ndarray:
    """(V, U, Y, X, C) float32 views: every layer shifted by ``-d * (v - vc, u - uc)``, composited "over"."""
    import torch

    from .shifts import cpu_threads, shift

    (V, U), (Y, X) = grid, view
    vc, uc = (V - 1) / 2.0, (U - 1) / 2.0
    # every layer's texture covers the whole canvas; its shape is an opacity mask
    texs = [torch.from_numpy(np.ascontiguousarray(L["tex"] if mix is None else L["tex"] @ mix, dtype=np.float32))
            for L in layers]
    alphas = [torch.from_numpy(L["alpha"][..., None]) for L in layers]
    H, W, C = texs[0].shape
    data = np.empty((V, U, Y, X, C), np.float32)
    img, tbuf, abuf = torch.empty((H, W, C)), torch.empty((H, W, C)), torch.empty((H, W, 1))
    # a shift is an x pass then a y pass, and the x shift depends on u alone: one x pass per column of views,
    # kept per layer, halves the work against two passes per view (the same sums)
    xtex = [torch.empty_like(t) for t in texs]
    xalpha = [None] + [torch.empty_like(a) for a in alphas[1:]]  # the background's alpha is never read
    with torch.no_grad(), cpu_threads():
        for u in range(U):
            for i, L in enumerate(layers):
                sx = -L["disparity"] * (u - uc)
                # colour: cubic (keeps textures sharp at sub-pixel shifts); edges: bilinear (no ringing)
                shift(xtex[i], texs[i], 0.0, sx, order=3)
                if i:
                    shift(xalpha[i], alphas[i], 0.0, sx, order=1)
            for v in range(V):
                for i, L in enumerate(layers):
                    sy = -L["disparity"] * (v - vc)
                    if i == 0:  # the opaque background fills the view
                        shift(img, xtex[0], sy, 0.0, order=3)
                    else:  # "over": the layer's colour where its shifted opacity says
                        img.lerp_(shift(tbuf, xtex[i], sy, 0.0, order=3), shift(abuf, xalpha[i], sy, 0.0, order=1))
                data[v, u] = img[margin : margin + Y, margin : margin + X].numpy()
    return data


def _ground_truth(layers: list[dict], data: np.ndarray, margin: int) -> np.ndarray:
    """The reference view's disparity: the frontmost layer where its shifted opacity is over 0.5."""
    import torch

    from .shifts import cpu_threads, shift

    V, U, Y, X = data.shape[:4]
    vc, uc = (V - 1) / 2.0, (U - 1) / 2.0
    rv, ru = LightField(data[:, :, :1, :1], metadata={}).center_index()
    gt = np.full((Y, X), layers[0]["disparity"], np.float32)
    with torch.no_grad(), cpu_threads():
        for L in layers[1:]:
            d = L["disparity"]
            a = torch.from_numpy(L["alpha"][..., None])
            s = shift(torch.empty_like(a), a, -d * (rv - vc), -d * (ru - uc), torch.empty_like(a))
            m = s[margin : margin + Y, margin : margin + X, 0].numpy() > 0.5
            gt[m] = d
    return gt


def synthetic_lightfield(seed: int = 0, views=9, size=256, n_layers: int = 5,
                         disparity_range: tuple[float, float] = (-2.0, 2.0), channels: int = 3, *, textures=None,
                         shapes=None, noise: float = 0.0, images=None) -> LightField:
    """A procedural light field with its ground-truth disparity.

    Parameters
    ----------
    seed
        Random seed; the same arguments give the same light field.
    views
        Grid size: V = U = ``views``, or a pair (V, U); at most ``MAX_VIEWS`` (17) per side.
    size
        View size: Y = X = ``size``, or a pair (Y, X); from 16 to ``MAX_SIZE`` (4096) pixels.
    n_layers
        Number of depth layers: one background plane and ``n_layers - 1`` objects.
    disparity_range
        (lo, hi) in pixels per view step; layer disparities are spread over it (stratified at random, the
        background the farthest, i.e. the lowest).
    channels
        1 (grey), 3 (RGB) or any other count (random mixtures of RGB).
    textures
        Names to draw textures from (default: all of ``BUNDLED_TEXTURES`` and ``PROCEDURAL_TEXTURES``).
    shapes
        Object shapes to draw from (default ``("disc", "rectangle", "blob")``).
    noise
        Standard deviation of Gaussian noise added to every view (0 = none).
    images
        Sharp photographs ((H, W) or (H, W, 3); uint8, uint16 or floats in [0, 1]) to texture every layer with
        instead of ``textures``: each layer gets a random crop of a random one, at its native scale.

    Returns
    -------
    LightField with ``data`` (V, U, Y, X, C) float32, ``disparity`` (Y, X) the reference view's ground truth,
    and metadata ``format="synthetic"``, ``disparity_range``, ``layers`` (disparity, texture, shape of each) and
    ``seed``.
    """
    V, U, Y, X = _check_grid(views, size)
    lo, hi = _check_numbers(n_layers, channels, disparity_range, noise)
    textures, shapes = _check_names(textures, shapes)
    photos = check_images(images) if images is not None else None

    rng = np.random.default_rng(seed)
    margin = math.ceil(max(abs(lo), abs(hi)) * max((V - 1) / 2.0, (U - 1) / 2.0)) + 2
    # layer disparities: stratified over the range, ascending (background first)
    n = int(n_layers)
    disp = [lo + (hi - lo) * (i + rng.uniform(0.15, 0.85)) / n for i in range(n)] if hi > lo else [lo] * n
    layers = _make_layers(rng, disp, textures, shapes, photos, (Y, X), margin)
    data = _render(layers, _colour_mix(channels, rng), (V, U), (Y, X), margin)
    if noise > 0:
        data += rng.normal(0.0, noise, size=data.shape).astype(np.float32)
    np.clip(data, 0.0, 1.0, out=data)
    layer_info = [{k: L[k] for k in ("disparity", "texture", "shape")} for L in layers]
    meta = {"source": f"synthetic_lightfield(seed={seed})", "format": "synthetic", "name": f"synthetic_{seed}",
            "seed": seed, "disparity_range": (lo, hi), "layers": layer_info, "noise": float(noise)}
    return LightField(data, disparity=_ground_truth(layers, data, margin), metadata=meta)
