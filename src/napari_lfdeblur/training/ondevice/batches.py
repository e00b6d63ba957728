"""A run's training data as an on-device source, and the batch of each step.

:func:`device_source` turns what :func:`~napari_lfdeblur.train` was given into a
:class:`~napari_lfdeblur.training.ondevice.DeviceSource`: procedural pairs (``"synthetic"``,
:class:`~napari_lfdeblur.training.ProceduralPairs`) are rendered on the device, light
fields in memory (:class:`~napari_lfdeblur.training.LightFieldPairs`) refocused there,
pair folders (:class:`~napari_lfdeblur.training.FolderPairs`) preloaded there, and a
:class:`~napari_lfdeblur.training.ConcatPairs` of these mixed in the proportions of their
lengths.  Anything else raises :class:`~napari_lfdeblur.TrainingError`
saying why.

:class:`DeviceBatches` is what the trainer iterates over instead of a data
loader: step ``s``'s batch is made from :func:`~napari_lfdeblur.training.ondevice.step_generator` of
(seed, s, rank), so resuming needs no state.
"""

from __future__ import annotations

import torch

from ...errors import TrainingError
from .base import DeviceSource, step_generator

__all__ = ["DeviceBatches", "device_source"]


def device_source(data, *, patch: int, device, max_mb: float = 4096) -> DeviceSource:
    """The on-device source of a training dataset (see the module docstring)."""
    from ..datasets import ConcatPairs, FolderPairs, LightFieldPairs, ProceduralPairs
    from .lightfields import LightFieldSource
    from .mix import MixSource
    from .pairs import PairSource
    from .procedural import ProceduralSource

    if isinstance(data, DeviceSource):
        if data.patch != patch:
            raise TrainingError(f"the on-device source makes {data.patch}-px patches, the run trains on {patch}")
        return data.to(device)
    if isinstance(data, ConcatPairs):
        parts = [(d, len(d)) for d in data.datasets]
        return MixSource([device_source(d, patch=patch, device=device, max_mb=max_mb) for d, _ in parts],
                         [w for _, w in parts])
    if getattr(data, "_index", None) is not None and not isinstance(data, FolderPairs):
        raise TrainingError(f"a subset of {type(data).__name__} cannot be made on the device; train with "
                            "data_on_device=False")
    if isinstance(data, ProceduralPairs):
        return ProceduralSource(patch=patch, views=data.views, size=max(data.size, patch),
                                disparity_range=data.disparity_range, layers=data.layers, apertures=data.apertures,
                                aperture_shape=data.aperture_shape, focus_margin=data.focus_margin, noise=data.noise,
                                images=data.images, pool=data.pool, refresh=data.refresh, augment=data.augment,
                                device=device)
    if isinstance(data, LightFieldPairs):
        return LightFieldSource(data, patch=patch, augment=data.augment, device=device)
    if isinstance(data, FolderPairs):
        return PairSource(data, patch=patch, augment=data.augment, device=device, max_mb=max_mb)
    raise TrainingError(f"{type(data).__name__} cannot be made on the training device (procedural pairs, light "
                        "fields in memory and pair folders can); train with data_on_device=False")


class DeviceBatches:
    """The batches of steps ``start .. total - 1`` of one process, made on the source's device."""

    def __init__(self, source: DeviceSource, batch: int, seed: int, start: int, total: int, rank: int = 0):
        self.source, self.batch, self.seed = source, int(batch), int(seed)
        self.start, self.total, self.rank = int(start), int(total), int(rank)

    def batch_of(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            self.source.at_step(step, self.batch, self.seed)
            return self.source.batch(self.batch, step_generator(self.seed, step, self.rank, self.source.device))

    def __iter__(self):
        for s in range(self.start, self.total):
            yield self.batch_of(s)

    def __len__(self) -> int:
        return max(0, self.total - self.start)
