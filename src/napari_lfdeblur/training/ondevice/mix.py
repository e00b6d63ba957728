"""Several on-device sources as one: each pair of a batch comes from source ``k`` with probability ``p[k]``."""

from __future__ import annotations

import torch

from ...errors import TrainingError
from .base import DeviceSource

__all__ = ["MixSource"]


class MixSource(DeviceSource):
    """Pairs from ``sources`` in proportions ``weights`` (as a
    :class:`~napari_lfdeblur.training.ConcatPairs` of datasets whose lengths are the weights draws them)."""

    def __init__(self, sources, weights):
        self.sources = list(sources)
        w = torch.as_tensor([float(x) for x in weights], dtype=torch.float32)
        if not self.sources or len(w) != len(self.sources) or not bool((w >= 0).all()) or float(w.sum()) <= 0:
            raise TrainingError("MixSource needs sources and as many non-negative weights, not all zero")
        patches = {s.patch for s in self.sources}
        if len(patches) != 1:
            raise TrainingError(f"the mixed sources make patches of different sizes {sorted(patches)}")
        self.patch = patches.pop()
        self.p = w / w.sum()
        self.device = self.sources[0].device
        self.to(self.device)

    def to(self, device) -> MixSource:
        self.device = torch.device(device)
        self.sources = [s.to(device) for s in self.sources]
        self._p = self.p.to(self.device)
        return self

    def at_step(self, step: int, batch: int, seed: int) -> None:
        for s in self.sources:
            s.at_step(step, batch, seed)

    def describe(self) -> str:
        return " + ".join(f"{100 * float(p):.0f} % {s.describe()}" for s, p in zip(self.sources, self.p))

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pick = torch.multinomial(self._p, n, replacement=True, generator=gen)
        counts = torch.bincount(pick, minlength=len(self.sources)).tolist()  # one small copy to the host
        parts = [s.batch(c, gen) for s, c in zip(self.sources, counts) if c]
        return torch.cat([b for b, _ in parts]), torch.cat([s for _, s in parts])
