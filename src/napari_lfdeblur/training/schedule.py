"""What each step of a run gets, as a function of the step alone: its learning rate (:func:`lr_at`) and its batch
(:class:`StepBatches`).  So resuming needs no scheduler or sampler state: a continued run gets the same learning
rates and the same pairs, step for step, as an uninterrupted one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import TrainConfig

__all__ = ["StepBatches", "collate", "lr_at"]

_DEFAULTS = TrainConfig()


# --------------------------------------------------------------------------- learning rate
def lr_at(i: int, total: int, lr: float, schedule: str = _DEFAULTS.schedule, *, warmup: int = _DEFAULTS.warmup,
          min_lr: float = _DEFAULTS.min_lr, milestones=_DEFAULTS.milestones, gamma: float = _DEFAULTS.gamma) -> float:
    """Learning rate of step ``i`` (0-based) of ``total`` (the defaults are :class:`TrainConfig`'s)."""
    if warmup and i < warmup:
        return lr * (i + 1) / warmup
    if schedule == "constant":
        return lr
    if schedule == "step":
        passed = sum(1 for m in milestones if i >= round(m * total))
        return lr * gamma**passed
    t = (i - warmup) / max(1, total - warmup)
    t = min(max(t, 0.0), 1.0)
    return lr * (min_lr + (1 - min_lr) * 0.5 * (1 + math.cos(math.pi * t)))


# --------------------------------------------------------------------------- data order
class StepBatches(torch.utils.data.Sampler):
    """Keys of every step's batch, a function of (seed, step, rank) only: draw ``g = (step * world + rank) * batch
    + b`` takes the ``g % n``-th item of a permutation of the dataset seeded by (seed, g // n) (epochs without
    replacement); the key ``(index, seed, g)`` also seeds the item's crop/augmentation/refocus."""

    def __init__(self, n: int, batch: int, seed: int, start: int, total: int, rank: int = 0, world: int = 1,
                 keyed: bool = True):
        self.n, self.batch, self.seed = n, batch, seed
        self.start, self.total, self.rank, self.world = start, total, rank, world
        self.keyed = keyed
        self._epoch, self._perm = -1, np.arange(0)

    def _index(self, g: int) -> int:
        e = g // self.n
        if e != self._epoch:
            self._perm = np.random.default_rng([self.seed & 0xFFFFFFFF, 104729, e]).permutation(self.n)
            self._epoch = e
        return int(self._perm[g % self.n])

    def keys(self, step: int) -> list:
        base = (step * self.world + self.rank) * self.batch
        draws = range(base, base + self.batch)
        return [(self._index(g), self.seed, g) if self.keyed else self._index(g) for g in draws]

    def __iter__(self):
        for s in range(self.start, self.total):
            yield self.keys(s)

    def __len__(self):
        return max(0, self.total - self.start)


def collate(items):
    return torch.stack([it[0] for it in items]), torch.stack([it[1] for it in items])
