"""The validation split (:func:`split`): whole scenes held out, or a band of a single scene's images."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from ...errors import TrainingError
from .base import PairDataset, _band_axis, _band_width
from .combine import ConcatPairs
from .folders import FolderPairs
from .lightfields import LightFieldPairs
from .procedural import ProceduralPairs

__all__ = ["split"]


# Single-scene validation bands: the band itself is cut in base (_band_axis, _band_width, _cut_band)
def _band_val_options(width: int, across: int, val_patch: int | None, margin: int = 0) -> dict:
    """Centre ``val_patch`` crops where the band holds them, else the whole band."""
    if val_patch is not None and min(width, across) >= val_patch + 2 * margin:
        return {"patch": val_patch, "crop": "center"}
    return {"patch": None, "crop": "full"}


def split(dataset: PairDataset, val_fraction: float | None = None, val_names: Sequence[str] | None = None, *,
          seed: int = 0, val_patch: int | None = 256, val_crop: str | None = None,
          val_count: int = 16) -> tuple[PairDataset, PairDataset | None]:
    """Split off validation pairs by group (scene), deterministically.

    ``val_names``: the groups (or item names) to hold out; otherwise
    ``val_fraction`` of the groups, drawn with ``seed`` from the sorted group
    names (at least one group, never all).  Procedural data has no scenes to
    hold out: its validation part is ``val_count`` fixed pairs from other
    scenes (:meth:`ProceduralPairs.heldout`).  Data of a single scene (one
    light field, or a pair folder written from one) hold out the last
    ``val_fraction`` of the views' / images' longer side instead (a band of
    pixels training never reads).

    The validation part gets ``crop=val_crop`` (default ``"center"`` with
    ``val_patch``, ``"full"`` when ``val_patch`` is None) and no augmentation.
    Returns ``(train, val)``; ``val`` is None when nothing is held out.
    """
    if not isinstance(dataset, PairDataset):
        raise TrainingError(f"split needs a PairDataset (from open_pairs), got {type(dataset).__name__}")
    if val_names is None and not val_fraction:
        return dataset, None
    if val_fraction is not None and not (0 < float(val_fraction) < 1):
        raise TrainingError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    fraction = float(val_fraction or 0.0)  # 0 only when val_names are given, which decide alone
    crop = val_crop or ("center" if val_patch else "full")
    vopts = {"patch": val_patch if crop != "full" else None, "crop": crop, "augment": False}
    if isinstance(dataset, ConcatPairs):
        return _split_parts(dataset, val_fraction, val_names, seed=seed, val_patch=val_patch, val_crop=val_crop,
                            val_count=val_count)
    if isinstance(dataset, ProceduralPairs):
        if val_names is not None:
            raise TrainingError("procedural pairs have no named scenes to hold out; use val_fraction")
        return dataset, dataset.heldout(val_count, **vopts)
    if val_names is not None:
        return _split_groups(dataset, _named(dataset, val_names), vopts)
    if len(set(dataset.groups)) < 2:
        return _split_single_scene(dataset, fraction, val_patch)
    return _split_groups(dataset, _drawn(dataset, fraction, seed), vopts)


def _split_parts(dataset: ConcatPairs, val_fraction, val_names, **options) -> tuple[PairDataset, PairDataset | None]:
    """Each part of a concatenation split on its own; names that belong to another part leave a part whole."""
    trains, vals = [], []
    for d in dataset.datasets:
        try:
            t, v = split(d, val_fraction, val_names, **options)
        except TrainingError:
            if val_names is None:
                raise
            t, v = d, None  # these names belong to another part
        trains.append(t)
        if v is not None:
            vals.append(v)
    if val_names is not None and not vals:
        raise TrainingError(f"none of the validation names {list(val_names)[:5]} is in the data")
    train = trains[0] if len(trains) == 1 else ConcatPairs(trains)
    val = None if not vals else vals[0] if len(vals) == 1 else ConcatPairs(vals)
    return train, val


def _named(dataset: PairDataset, val_names: Sequence[str]) -> list[bool]:
    """Which items ``val_names`` (groups or item names) hold out."""
    groups, names = dataset.groups, dataset.names
    wanted = {str(n) for n in val_names}
    unique = sorted(set(groups))
    unknown = sorted(wanted - (set(unique) | set(names)))
    if unknown:
        raise TrainingError(f"validation name(s) {unknown[:5]} not in the data (scenes are e.g. {unique[:5]})")
    return [g in wanted or n in wanted for g, n in zip(groups, names)]


def _drawn(dataset: PairDataset, fraction: float, seed: int) -> list[bool]:
    """Which items a ``fraction`` of the groups, drawn with ``seed`` (at least one, never all), holds out."""
    groups = dataset.groups
    unique = sorted(set(groups))
    n_val = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    order = np.random.default_rng(seed).permutation(len(unique))
    chosen = {unique[i] for i in order[:n_val]}
    return [g in chosen for g in groups]


def _split_groups(dataset: PairDataset, is_val: list[bool], vopts: dict) -> tuple[PairDataset, PairDataset]:
    """The items ``is_val`` marks held out (with the validation options ``vopts``), the others to train on."""
    tr = [i for i, v in enumerate(is_val) if not v]
    va = [i for i, v in enumerate(is_val) if v]
    if not tr:
        raise TrainingError("the validation split leaves no training pairs")
    if isinstance(dataset, LightFieldPairs):
        # on-the-fly data: rebuild with the light fields of each side (lengths kept proportional)
        return _split_lightfields(dataset, {dataset.groups[i] for i in va}, vopts)
    return dataset.subset(tr), dataset.subset(va).options(**vopts)


def _split_single_scene(dataset: PairDataset, fraction: float, val_patch: int | None):
    """Data of one scene: a band of its views (a light field) or of its images (a pair folder) held out."""
    if isinstance(dataset, LightFieldPairs):
        return _split_lightfield_region(dataset, fraction, val_patch)
    if isinstance(dataset, FolderPairs):
        return _split_folder_band(dataset, fraction, val_patch)
    raise TrainingError(
        f"cannot hold out a fraction of {dataset.describe()}: it has a single scene ({dataset.groups[0]!r}); "
        "give separate validation data"
    )


def _split_lightfields(ds: LightFieldPairs, val_groups: set, vopts) -> tuple[PairDataset, PairDataset]:
    keep = [s for s in ds._samplers if s.name not in val_groups]
    held = [s for s in ds._samplers if s.name in val_groups]
    per = ds.length / len(ds._samplers)
    train = _with_samplers(ds, keep, per * len(keep))
    val = _with_samplers(ds, held, 4 * len(held)).options(**vopts)
    return train, val


def _with_samplers(ds: LightFieldPairs, samplers, length) -> LightFieldPairs:
    """A copy of ``ds`` drawing ``length`` items from ``samplers`` (the whole of them, no subset)."""
    new = copy.copy(ds)
    new._samplers = samplers
    new.length = max(1, round(length))
    new._index = None
    return new


def _split_lightfield_region(ds: LightFieldPairs, fraction: float, val_patch: int | None):
    """One light field: hold out a band of pixels instead of a scene.

    The last ``fraction`` of the views' longer side (rows or columns) becomes the validation
    band; training patches are refocused from the rest only, so validation scores pixels the
    network never saw (same scene, same optics: a curve to watch, not a test of generality).
    Validation items are 8 fixed focus / aperture draws over the band (centre ``val_patch``
    crops where the band is wide enough, else the whole band minus the refocus border).
    """
    s = ds._samplers[0]
    Y, X = s.view_shape
    axis = _band_axis(Y, X)
    size, across = (X, Y) if axis else (Y, X)
    m = s.margin
    width = _band_width(size, fraction, m)
    need = (ds.patch or 0) + 2 * m
    if size - width < max(need, 16):
        raise TrainingError(
            f"cannot hold out {fraction:.0%} of the single light field {s.name!r} ({X}x{Y} px views) for "
            f"validation and still cut {ds.patch}-px training patches from the rest: give separate validation "
            "data, a smaller patch, or no validation"
        )
    where = "columns" if axis else "rows"
    train_s = s.band(axis, 0, size - width)
    val_s = s.band(axis, size - width, size, name=f"{s.name} ({where} {size - width}-{size} held out)")
    train = _with_samplers(ds, [train_s], ds.length)
    val = _with_samplers(ds, [val_s], 8)
    return train, val.options(augment=False, **_band_val_options(width, across, val_patch, m))


def _split_folder_band(ds: FolderPairs, fraction: float, val_patch: int | None):
    """Pairs of a single scene (e.g. written from one light field): hold out a band of every image
    (the last ``fraction`` of its longer side) and train on the rest, as for one light field."""
    j = ds._index[0] if ds._index is not None else 0
    h, w = ds._load(j, np.random.default_rng(0), 0)[0].shape[:2]
    size, across = max(h, w), min(h, w)
    width = _band_width(size, fraction)
    if ds.patch is not None and min(size - width, across) < ds.patch:
        raise TrainingError(
            f"cannot hold out {fraction:.0%} of the images of {ds.describe()} (one scene, {w}x{h} px) for "
            f"validation and still cut {ds.patch}-px training patches from the rest: give separate validation "
            "data, a smaller patch, or no validation"
        )
    train, val = copy.copy(ds), copy.copy(ds)
    train._band, val._band = ("train", fraction), ("val", fraction)
    return train, val.options(augment=False, **_band_val_options(width, across, val_patch))
