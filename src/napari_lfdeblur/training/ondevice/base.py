"""What every on-device pair source shares: the interface, the per-step random generator, apertures, flips.

A source makes a whole batch of ``(blurred, sharp)`` pairs with torch
operations on the tensors' device: ``source.batch(n, generator)`` returns
two float32 tensors ``(n, 3, patch, patch)`` in [0, 1] on
``source.device``.  Everything random comes from the ``torch.Generator``
it is given, so a batch is a function of that generator's seed (see
:func:`~napari_lfdeblur.training.ondevice.step_generator`): a run is reproducible and resumes exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ...errors import TrainingError

__all__ = ["DeviceSource", "aperture_weights", "augment", "step_generator", "uniform"]


class DeviceSource:
    """Base class: ``batch(n, generator)`` -> ``(blurred, sharp)``, each (n, 3, patch, patch) float32 in [0, 1]."""

    patch: int
    device: torch.device = torch.device("cpu")

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def at_step(self, step: int, batch: int, seed: int) -> None:
        """Prepare what the batches of step ``step`` draw from (a pool of scenes, say); called before each
        step's batch.  A function of its arguments only: a resumed run gets the same state."""

    def to(self, device) -> DeviceSource:
        """This source with its tensors on ``device`` (moved once; batches are then made there)."""
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.describe()}; patch={self.patch}, device={self.device}>"


def step_generator(seed: int, step: int, rank: int, device) -> torch.Generator:
    """The generator of one step's batch on ``device``: seeded by (seed, step, rank) only, so that a resumed
    run draws the same pairs as an uninterrupted one and ranks of a multi-process run draw different ones."""
    s = int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 0x0D1CE, int(step), int(rank)]).generate_state(1)[0])
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(s)
    return g


def uniform(shape, lo, hi, gen: torch.Generator, device) -> torch.Tensor:
    """Uniform floats in [lo, hi) (``lo``/``hi`` numbers or tensors broadcasting with ``shape``)."""
    return lo + (hi - lo) * torch.rand(shape, generator=gen, device=device)


def check_patch(patch) -> int:
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < 8 or patch % 8:
        raise TrainingError(f"patch must be a multiple of 8 of at least 8 px, got {patch!r}")
    return int(patch)


def aperture_weights(offsets: torch.Tensor, radius: torch.Tensor, shape: str, mask=None) -> torch.Tensor:
    """(n, views) weights of synthetic apertures, each summing to 1.

    ``offsets`` (views, 2): each view's (dv, du) from the grid centre; ``radius`` (n,): the aperture in (0, 1]
    as in ``lightfield.refocus.aperture_weights`` (``"disk"``: views within ``radius``
    times the distance to a corner view; ``"square"``: within ``radius`` of the half-grid on each axis);
    ``mask`` (views,) bool: the views present.  The centre view is always kept.
    """
    off = offsets.abs()
    if shape == "disk":
        r = off.square().sum(-1).sqrt()
        rmax = float(r.max()) if r.numel() else 1.0
        sel = r[None] <= radius[:, None] * rmax + 1e-6
    elif shape == "square":
        half = off.amax(0).clamp(min=1e-9)
        sel = (off / half).amax(-1)[None] <= radius[:, None] + 1e-6
    else:
        raise TrainingError(f"aperture_shape must be 'disk' or 'square' for pairs made on the device, got {shape!r}")
    sel = sel | (off.sum(-1) == 0)[None]  # the centre view, whatever the aperture
    if mask is not None:
        sel = sel & mask[None]
    w = sel.to(torch.float32)
    return w / w.sum(-1, keepdim=True)


def augment(blur: torch.Tensor, sharp: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One of the 8 flips / 90-degree turns per pair (the same for both images), batched: (n, C, P, P)."""
    n = blur.shape[0]
    bits = torch.randint(0, 2, (3, n, 1, 1, 1), generator=gen, device=blur.device).bool()
    out = []
    for x in (blur, sharp):
        x = torch.where(bits[0], x.transpose(-1, -2), x)  # with the two flips: all 8 symmetries of a square
        x = torch.where(bits[1], x.flip(-1), x)
        x = torch.where(bits[2], x.flip(-2), x)
        out.append(x)
    return out[0], out[1]


def pixel_grid(patch: int, canvas: int, device) -> torch.Tensor:
    """(patch, patch, 2) ``grid_sample`` coordinates (x, y; align_corners=False) of the patch's pixels, the patch
    centred in a ``canvas`` x ``canvas`` image."""
    m = (canvas - patch) / 2
    c = (torch.arange(patch, device=device, dtype=torch.float32) + m + 0.5) * (2.0 / canvas) - 1.0
    gy, gx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack((gx, gy), -1)


def view_offsets(views: int, device) -> torch.Tensor:
    """(views * views, 2) (dv, du) of every view of an odd square grid from its centre view."""
    r = torch.arange(views, device=device, dtype=torch.float32) - (views - 1) / 2
    vv, uu = torch.meshgrid(r, r, indexing="ij")
    return torch.stack((vv.reshape(-1), uu.reshape(-1)), -1)


def effective_views(w: torch.Tensor) -> torch.Tensor:
    """(n,) the number of equally weighted views giving the same noise reduction as weights ``w`` (n, views)."""
    return 1.0 / w.square().sum(-1).clamp(min=1e-12)


def ceil_px(x: float) -> int:
    return int(math.ceil(x - 1e-9))
