"""Pairs refocused on the training device from light fields held there (real captures, e.g. the Lytro plants).

Each light field's views (its largest odd sub-grid centred on the centre
view, as :func:`~napari_lfdeblur.make_pairs` uses) are
kept on the device as uint8.  A pair is a random window, focus disparity
and aperture: the blurred image is the aperture's average of the views
shifted by ``focus * (v - vc, u - uc)`` (:func:`~napari_lfdeblur.refocus`'s
convention), the sharp one the centre view; the focus range and the
window's border are those of :class:`~napari_lfdeblur.training.LightFieldPairs`.  All
the pairs of a batch drawn from one light field are one ``grid_sample``
per chunk of views.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...errors import TrainingError
from .base import DeviceSource, aperture_weights, augment, check_patch, uniform

__all__ = ["LightFieldSource"]


class _Field:
    """One light field on the device: views (N, 3, Y, X) uint8, their offsets (N, 2), the centre's index."""

    def __init__(self, sampler):
        import numpy as np

        from ...io.pixels import to_uint8

        V, U = sampler.grid
        mask = np.asarray(sampler.view_mask, bool)
        present = np.argwhere(mask)
        c = np.array([(V - 1) / 2, (U - 1) / 2])
        cv, cu = (int(v) for v in present[np.lexsort((present[:, 1], present[:, 0],
                                                      ((present - c) ** 2).sum(1)))[0]])
        rv, ru = min(cv, V - 1 - cv), min(cu, U - 1 - cu)  # the odd sub-grid around the centre view
        data = np.asarray(sampler.data)[cv - rv : cv + rv + 1, cu - ru : cu + ru + 1]
        mask = mask[cv - rv : cv + rv + 1, cu - ru : cu + ru + 1]
        if data.dtype != np.uint8:
            data = to_uint8(data)
        if data.shape[-1] == 1:
            data = np.repeat(data, 3, -1)
        data = data[..., :3]
        v, u = np.nonzero(mask)
        self.views = torch.from_numpy(np.ascontiguousarray(data[v, u])).permute(0, 3, 1, 2).contiguous()
        self.offsets = torch.tensor(np.stack((v - rv, u - ru), -1), dtype=torch.float32)
        self.centre = int(np.nonzero((v == rv) & (u == ru))[0][0])
        self.focus, self.margin, self.name = sampler.focus, sampler.margin, sampler.name
        self.shape = tuple(data.shape[2:4])

    def to(self, device):
        self.views, self.offsets = self.views.to(device), self.offsets.to(device)


class LightFieldSource(DeviceSource):
    """Pairs refocused on ``device`` from the light fields of a :class:`~napari_lfdeblur.training.LightFieldPairs` (its
    focus ranges, apertures and aperture shape), each light field drawn equally often."""

    def __init__(self, dataset, *, patch: int, augment: bool = True, device="cpu", view_chunk_mb: float | None = None):
        from ..datasets import LightFieldPairs

        if not isinstance(dataset, LightFieldPairs):
            raise TrainingError(f"expected LightFieldPairs, got {type(dataset).__name__}")
        self.patch = check_patch(patch)
        self.augment = bool(augment)
        self.apertures, self.aperture_shape = dataset.apertures, dataset.aperture_shape
        if not isinstance(self.aperture_shape, str):
            raise TrainingError("light-field pairs made on the device take aperture_shape 'disk' or 'square', not "
                                "an array of weights; train with data_on_device=False")
        self.fields = [_Field(s) for s in dataset._samplers]
        for f in self.fields:
            if min(f.shape) < self.patch:
                raise TrainingError(f"{f.name}: views of {f.shape[1]}x{f.shape[0]} px are smaller than the "
                                    f"{self.patch}-px patch")
        self.view_chunk_mb = view_chunk_mb
        self.device = torch.device("cpu")
        self.to(device)

    def to(self, device) -> LightFieldSource:
        device = torch.device(device)
        if device != self.device:
            self.device = device
            for f in self.fields:
                f.to(device)
        return self

    def describe(self) -> str:
        parts = ", ".join(f"{f.name} {f.views.shape[0]} views {f.shape[1]}x{f.shape[0]} focus {f.focus[0]:+.2f}.."
                          f"{f.focus[1]:+.2f}" for f in self.fields)
        return (f"light-field pairs refocused on {self.device} ({parts}; apertures {self.apertures[0]:.2f}-"
                f"{self.apertures[1]:.2f})")

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.device
        which = torch.randint(0, len(self.fields), (n,), generator=gen, device=dev)
        blur = torch.empty((n, 3, self.patch, self.patch), device=dev)
        sharp = torch.empty_like(blur)
        for k, f in enumerate(self.fields):
            rows = (which == k).nonzero().squeeze(1)
            if rows.numel():
                blur[rows], sharp[rows] = self._refocus(f, rows.numel(), gen)
        if self.augment:
            blur, sharp = augment(blur, sharp, gen)
        return blur, sharp

    def _refocus(self, f: _Field, n: int, gen):
        dev, P = self.device, self.patch
        Y, X = f.shape
        corner = []
        for size in (Y, X):  # the refocus border outside the window when there is room
            lo, hi = f.margin, size - f.margin - P
            if hi < lo:
                lo, hi = 0, size - P
            corner.append(torch.randint(lo, hi + 1, (n,), generator=gen, device=dev))
        y0, x0 = corner
        focus = uniform((n,), *f.focus, gen, dev)
        w = aperture_weights(f.offsets, uniform((n,), *self.apertures, gen, dev), self.aperture_shape)
        ar = torch.arange(P, device=dev, dtype=torch.float32)
        sharp = f.views[f.centre][:, y0[:, None, None] + ar.long()[None, :, None],
                                  x0[:, None, None] + ar.long()[None, None, :]].permute(1, 0, 2, 3)
        sharp = sharp.to(torch.float32) / 255
        # refocused view: out(y) = view(y - focus * offset); grid_sample coordinates of every (view, pair, pixel)
        py = (y0[:, None].float() + ar + 0.5)  # (n, P)
        px = (x0[:, None].float() + ar + 0.5)
        blur = torch.zeros((n, 3, P, P), device=dev)
        used = (w > 0).any(0).nonzero().squeeze(1)
        per_view = n * P * P * 4 * (3 + 3 + 2)
        chunk = max(1, int((self.view_chunk_mb or (1024 if dev.type == "cuda" else 128)) * 2**20 // per_view))
        for i in range(0, used.numel(), chunk):
            views = used[i : i + chunk]
            off = f.offsets[views]  # (V, 2)
            gy = (py[None] - focus[None, :, None] * off[:, 0, None, None]) * (2.0 / Y) - 1  # (V, n, P)
            gx = (px[None] - focus[None, :, None] * off[:, 1, None, None]) * (2.0 / X) - 1
            grid = torch.stack(torch.broadcast_tensors(gx[:, :, None, :], gy[:, :, :, None]), -1)  # (V, n, P, P, 2)
            src = f.views[views].to(torch.float32) / 255
            smp = F.grid_sample(src, grid.reshape(views.numel(), n * P, P, 2), mode="bilinear",
                                padding_mode="border", align_corners=False).view(views.numel(), 3, n, P, P)
            blur += torch.einsum("vcnhw,nv->nchw", smp, w[:, views])
        return blur.clamp_(0, 1), sharp
