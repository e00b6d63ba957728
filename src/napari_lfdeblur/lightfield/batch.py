"""Pairs from many light fields in one run, what ``lfdeblur pairs`` and the Refocus dock's folder batch both
run (each words what it skipped its own way)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cancel import cancel_check
from ..errors import LFDeblurError, OutputError
from .core import LightField
from .pairs import DEFAULT_APERTURES, Pair, iter_pairs, write_pairs
from .readers import read_lightfield

__all__ = ["PairBatch", "lightfield_entries", "pairs_from_lightfields"]


@dataclass
class PairBatch:
    """What a batch made: ``written`` pairs (and the pairs themselves with ``keep``) from ``used`` of
    ``n_sources`` light fields, those ``skipped`` with their errors, and the ``error`` that stopped it
    early (a pair folder that could take no more), if any."""

    n_sources: int
    out: Path | None = None
    pairs: list[Pair] = field(default_factory=list)
    made: int = 0
    used: int = 0
    skipped: list[tuple[str, Exception]] = field(default_factory=list)
    error: OutputError | None = None
    cancelled: bool = False


def lightfield_entries(folder: str | os.PathLike) -> list[Path]:
    """The entries of ``folder`` (hidden ones left out), sorted: a folder of light fields, one per entry."""
    folder = Path(folder)
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    if not entries:
        raise LFDeblurError(f"{folder} is empty: give a folder whose entries are light fields.")
    return entries


def pairs_from_lightfields(
    sources: Sequence[LightField | str | os.PathLike],
    out: str | os.PathLike | None = None,
    *,
    apertures: Iterable[float] = DEFAULT_APERTURES,
    focus: int = 5,
    crop: int | str | None = "auto",
    format: str = "png",
    read: Callable[[Path], LightField] | None = None,
    keep: bool = True,
    progress: Callable[[int, int], Any] | None = None,
    cancel=None,
    on_skip: Callable[[str, Exception], Any] | None = None,
) -> PairBatch:
    """Make pairs from each light field of ``sources`` (LightFields, or paths read by ``read(path)``, by default
    :func:`~napari_lfdeblur.read_lightfield` in full) and,
    with ``out``, write them into that pair folder as they are made (a cancel keeps every finished pair).

    A source that cannot be read or refocused (an error of this package, or the system's) is skipped and
    reported to ``on_skip(name, error)``; with a single source its error is raised instead. A pair folder
    that takes no more (:class:`~napari_lfdeblur.errors.OutputError`) stops the batch: it is the batch's
    ``error``. ``progress(done, total)`` counts pairs tried (apertures x focus planes per light field).
    """
    stop = cancel_check(cancel, where="pairs_from_lightfields")
    apertures = tuple(apertures)
    per_source = len(apertures) * focus
    total = per_source * len(sources)
    batch = PairBatch(len(sources), None if out is None else Path(out))
    read = read or _read_whole
    for i, src in enumerate(sources):
        if stop():
            break
        step = None if progress is None else lambda k, n, base=i * per_source: progress(base + k, total)
        try:
            made = _one_source(src, batch, apertures, focus, crop, format, read, keep, stop, step)
        except OutputError as e:  # the folder cannot take more: every other light field would fail alike
            batch.error = e
            break
        except (LFDeblurError, OSError) as e:
            if len(sources) == 1:
                raise
            name = src.metadata.get("name", "light field") if isinstance(src, LightField) else Path(src).name
            batch.skipped.append((str(name), e))
            if on_skip is not None:
                on_skip(str(name), e)
            made = 0
        batch.used += made > 0
        if progress is not None:
            progress((i + 1) * per_source, total)
    batch.cancelled = stop()
    return batch


def _read_whole(path: Path) -> LightField:
    # in full here: a view that cannot be decoded skips this light field, not the batch
    return read_lightfield(path).compute()


def _one_source(src, batch: PairBatch, apertures, focus, crop, format, read, keep, stop, progress) -> int:
    """How many pairs of one light field were made (written or kept as they are made)."""
    lf = src if isinstance(src, LightField) else read(Path(src))
    before = batch.made

    def counted(pairs):
        for pair in pairs:
            yield pair
            # the consumer came back for the next pair: this one is written (a failed write never returns here)
            batch.made += 1
            if keep:
                batch.pairs.append(pair)

    pairs = counted(iter_pairs(lf, apertures=apertures, focus=focus, crop=crop, cancel=stop, progress=progress))
    if batch.out is not None:
        write_pairs(pairs, batch.out, format=format)
    else:
        for _ in pairs:
            pass
    return batch.made - before
