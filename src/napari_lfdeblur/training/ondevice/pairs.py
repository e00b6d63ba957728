"""Real (blurred, sharp) pairs preloaded once onto the training device, cropped and flipped there.

A pair folder (:class:`~napari_lfdeblur.training.FolderPairs`, or a subset of one such as
:func:`~napari_lfdeblur.training.split` makes) is decoded once, with the dataset's own
options (exposure matching, a held-out band), and kept on the device as
uint8: 60 DPDD pairs of 1024x1024 take 360 MB.  A batch is then one gather
of random ``patch`` x ``patch`` windows and one of the 8 flips/turns per
pair, with no data-loader process and no copy from the host.
"""

from __future__ import annotations

import numpy as np
import torch

from ...errors import TrainingError
from .base import DeviceSource, augment, check_patch

__all__ = ["PairSource"]


def _uint8(t: torch.Tensor) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    return np.asarray(torch.round(t.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0))


class PairSource(DeviceSource):
    """The pairs of ``dataset`` on ``device``; ``batch(n, gen)`` draws ``n`` pairs (uniformly, with
    replacement), a random window of each and, with ``augment``, one of the 8 flips/turns.

    ``max_mb`` refuses datasets whose decoded pairs would take more (a clear error instead of running the
    device out of memory; ``data_on_device="auto"`` then keeps the data loader).
    """

    def __init__(self, dataset, *, patch: int, augment: bool = True, device="cpu", max_mb: float = 4096):
        from ..datasets import PairDataset
        from ..datasets.base import _pad_to

        if not isinstance(dataset, PairDataset):
            raise TrainingError(f"expected a pair dataset, got {type(dataset).__name__}")
        self.patch = check_patch(patch)
        self.augment = bool(augment)
        self.name = dataset.describe()
        full = dataset.options(patch=None, crop="full", augment=False, signed=False)
        n = len(full)
        if n == 0:
            raise TrainingError("the training data is empty")
        arrays, total = [], 0
        for i in range(n):
            blur, sharp = full[i]
            pair = [_pad_to(_uint8(blur), self.patch), _pad_to(_uint8(sharp), self.patch)]
            total += pair[0].nbytes * 2
            if total > max_mb * 2**20:
                raise TrainingError(f"{self.name}: its pairs take more than {max_mb:g} MB decoded, too much to keep on "
                                    "the training device; train with data_on_device=False (the data loader reads "
                                    "them as they are needed)")
            arrays.append(pair)
        self.sizes = torch.tensor([a[0].shape[:2] for a in arrays])  # (n, 2): each pair's (H, W)
        H, W = (int(v) for v in self.sizes.amax(0))
        stack = np.zeros((n, 2, H, W, 3), np.uint8)  # pairs of other sizes padded; windows stay inside their own
        for i, (b, s) in enumerate(arrays):
            stack[i, 0, : b.shape[0], : b.shape[1]] = b
            stack[i, 1, : s.shape[0], : s.shape[1]] = s
        self.pairs = torch.from_numpy(stack).permute(0, 1, 4, 2, 3).contiguous()  # (n, 2, 3, H, W)
        self.device = torch.device("cpu")
        self.to(device)

    def __len__(self) -> int:
        return self.pairs.shape[0]

    @property
    def nbytes(self) -> int:
        return self.pairs.numel()

    def to(self, device) -> PairSource:
        device = torch.device(device)
        if device != self.device:
            self.device = device
            self.pairs = self.pairs.to(device)
            self.sizes = self.sizes.to(device)
        return self

    def describe(self) -> str:
        return f"{self.name}, {len(self)} pairs kept on {self.device} ({self.nbytes / 2**20:.0f} MB)"

    def batch(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        dev, P = self.device, self.patch
        i = torch.randint(0, len(self), (n,), generator=gen, device=dev)
        room = (self.sizes[i] - P + 1).to(torch.float32)  # (n, 2) window positions per axis
        y0, x0 = (torch.rand((n, 2), generator=gen, device=dev) * room).long().unbind(-1)
        ar = torch.arange(P, device=dev)
        rows = (y0[:, None] + ar)[:, None, None, :, None]
        cols = (x0[:, None] + ar)[:, None, None, None, :]
        which = torch.arange(2, device=dev)[None, :, None, None, None]
        ch = torch.arange(3, device=dev)[None, None, :, None, None]
        win = self.pairs[i[:, None, None, None, None], which, ch, rows, cols].to(torch.float32) / 255
        blur, sharp = win[:, 0], win[:, 1]
        if self.augment:
            blur, sharp = augment(blur, sharp, gen)
        return blur, sharp
