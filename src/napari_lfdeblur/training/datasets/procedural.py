"""Pairs from procedural light fields (:func:`~napari_lfdeblur.lightfield.synthetic.synthetic_lightfield`) with
random seeds: an endless supply of scenes (:class:`ProceduralPairs`)."""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

from ...errors import TrainingError
from .base import PairDataset
from .lightfields import _check_apertures, _LFSampler, _one_thread, _refocus_margin

__all__ = ["ProceduralPairs"]

#: scenes are this much wider than their crops by default: the refocus border stays outside the crop
_BORDER = 96


class ProceduralPairs(PairDataset):
    """Pairs from procedural light fields with random seeds, made on the fly.

    Scenes are ``views`` x ``views`` grids of ``size`` px (default: patch + 96) with 3 to 7 layers (``layers``) at
    disparities in ``disparity_range``; the focus is drawn from that range widened by ``focus_margin`` of its
    width on each side.  Dense grids and small disparities keep the synthetic-aperture blur smooth: a focus error
    of ``d`` px per view step puts the views' copies ``d`` px apart (a blur of about ``d * (views - 1)`` px), and
    above ~1.5 px the blur shows discrete copies, hence the default 11x11 views and +-1 px.  Scenes are kept as
    uint8 (11x11 views of 224 px: 18 MB each).

    ``images`` (sharp photographs, e.g. from the kind of camera or microscope you will deblur) texture the layers
    instead of the bundled textures: the pairs then carry those images' own detail, noise and colours.

    ``length`` is a virtual epoch (the supply is endless).  Training draws (keys ``(i, seed, draw)``) pick one of
    ``pool`` scene slots; a slot gets a new scene every ``refresh`` draws (staggered between slots, so one scene is
    rendered every ``refresh / pool`` draws, about 0.3-1 s each on a CPU).  A plain int key ``i`` gives item ``i``
    its own scene and a fixed crop (what :meth:`heldout` validation sets use); those items are computed once and
    kept when ``length <= 256``.
    """

    def __init__(self, *, length: int = 100_000, patch=128, crop=None, augment=None, seed: int = 0,
                 views: int = 11, size: int | None = None, disparity_range=(-1.0, 1.0), layers=(3, 7),
                 apertures=(0.3, 1.0), aperture_shape="disk", focus_margin: float = 0.1, pool: int = 8,
                 refresh: int = 256, noise: float = 0.0, images=None, signed: bool = False):
        super().__init__(patch=patch, crop=crop, augment=augment, seed=seed, signed=signed)
        from ...lightfield.synthetic import MAX_SIZE, MAX_VIEWS, check_images

        self.length = int(length)
        if images is not None:
            try:
                images = check_images(images)
            except Exception as e:
                raise TrainingError(f"ProceduralPairs: {e}") from e
        self.images = images
        self.views = int(views)
        self.size = int(size) if size is not None else min((self.patch or 128) + _BORDER, MAX_SIZE)
        # said now, not by the first scene rendered in the middle of a run
        if self.views > MAX_VIEWS or self.size > MAX_SIZE:
            raise TrainingError(f"ProceduralPairs: views must be from 3 to {MAX_VIEWS} and size at most {MAX_SIZE} "
                                f"px, got views={self.views}, size={self.size}")
        self.disparity_range = (float(disparity_range[0]), float(disparity_range[1]))
        self.layers = (int(layers[0]), int(layers[1]))
        self.apertures = _check_apertures(apertures)
        self.aperture_shape = aperture_shape
        self.focus_margin = float(focus_margin)
        self.pool = max(1, int(pool))
        self.refresh = max(1, int(refresh))
        self.noise = float(noise)
        if self.length < 1 or self.views < 3 or not (self.layers[0] >= 1 and self.layers[1] >= self.layers[0]):
            raise TrainingError("ProceduralPairs: length >= 1, views >= 3 and 1 <= layers[0] <= layers[1] needed")
        if self.patch is not None and self.size < self.patch:
            raise TrainingError(f"ProceduralPairs: size ({self.size}) must be at least the patch ({self.patch})")
        self._lf_cache: OrderedDict[int, _LFSampler] = OrderedDict()
        self._items: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _after_options(self) -> None:
        self._items = {}  # fixed items depend on the crop

    def _n_items(self):
        return self.length

    def _name(self, j):
        return f"procedural{self.seed}#{j}"

    def _groups(self):
        return ["procedural"] * self.length

    def _item_size(self, j):
        return self.size, self.size

    def _item_source(self, j):
        return "procedural light fields"

    def scene_seed(self, slot: int, generation: int) -> int:
        """The synthetic_lightfield seed of a pool slot's ``generation``-th scene (slot -1: fixed items)."""
        return int(np.random.SeedSequence([self.seed & 0xFFFFFFFF, 7919, slot + 1, generation]).generate_state(1)[0])

    def _focus_range(self) -> tuple[float, float]:
        """The focus planes drawn: the disparity range widened by ``focus_margin`` of its width on each side."""
        lo, hi = self.disparity_range
        w = hi - lo
        return lo - self.focus_margin * w, hi + self.focus_margin * w

    def _scene(self, lf_seed: int) -> _LFSampler:
        s = self._lf_cache.get(lf_seed)
        if s is not None:
            self._lf_cache.move_to_end(lf_seed)
            return s
        from ...lightfield.synthetic import synthetic_lightfield

        n_layers = int(np.random.default_rng(lf_seed).integers(self.layers[0], self.layers[1] + 1))
        with _one_thread():
            lf = synthetic_lightfield(seed=lf_seed, views=self.views, size=self.size, n_layers=n_layers,
                                      disparity_range=self.disparity_range, noise=self.noise, images=self.images)
        s = _LFSampler(lf, f"procedural_{lf_seed}", focus=self._focus_range(), quantize=True)
        self._lf_cache[lf_seed] = s
        while len(self._lf_cache) > self.pool + 1:
            self._lf_cache.popitem(last=False)
        return s

    def _load(self, j, rng, draw):
        if draw < 0:  # a plain int key: item j has its own scene and a fixed crop
            hit = self._items.get(j)
            if hit is not None:
                return hit
            out = self._scene(self.scene_seed(-1, j)).sample(rng, self.patch, self.crop, self.apertures,
                                                             self.aperture_shape)
            if self.length <= 256:
                self._items[j] = out
            return out
        slot = int(rng.integers(self.pool))
        gen = (draw + slot * self.refresh // self.pool) // self.refresh
        return self._scene(self.scene_seed(slot, gen)).sample(rng, self.patch, self.crop, self.apertures,
                                                              self.aperture_shape)

    def heldout(self, n: int = 16, **kw) -> ProceduralPairs:
        """``n`` fixed validation items from scenes no training draw uses (another seed stream)."""
        new = copy.copy(self)
        new.length = int(n)
        new.seed = self.seed + 1_000_003
        new._lf_cache = OrderedDict()
        new._items = {}
        new._index = None
        if kw:
            new = new.options(**kw)
        # these scenes are rendered for validation alone: a crop larger than the training scenes gets scenes made
        # to hold it, with the border refocusing reads, not a smaller scene padded to the crop
        if new.patch is not None and new.crop != "full" and new.patch > new.size:
            from ...lightfield.synthetic import MAX_SIZE

            border = _refocus_margin(self._focus_range(), (self.views - 1) // 2)  # the grid's largest view offset
            new.size = min(new.patch + 2 * border, MAX_SIZE)
        return new

    def describe(self) -> str:
        lo, hi = self.disparity_range
        n = len(self.images) if self.images is not None else 0
        tex = f", textured with {n} of your image{'s' if n != 1 else ''}" if n else ""
        return (f"procedural light fields on the fly ({self.views}x{self.views} views, {self.size}px, disparity "
                f"{lo:+.2f}..{hi:+.2f}, apertures {self.apertures[0]:.2f}-{self.apertures[1]:.2f}{tex}, "
                f"seed {self.seed})")

