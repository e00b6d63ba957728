"""What a loaded network carries besides its weights: :class:`ModelRecord`, attached by
:func:`~napari_lfdeblur.network.checkpoint.load_model` as ``model.record`` and read through :func:`record_of`,
which also gives a sensible record for any other module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .drbnet import INPUT_CONVENTION

__all__ = ["ModelRecord", "record_of"]


@dataclass(frozen=True)
class ModelRecord:
    """``device``: where the weights are; ``compute_dtype``: the autocast type deblurring computes in
    (bfloat16 on CPUs that have it natively, else None: the weights' own type); ``input_convention``: how
    inputs are scaled (``"rgb_minus1_1"``); ``training``: the training summary stored in its checkpoint
    (empty for weights from elsewhere); ``source``: the checkpoint it came from (None: built in memory)."""

    device: torch.device
    compute_dtype: torch.dtype | None = None
    input_convention: str = INPUT_CONVENTION
    training: dict = field(default_factory=dict, repr=False)
    source: str | None = None


def record_of(model) -> ModelRecord:
    """The record ``load_model`` attached to ``model``, or one read off any other module."""
    record = getattr(model, "record", None)
    if isinstance(record, ModelRecord):
        return record
    p = next(iter(model.parameters()), None)
    return ModelRecord(device=p.device if p is not None else torch.device("cpu"),
                       input_convention=getattr(model, "input_convention", INPUT_CONVENTION))
