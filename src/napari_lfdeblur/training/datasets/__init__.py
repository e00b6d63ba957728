"""Datasets of (blurred, sharp) training pairs, one module per source (docs/architecture.md lists them), all built
on :class:`~.base.PairDataset`."""

from ...io.formats import image_files
from .base import PairDataset
from .combine import ConcatPairs, open_pairs
from .folders import FolderPairs, detect_layout, match_exposure
from .lightfields import LightFieldPairs
from .procedural import ProceduralPairs
from .splits import split

__all__ = [
    "ConcatPairs",
    "FolderPairs",
    "LightFieldPairs",
    "PairDataset",
    "ProceduralPairs",
    "detect_layout",
    "image_files",
    "match_exposure",
    "open_pairs",
    "split",
]
