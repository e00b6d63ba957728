"""Datasets of (blurred, sharp) training pairs.

Every dataset here yields ``(blurred, sharp)``: two float32 torch tensors
(3, H, W) with values in **[0, 1]** (``signed=True`` gives [-1, 1], the
network's own input range, instead); an item is a function of its key only,
so runs are reproducible and resumable exactly.  One module per step:

- :mod:`.base`: :class:`PairDataset`, the base of them all: item keys and
  their randomness, crops, flips/rotations, subsets, options;
- :mod:`.folders`: :class:`FolderPairs`, pair folders on disk (manifest,
  DPDD and LFDOF layouts, :func:`detect_layout`), and
  :func:`match_exposure` for real two-shot pairs;
- :mod:`.lightfields`: :class:`LightFieldPairs`, pairs refocused on the fly
  from light fields in memory, no files written;
- :mod:`.procedural`: :class:`ProceduralPairs`, the same on procedural light
  fields with random seeds, an endless supply of scenes;
- :mod:`.combine`: :func:`open_pairs`, a dataset from (almost) anything
  (it detects which of the above a source is), and :class:`ConcatPairs`,
  several datasets as one;
- :mod:`.splits`: :func:`split`, the validation split (whole scenes held
  out, or a band of a single scene's images).
"""

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
