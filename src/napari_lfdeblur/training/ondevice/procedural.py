"""Procedural light-field pairs made on the training device, a whole batch at a time.

The physics of :func:`~napari_lfdeblur.synthetic_lightfield`
and :func:`~napari_lfdeblur.refocus`, in batched torch operations:

- a scene is a textured background plane and up to ``layers[1] - 1``
  textured objects (discs, rotated rectangles, wobbly blobs) in front, each
  at its own disparity ``d`` (stratified over ``disparity_range``, the
  nearer the larger);
- view ``(v, u)`` of a layer at disparity ``d``, offset ``o = (v - vc, u - uc)``
  from the centre view, is the layer sampled at ``y + d * o``; refocusing at
  ``f`` shifts the view back by ``f * o`` and averages over the aperture, so
  the blurred image is ``sum_o w[o] * over_l(layer_l(y + (d_l - f) * o))``
  (layers composited "over", back to front, in each view before averaging:
  occlusion edges blur as in a real light field) and the sharp image is the
  centre view (``o = 0``: the layers unshifted);
- everything random (textures, shapes, disparities, focus, aperture, the
  scene's crop) is drawn per pair from the step's generator.

Each pair is its own scene, rendered at the patch size plus the border its
largest shift needs: the "random crop" is drawn as the scene's offset in a
virtual ``size`` x ``size`` view, which sets the objects' scale as in
:class:`~napari_lfdeblur.training.ProceduralPairs`.  A view is one ``grid_sample`` per
layer for the whole batch (views stacked along the height), in chunks of
views that bound the memory.  Textures: crops of images bundled with
scikit-image (rescaled, tinted when grey), multi-scale noise, stripes and
checkers, or your own sharp photographs (``images``, at their native scale).

Differences from the numpy path, none of which changes the physics: the
views are sampled bilinearly (the numpy path shifts colour with cubic
convolution), object edges are a 1-px ramp instead of a hard mask shifted
bilinearly, and the texture contrast stretch uses mean +- 2.33 standard
deviations instead of the 1-99 percentiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import TrainingError
from .base import (
    DeviceSource,
    aperture_weights,
    augment,
    ceil_px,
    check_patch,
    effective_views,
    pixel_grid,
    uniform,
    view_offsets,
)

__all__ = ["ProceduralSource", "Scene"]

#: texture kinds: 0 an image crop (bundled or yours), 1 noise, 2 stripes, 3 checker
_IMAGE, _NOISE, _STRIPES, _CHECKER = range(4)
#: object shapes: 0 disc, 1 rectangle, 2 blob
_SHAPES = 3


@dataclass
class Scene:
    """One batch's scenes before rendering (what a test may change): ``rgba`` (n, L, 4, H, W) premultiplied
    layers on the canvas, back to front; ``disparity`` (n, L); ``focus`` (n,); ``weights`` (n, views) of the
    apertures."""

    rgba: torch.Tensor
    disparity: torch.Tensor
    focus: torch.Tensor
    weights: torch.Tensor


def _texture_bank(images, side: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Texture images as one uint8 tensor (K, 3, H, W) and a (K,) "grey" flag.  ``side``: each image is
    centre-cropped square and resized to it (the bundled images); None: kept at native scale (yours), all cut to
    the smallest height and width among them."""
    from ...io.pixels import grey_or_rgb

    arrs = []
    for k, img in enumerate(images):
        a = np.asarray(img)
        g = grey_or_rgb(a)
        if g is None:
            raise TrainingError(f"images[{k}] must be a greyscale or RGB(A) image (H, W[, C]), got shape {a.shape}")
        if g.dtype.kind == "f":
            g = np.clip(g, 0, 1) * 255
        elif g.dtype != np.uint8:
            g = g.astype(np.float64) * (255.0 / np.iinfo(g.dtype).max)
        g = np.asarray(np.round(g), np.uint8)
        if g.ndim == 2:
            g = np.repeat(g[..., None], 3, -1)
        arrs.append(g)
    if not arrs:
        raise TrainingError("images must not be empty: give at least one sharp image, or None")
    if side is not None:
        from skimage.transform import resize

        out = []
        for a in arrs:
            h, w = a.shape[:2]
            s = min(h, w)
            a = a[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
            out.append(np.round(resize(a, (side, side), order=1, anti_aliasing=True, preserve_range=True)))
        arrs = [np.asarray(a, np.uint8) for a in out]
    else:
        h, w = min(a.shape[0] for a in arrs), min(a.shape[1] for a in arrs)
        arrs = [a[:h, :w] for a in arrs]
    t = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).contiguous()
    grey = torch.tensor([bool((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()) for a in arrs])
    return t, grey


class ProceduralSource(DeviceSource):
    """Batches of procedural light-field pairs rendered on ``device`` (see the module docstring).

    The options mean what they mean for :class:`~napari_lfdeblur.training.ProceduralPairs`: ``views`` (odd) x ``views``
    grids, scenes of ``size`` px (default: patch + 96) of ``layers`` (min, max) layers at disparities in
    ``disparity_range``, focus drawn from that range widened by ``focus_margin`` of its width on each side
    (or from ``focus``, a (lo, hi) pair, when given), apertures in ``apertures``, Gaussian noise of standard
    deviation ``noise`` in every view (so less in the blurred image, an average of views), ``images`` to
    texture the layers with instead of the bundled textures.  ``view_chunk_mb`` bounds the memory of one chunk
    of views being rendered.

    ``pool=0`` renders a new scene for every pair.  With ``pool`` > 0 (as
    :class:`~napari_lfdeblur.training.ProceduralPairs` does), the source keeps ``pool`` scenes rendered as light fields
    (every view of a ``size``-px scene plus the refocus border, uint8, on the device) and cuts each pair from
    one of them: a random slot, window, focus and aperture, refocused from the stored views (one
    ``grid_sample`` per view instead of one per layer and view), with one of the 8 flips/turns
    (``augment``).  A slot gets a new scene every ``refresh`` draws, staggered between the slots, so a scene
    is rendered every ``refresh / pool`` draws; :meth:`at_step` brings the pool to a step's state, so the
    pairs remain a function of (seed, step, rank).
    """

    def __init__(self, *, patch: int = 128, views: int = 11, size: int | None = None, disparity_range=(-1.0, 1.0),
                 layers=(3, 7), apertures=(0.3, 1.0), aperture_shape: str = "disk", focus_margin: float = 0.1,
                 focus=None, noise: float = 0.0, images=None, pool: int = 0, refresh: int = 256, augment: bool = True,
                 device="cpu", view_chunk_mb: float | None = None, _bank=None):
        from ..datasets.lightfields import _check_apertures

        self.patch = check_patch(patch)
        self.views = int(views)
        if self.views < 3 or self.views % 2 == 0:
            raise TrainingError(f"views must be odd and at least 3 for pairs made on the device (the sharp image is "
                                f"the exact centre view), got {views!r}")
        self.size = int(size) if size is not None else self.patch + 96
        if self.size < self.patch:
            raise TrainingError(f"size ({self.size}) must be at least the patch ({self.patch})")
        lo, hi = (float(v) for v in disparity_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise TrainingError(f"disparity_range must be a finite (lo, hi) with lo <= hi, got {disparity_range!r}")
        self.disparity_range = (lo, hi)
        self.layers = (int(layers[0]), int(layers[1]))
        if not 1 <= self.layers[0] <= self.layers[1]:
            raise TrainingError(f"layers must be (min, max) with 1 <= min <= max, got {layers!r}")
        self.apertures = _check_apertures(apertures)
        if aperture_shape not in ("disk", "square"):
            raise TrainingError(f"aperture_shape must be 'disk' or 'square' for pairs made on the device, got "
                                f"{aperture_shape!r}")
        self.aperture_shape = aperture_shape
        w = hi - lo
        self.focus = (lo - focus_margin * w, hi + focus_margin * w) if focus is None else \
            tuple(float(v) for v in focus)
        if not self.focus[0] <= self.focus[1]:
            raise TrainingError(f"focus must be (lo, hi) with lo <= hi, got {focus!r}")
        self.noise = float(noise)
        if not (self.noise >= 0 and math.isfinite(self.noise)):
            raise TrainingError(f"noise must be >= 0, got {noise!r}")
        self.view_chunk_mb = view_chunk_mb
        vc = (self.views - 1) / 2
        # the largest shift of any layer in any view, in px (diagonal views shift on both axes, each by this)
        reach = max(abs(a - b) for a in (lo, hi) for b in self.focus) * vc
        self.margin = ceil_px(reach) + 2
        self.canvas = self.patch + 2 * self.margin
        self.photos = images is not None
        if _bank is not None:  # the pool's renderer shares its owner's textures
            self.bank, self.grey = _bank
        elif images is None:
            from ...lightfield.synthetic import BUNDLED_TEXTURES, bundled_texture

            # bundled images are crops of 45-100 % of the bank side mapped onto the scene: a side of
            # size / 0.7 samples them at about their own scale on average
            self.bank, self.grey = _texture_bank([bundled_texture(name) for name in BUNDLED_TEXTURES],
                                                 ceil_px(self.size / 0.7) + 2)
        else:
            self.bank, self.grey = _texture_bank(images, None)
        if self.photos and min(self.bank.shape[-2:]) < self.canvas:
            raise TrainingError(f"images must be at least {self.canvas} px on each side (the patch plus the blur's "
                                f"border), got {tuple(self.bank.shape[-2:])}")
        self.pool, self.refresh, self.augment = max(0, int(pool)), max(1, int(refresh)), bool(augment)
        self._scenes = None
        if self.pool:
            # the pool's light fields: views of the size-px scene plus the refocus border, rendered (in focus at
            # disparity 0) by a source of the same scenes whose "patch" is that view
            fmax = max(abs(f) for f in self.focus)
            self.border = ceil_px(fmax * vc) + 1
            side = self.size + 2 * self.border
            side += -side % 8
            self._scenes = ProceduralSource(
                patch=side, views=self.views, size=side, disparity_range=disparity_range, layers=layers,
                apertures=(1.0, 1.0), focus=(0.0, 0.0), images=images, device="cpu", view_chunk_mb=view_chunk_mb,
                _bank=(self.bank, self.grey))
            self.view_side = side
            if self.photos and min(self.bank.shape[-2:]) < self._scenes.canvas:
                raise TrainingError(f"images must be at least {self._scenes.canvas} px on each side (a scene of "
                                    f"{self.size} px plus the borders of its views), got "
                                    f"{tuple(self.bank.shape[-2:])}")
            self._slots = torch.zeros((self.pool, self.views**2, 3, side, side), dtype=torch.uint8)
            self._generation = [-1] * self.pool
            self._seed = None
        self.device = torch.device("cpu")
        self._derived()
        self.to(device)

    def _derived(self):
        dev = self.device
        self.offsets = view_offsets(self.views, dev)
        self.grid = pixel_grid(self.patch, self.canvas, dev)
        c = torch.arange(self.canvas, device=dev, dtype=torch.float32)
        self.yy, self.xx = torch.meshgrid(c, c, indexing="ij")

    def to(self, device) -> ProceduralSource:
        device = torch.device(device)
        if device != self.device:
            self.device = device
            self.bank = self.bank.to(device)
            self.grey = self.grey.to(device)
            self._derived()
            if self._scenes is not None:
                self._scenes.to(device)
                self._scenes.bank, self._scenes.grey = self.bank, self.grey
                self._slots = self._slots.to(device)
        return self

    def describe(self) -> str:
        lo, hi = self.disparity_range
        tex = f", textured with {self.bank.shape[0]} of your images" if self.photos else ""
        pool = f", a pool of {self.pool} scenes renewed every {self.refresh} draws" if self.pool else ""
        return (f"procedural light fields made on {self.device} ({self.views}x{self.views} views, scenes of "
                f"{self.size} px, disparity {lo:+.2f}..{hi:+.2f}, apertures {self.apertures[0]:.2f}-"
                f"{self.apertures[1]:.2f}{tex}{pool})")

    # ---------------------------------------------------------------- the pool of scenes
    def at_step(self, step: int, batch: int, seed: int) -> None:
        """Bring the pool to what step ``step`` (of batches of ``batch``) uses: slot ``k`` holds scene number
        ``(draw + k * refresh // pool) // refresh`` of its own stream, ``draw = step * batch`` (as
        :class:`~napari_lfdeblur.training.ProceduralPairs` staggers its pool), so the pool too is a function of
        the step."""
        if not self.pool:
            return
        if seed != self._seed:
            self._seed, self._generation = seed, [-1] * self.pool
        draw = int(step) * int(batch)
        for k in range(self.pool):
            g = (draw + k * self.refresh // self.pool) // self.refresh
            if g != self._generation[k]:
                self._slots[k] = self.render_lightfield(self._scene_generator(seed, k, g))
                self._generation[k] = g

    def _scene_generator(self, seed: int, slot: int, generation: int) -> torch.Generator:
        s = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x5CE7E, slot, generation]).generate_state(1)[0])
        g = torch.Generator(device=self.device)
        g.manual_seed(s)
        return g

    def render_lightfield(self, gen: torch.Generator) -> torch.Tensor:
        """One scene's views (views * views, 3, side, side) as uint8 (the view side: ``size`` plus the refocus
        border), row by row from the top-left view: a light field to cut pairs from."""
        src = self._scenes
        scene = src.draw(1, gen)
        n_views = self.views**2
        out = torch.empty((n_views, 3, src.patch, src.patch), dtype=torch.uint8, device=self.device)
        for views, img in src._views(scene, torch.arange(n_views, device=self.device)):
            out[views] = torch.round(img[0].clamp(0, 1) * 255).to(torch.uint8).transpose(0, 1)
        return out

    def _from_pool(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Pairs cut from the pool's light fields: a random slot, window, focus and aperture each."""
        if self._seed is None:
            raise TrainingError("the pool of scenes is empty: call at_step() first (DeviceBatches does)")
        dev, P, B = self.device, self.patch, self.border
        Q = P + 2 * B  # the window plus the refocus border
        slot = torch.randint(0, self.pool, (n,), generator=gen, device=dev)
        y0, x0 = torch.randint(0, self.view_side - Q + 1, (2, n), generator=gen, device=dev)
        focus = uniform((n,), *self.focus, gen, dev)
        w = aperture_weights(self.offsets, uniform((n,), *self.apertures, gen, dev), self.aperture_shape)
        centre = self.views**2 // 2
        ar = torch.arange(Q, device=dev)
        rows = (y0[:, None] + ar)[:, None, None, :, None]
        cols = (x0[:, None] + ar)[:, None, None, None, :]
        ch = torch.arange(3, device=dev)[None, None, :, None, None]
        sharp = self._slots[slot[:, None, None, None], centre, ch[:, 0], rows[:, 0, :, B : B + P],
                            cols[:, 0, :, :, B : B + P]].to(torch.float32) / 255
        blur = torch.zeros((n, 3, P, P), device=dev)
        used = (w > 0).any(0).nonzero().squeeze(1)
        per_view = n * 4 * (3 * Q * Q + 3 * P * P + 2 * P * P)
        chunk = max(1, int((self.view_chunk_mb or (1024 if dev.type == "cuda" else 128)) * 2**20 // per_view))
        g = pixel_grid(P, Q, dev)  # the window's pixels, centred in the bordered window
        for i in range(0, used.numel(), chunk):
            views = used[i : i + chunk]
            V = views.numel()
            win = self._slots[slot[:, None, None, None, None], views[None, :, None, None, None], ch, rows, cols]
            # refocused: out(y) = view(y - focus * offset)
            s = -focus[:, None, None] * self.offsets[views].flip(-1)[None] * (2.0 / Q)  # (n, V, 2) as (x, y)
            grid = (g[None, None] + s[:, :, None, None, :]).view(n * V, P, P, 2)
            smp = F.grid_sample(win.view(n * V, 3, Q, Q).to(torch.float32) / 255, grid, mode="bilinear",
                                padding_mode="border", align_corners=False).view(n, V, 3, P, P)
            blur += torch.einsum("nvchw,nv->nchw", smp, w[:, views])
        if self.noise > 0:
            sharp = sharp + self.noise * torch.randn(sharp.shape, generator=gen, device=dev)
            blur = blur + self.noise / effective_views(w).sqrt()[:, None, None, None] * torch.randn(
                blur.shape, generator=gen, device=dev)
        blur, sharp = blur.clamp_(0, 1), sharp.clamp_(0, 1)
        return augment(blur, sharp, gen) if self.augment else (blur, sharp)

    # ---------------------------------------------------------------- drawing the scenes
    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pool:
            return self._from_pool(n, gen)
        return self.render(self.draw(n, gen), gen)

    def draw(self, n: int, gen: torch.Generator) -> Scene:
        """``n`` scenes drawn from ``gen``, ready for :meth:`render` (a test may change their focus first)."""
        dev, L = self.device, self.layers[1]
        lo, hi = self.disparity_range
        count = torch.randint(self.layers[0], L + 1, (n, 1), generator=gen, device=dev)
        idx = torch.arange(L, device=dev)[None].expand(n, L)
        # stratified over the range, ascending: layer 0 (the background) the farthest
        disp = lo + (hi - lo) * (idx + uniform((n, L), 0.15, 0.85, gen, dev)) / count
        present = idx < count
        tex = self._textures(n * L, gen).view(n, L, 3, self.canvas, self.canvas)
        alpha = self._shapes(n, L, gen) * present[..., None, None].to(torch.float32)
        alpha[:, 0] = 1.0  # the background plane covers everything
        rgba = torch.cat((tex * alpha[:, :, None], alpha[:, :, None]), 2)
        focus = uniform((n,), *self.focus, gen, dev)
        radius = uniform((n,), *self.apertures, gen, dev)
        weights = aperture_weights(self.offsets, radius, self.aperture_shape)
        return Scene(rgba=rgba, disparity=disp, focus=focus, weights=weights)

    def _shapes(self, n: int, L: int, gen) -> torch.Tensor:
        """(n, L, H, W) opacity of each layer's object: a disc, rectangle or blob with a 1-px edge ramp."""
        dev, S, P = self.device, self.size, self.patch
        shape = (n, L, 1, 1)
        # the patch is a random crop of an S x S view; the object's centre lies in the view's middle 70 %
        crop = uniform((n, 1, 1, 1, 2), 0, S - P, gen, dev)
        centre = uniform((n, L, 1, 1, 2), 0.15 * S, 0.85 * S, gen, dev) - crop + self.margin
        radius = uniform(shape, 0.12 * S, 0.3 * S, gen, dev)
        dy, dx = self.yy - centre[..., 0], self.xx - centre[..., 1]
        r = torch.sqrt(dy * dy + dx * dx)
        th = uniform(shape, 0, math.pi, gen, dev)
        p = dx * torch.cos(th) + dy * torch.sin(th)
        q = -dx * torch.sin(th) + dy * torch.cos(th)
        ang = torch.atan2(dy, dx)
        wobble = 1.0 + sum(uniform(shape, 0.03, 0.14, gen, dev) * torch.cos(k * ang + uniform(shape, 0, 2 * math.pi,
                                                                                                 gen, dev))
                           for k in range(2, 6))
        # signed distance-like "inside" of each shape, in px
        inside = torch.stack((radius - r,
                              torch.minimum(radius * uniform(shape, 0.6, 1.0, gen, dev) - p.abs(),
                                            radius * uniform(shape, 0.35, 0.9, gen, dev) - q.abs()),
                              radius * wobble - r))
        kind = torch.randint(0, _SHAPES, (1, n, L, 1, 1), generator=gen, device=dev)
        return (torch.gather(inside, 0, kind.expand(1, *inside.shape[1:]))[0] + 0.5).clamp_(0, 1)

    def _textures(self, m: int, gen) -> torch.Tensor:
        """(m, 3, H, W) textures in [0, 1]: crops of your images, or of the bundled ones 4 times in 5 (as 12
        bundled images among 15 kinds are) and else noise, stripes or checkers."""
        dev = self.device
        kind = torch.where(torch.rand(m, generator=gen, device=dev) < 0.8, _IMAGE,
                           torch.randint(1, 4, (m,), generator=gen, device=dev))
        if self.photos:  # as synthetic_lightfield(images=...): every layer wears one of them
            kind.fill_(_IMAGE)
        out = torch.empty((m, 3, self.canvas, self.canvas), device=dev)
        # every kind is drawn for every texture (the draws then do not depend on the kinds) and made for its own
        c0 = uniform((m, 3, 1, 1), 0.05, 0.95, gen, dev)
        c1 = uniform((m, 3, 1, 1), 0.05, 0.95, gen, dev)
        for k, make in ((_IMAGE, self._image_tex), (_NOISE, self._noise_tex), (_STRIPES, self._stripes_tex),
                        (_CHECKER, self._checker_tex)):
            rows = (kind == k).nonzero().squeeze(1)
            tex = make(m, gen, c0, c1)  # drawn for all, so that the random stream does not depend on the kinds
            out[rows] = tex[rows]
        return out.clamp_(0, 1)

    def _image_tex(self, m, gen, c0, c1):
        dev, H = self.device, self.canvas
        K, _, bh, bw = self.bank.shape
        k = torch.randint(0, K, (m,), generator=gen, device=dev)
        flip = torch.rand(m, generator=gen, device=dev) < 0.5
        if self.photos:  # your images at their native scale: integer crops, no resampling
            y0 = torch.randint(0, bh - H + 1, (m,), generator=gen, device=dev)
            x0 = torch.randint(0, bw - H + 1, (m,), generator=gen, device=dev)
            ar = torch.arange(H, device=dev)
            rows = (y0[:, None] + ar)[:, None, :, None]
            cols = torch.where(flip[:, None], x0[:, None] + H - 1 - ar, x0[:, None] + ar)[:, None, None, :]
            ch = torch.arange(3, device=dev)[None, :, None, None]
            return self.bank[k[:, None, None, None], ch, rows, cols].to(torch.float32) / 255
        # a bundled image: a crop of 45-100 % of its side (the scene's S px map onto it), stretched
        f = uniform((m,), 0.45, 1.0, gen, dev)
        half = f * (H / self.size)  # half-extent of the canvas in the image's [-1, 1] coordinates
        cy = uniform((m,), -1, 1, gen, dev) * (1 - f).clamp(min=0)
        cx = uniform((m,), -1, 1, gen, dev) * (1 - f).clamp(min=0)
        theta = torch.zeros((m, 2, 3), device=dev)
        theta[:, 0, 0] = torch.where(flip, -half, half)
        theta[:, 0, 2] = cx
        theta[:, 1, 1] = half
        theta[:, 1, 2] = cy
        grid = F.affine_grid(theta, (m, 3, H, H), align_corners=False)
        # the bank as one wide image, each texture sampling its own tile: no copy of the bank per texture
        K1 = 1.0 / K
        grid = torch.stack(((grid[..., 0].clamp(-1, 1) * 0.5 + 0.5 + k[:, None, None]) * (2 * K1) - 1,
                            grid[..., 1].clamp(-1, 1)), -1)
        wide = self.bank.permute(1, 2, 0, 3).reshape(1, 3, bh, K * bw).to(torch.float32) / 255
        tex = F.grid_sample(wide, grid.reshape(1, m * H, H, 2), mode="bilinear", padding_mode="border",
                            align_corners=False).view(3, m, H, H).transpose(0, 1)
        grey = self.grey[k][:, None, None, None]
        g = self._stretch(tex.mean(1, keepdim=True), gen)
        return torch.where(grey, c0 + (c1 - c0) * g, self._stretch(tex, gen))

    def _stretch(self, tex, gen):
        """Map about the 1st-99th percentiles (mean -+ 2.33 sd) onto a random [lo, hi]: enough contrast."""
        m, dev = tex.shape[0], self.device
        mu = tex.mean((1, 2, 3), keepdim=True)
        sd = tex.std((1, 2, 3), keepdim=True).clamp(min=1e-3)
        lo = uniform((m, 1, 1, 1), 0.05, 0.3, gen, dev)
        hi = uniform((m, 1, 1, 1), 0.7, 0.95, gen, dev)
        return (lo + (tex - (mu - 2.33 * sd)) * (hi - lo) / (4.66 * sd)).clamp(0, 1)

    def _noise_tex(self, m, gen, c0, c1):
        """Noise at 5 scales (about 1, 2, 4, 8 and 16 px), the coarser louder, between two colours."""
        dev, H = self.device, self.canvas
        acc = torch.zeros((m, 3, H, H), device=dev)
        for k in range(5):
            cells = max(2, ceil_px(H / 2**k) + 1)
            n = torch.randn((m, 3, cells, cells), generator=gen, device=dev)
            acc += F.interpolate(n, size=(H, H), mode="bilinear", align_corners=True) * (2**k) ** 0.6
        acc = (acc - acc.mean((1, 2, 3), keepdim=True)) / acc.std((1, 2, 3), keepdim=True).clamp(min=1e-6)
        g = torch.sigmoid(1.5 * acc.mean(1, keepdim=True))
        return c0 + (c1 - c0) * g + 0.08 * acc

    def _fine(self, m, gen):
        n = torch.randn((m, 1, self.canvas, self.canvas), generator=gen, device=self.device)
        n = F.avg_pool2d(n, 3, 1, 1, count_include_pad=False)
        return 0.06 * n / n.std((1, 2, 3), keepdim=True).clamp(min=1e-6)

    def _oriented(self, m, gen, scale_lo, scale_hi):
        dev = self.device
        th = uniform((m, 1, 1, 1), 0, math.pi, gen, dev)
        s = uniform((m, 1, 1, 1), scale_lo, scale_hi, gen, dev)
        a = (self.xx * torch.cos(th) + self.yy * torch.sin(th)) / s
        b = (-self.xx * torch.sin(th) + self.yy * torch.cos(th)) / s
        return a, b

    def _stripes_tex(self, m, gen, c0, c1):
        a, _ = self._oriented(m, gen, 5.0, 20.0)
        phase = uniform((m, 1, 1, 1), 0, 2 * math.pi, gen, self.device)
        g = 0.5 + 0.5 * torch.sin(2 * math.pi * a + phase)
        return c0 + (c1 - c0) * g + self._fine(m, gen)

    def _checker_tex(self, m, gen, c0, c1):
        a, b = self._oriented(m, gen, 6.0, 20.0)
        g = torch.remainder(torch.floor(a) + torch.floor(b), 2)
        g = F.avg_pool2d(g, 3, 1, 1, count_include_pad=False)  # soften the edges a little, as the numpy path
        return c0 + (c1 - c0) * g + self._fine(m, gen)

    # ---------------------------------------------------------------- rendering
    def render(self, scene: Scene, gen: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(blurred, sharp) of ``scene``: (n, 3, patch, patch) float32 in [0, 1]; noise is drawn from ``gen``."""
        w = scene.weights
        P, M = self.patch, self.margin
        sharp = self._over(scene.rgba[..., M : M + P, M : M + P])
        blurred = torch.zeros_like(sharp)
        used = (w > 0).any(0).nonzero().squeeze(1)  # views outside every aperture are not rendered
        for views, img in self._views(scene, used):
            blurred += torch.einsum("ncvhw,nv->nchw", img, w[:, views])
        if self.noise > 0 and gen is not None:
            sharp = sharp + self.noise * torch.randn(sharp.shape, generator=gen, device=sharp.device)
            per = self.noise / effective_views(w).sqrt()[:, None, None, None]
            blurred = blurred + per * torch.randn(blurred.shape, generator=gen, device=blurred.device)
        return blurred.clamp_(0, 1), sharp.clamp_(0, 1)

    def _views(self, scene: Scene, used: torch.Tensor):
        """``(views, img)`` in chunks of the views ``used``: img (n, 3, len(views), patch, patch), each view of
        the scene refocused at its ``focus`` (the layers composited "over" in the view)."""
        rgba, disp, focus = scene.rgba, scene.disparity, scene.focus
        n = disp.shape[0]
        P, H = self.patch, self.canvas
        per_view = n * P * P * 4 * (3 + 4 + 2)  # bytes: the views' colour, one sampled layer, its grid
        budget = self.view_chunk_mb or (1024 if self.device.type == "cuda" else 128)
        chunk = max(1, int(budget * 2**20 // per_view))
        scale = 2.0 / H  # px -> grid_sample's [-1, 1] coordinates
        # layers no pair of the batch has (all transparent) are not rendered
        L = int((rgba[:, :, 3].flatten(2).amax(-1) > 0).any(0).nonzero().max()) + 1
        for i in range(0, used.numel(), chunk):
            views = used[i : i + chunk]
            V = views.numel()
            off = self.offsets[views].flip(-1) * scale  # (V, 2): (du, dv), grid_sample's (x, y) order
            img = None
            for layer in range(L):
                s = (disp[:, layer] - focus)[:, None, None] * off[None]  # (n, V, 2)
                grid = torch.add(self.grid[None, None], s[:, :, None, None, :])
                smp = F.grid_sample(rgba[:, layer], grid.view(n, V * P, P, 2), mode="bilinear",
                                    padding_mode="border", align_corners=False).view(n, 4, V, P, P)
                if img is None:
                    img = smp[:, :3].contiguous()
                else:  # "over": img * (1 - alpha) + premultiplied colour, in place
                    img.addcmul_(img, smp[:, 3:], value=-1).add_(smp[:, :3])
            yield views, img

    @staticmethod
    def _over(rgba: torch.Tensor) -> torch.Tensor:
        """Premultiplied (n, L, 4, H, W) layers composited back to front: (n, 3, H, W)."""
        img = rgba[:, 0, :3]
        for layer in range(1, rgba.shape[1]):
            img = img * (1 - rgba[:, layer, 3:]) + rgba[:, layer, :3]
        return img
