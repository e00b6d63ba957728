"""One dataset from any source (:func:`open_pairs`), and several datasets as one (:class:`ConcatPairs`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...errors import LightFieldError, TrainingError
from .base import PairDataset
from .folders import _LAYOUT_HELP, FolderPairs, detect_layout
from .lightfields import LightFieldPairs
from .procedural import ProceduralPairs

__all__ = ["ConcatPairs", "open_pairs"]


# --------------------------------------------------------------------------- concatenation
class ConcatPairs(PairDataset):
    """Several pair datasets as one; items are sampled in proportion to their lengths."""

    def __init__(self, datasets: Sequence[PairDataset]):
        datasets = list(datasets)
        if not datasets:
            raise TrainingError("no datasets to combine")
        for d in datasets:
            if not isinstance(d, PairDataset):
                raise TrainingError(f"ConcatPairs combines PairDatasets, got {type(d).__name__}")
        first = datasets[0]
        super().__init__(patch=first.patch, crop=first.crop, augment=first.augment, seed=first.seed,
                         signed=first.signed)
        self.datasets = datasets
        self._offsets = np.cumsum([0] + [len(d) for d in datasets]).tolist()

    def _n_items(self):
        return self._offsets[-1]

    def _names(self):
        return [n for d in self.datasets for n in d.names]

    def _groups(self):
        return [g for d in self.datasets for g in d.groups]

    def options(self, **kw):
        return ConcatPairs([d.options(**kw) for d in self.datasets])

    def subset(self, indices):
        parts: list[list[int]] = [[] for _ in self.datasets]
        for i in indices:
            k = int(np.searchsorted(self._offsets, int(i), side="right")) - 1
            parts[k].append(int(i) - self._offsets[k])
        return ConcatPairs([d.subset(p) for d, p in zip(self.datasets, parts) if p])

    def __getitem__(self, key):
        if isinstance(key, tuple):
            index, seed, draw = (int(k) for k in key)
        else:
            index, seed, draw = int(key), None, None
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        k = int(np.searchsorted(self._offsets, index, side="right")) - 1
        local = index - self._offsets[k]
        return self.datasets[k][local if seed is None else (local, seed, draw)]

    def describe(self) -> str:
        return " + ".join(d.describe() for d in self.datasets)

    def fingerprint(self) -> str:
        return " + ".join(d.fingerprint() for d in self.datasets)

    def item_sizes(self):
        return [x for d in self.datasets for x in d.item_sizes()]


# --------------------------------------------------------------------------- entry points
_PROCEDURAL_NAMES = ("synthetic", "procedural")


def open_pairs(source, *, patch=None, crop=None, augment=None, seed: int = 0, signed: bool = False,
               cache="auto", cache_mb: float = 1024, match_exposure: bool = False,
               **lightfield_options) -> PairDataset:
    """A pair dataset from (almost) anything.

    ``source``:

    - a pair folder (manifest, DPDD or LFDOF layout, detected);
    - a light-field path (anything :func:`~napari_lfdeblur.read_lightfield`
      reads) or a :class:`~napari_lfdeblur.lightfield.core.LightField`:
      pairs refocused on the fly (:class:`LightFieldPairs`);
    - ``"synthetic"`` (or ``"procedural"``): procedural light fields
      (:class:`ProceduralPairs`);
    - a :class:`PairDataset` (returned, with any options given applied);
    - a list of the above: one dataset (:class:`ConcatPairs`).

    ``patch``/``crop``/``augment``/``seed``/``signed``: see
    :class:`PairDataset` (no patch = full images, for validation);
    ``cache``/``cache_mb``/``match_exposure`` (map each sharp shot onto its
    blurry shot's exposure, for real two-shot pairs: :func:`~napari_lfdeblur.training.match_exposure`):
    folders only; ``lightfield_options`` go to
    :class:`LightFieldPairs` / :class:`ProceduralPairs` (``length``,
    ``apertures``, ``focus``, ``views``, ...).
    """
    from ...lightfield.core import LightField

    common = {"patch": patch, "crop": crop, "augment": augment, "seed": seed, "signed": signed}
    if isinstance(source, PairDataset):
        given = {k: v for k, v in common.items() if v is not None and not (k in ("seed", "signed") and not v)}
        return source.options(**given) if given else source
    if isinstance(source, (list, tuple)):
        return _open_list(source, common, cache=cache, cache_mb=cache_mb, match_exposure=match_exposure,
                          **lightfield_options)
    # light fields and procedural scenes cut 128-px crops unless told otherwise
    lf_common = {**common, "patch": patch if patch is not None else 128}
    if isinstance(source, LightField):
        return LightFieldPairs([source], **lf_common, **lightfield_options)
    if isinstance(source, str) and source.strip().lower() in _PROCEDURAL_NAMES:
        return ProceduralPairs(**lf_common, **lightfield_options)
    if isinstance(source, (str, Path)) or hasattr(source, "__fspath__"):
        p = Path(source).expanduser()
        if not p.exists():
            raise TrainingError(f"training data not found: {p}")
        if detect_layout(p) is not None:
            if lightfield_options:
                raise TrainingError(f"options {sorted(lightfield_options)} apply to light fields, not pair folders")
            return FolderPairs(p, cache=cache, cache_mb=cache_mb, match_exposure=match_exposure, **common)
        return LightFieldPairs([_read_lightfield(p)], **lf_common, **lightfield_options)
    raise TrainingError(
        f"cannot make training pairs from a {type(source).__name__}: give a pair folder, a light field (path or "
        "LightField), 'synthetic', a PairDataset or a list of these"
    )


def _is_folder(source) -> bool:
    """Whether ``source`` names a pair folder."""
    return isinstance(source, (str, Path)) and not (
        isinstance(source, str) and source.strip().lower() in _PROCEDURAL_NAMES) and \
        detect_layout(Path(source).expanduser()) is not None


def _open_list(sources, common: dict, *, cache, cache_mb: float, match_exposure: bool,
               **lightfield_options) -> PairDataset:
    """One dataset of several sources (:class:`ConcatPairs` when more than one); the light-field options go to
    the light-field parts only."""
    if not sources:
        raise TrainingError("open_pairs got an empty list")
    parts = [open_pairs(s, **common, cache=cache, cache_mb=cache_mb,
                        **({"match_exposure": match_exposure} if _is_folder(s) else lightfield_options))
             for s in sources]
    return parts[0] if len(parts) == 1 else ConcatPairs(parts)


def _read_lightfield(path: Path):
    """The light field at ``path``, which is not a pair folder."""
    from ...lightfield.readers import read_lightfield

    try:
        return read_lightfield(path)
    except LightFieldError as e:
        raise TrainingError(f"{path} is neither a pair folder ({_LAYOUT_HELP}) nor a light field ({e})") from e
