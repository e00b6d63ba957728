"""Folders of views named by their grid position (``view_3_4.png`` ...): file-name patterns, the built-in ones
tried when none is given (the one matching most files wins, ties in the order of ``BUILTIN_PATTERNS``), and the
views that lie apart from the others."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from ...errors import LightFieldError
from ...io.formats import IMAGE_SUFFIXES, image_files
from ..core import LightField
from ._views import open_view_grid

BUILTIN_PATTERNS = {
    # e.g. IMG_0001_012_02_09.png = u 2, v 9 (the second number is a serpentine capture counter)
    "lytro_toolbox": "IMG_{any}_{any}_{u}_{v}.{ext}",
    "view_row_col": "view_{row}_{col}.{ext}",
    "row_col": "{any}{row}_{col}.{ext}",
}

_EXT_RE = "(?:" + "|".join(s.lstrip(".") for s in IMAGE_SUFFIXES) + ")"
_TOKEN_RE = re.compile(r"\{(\w*)\}|\*|\?")
_VERTICAL = {"row": False, "v": False, "col": True, "u": True}


def compile_pattern(pattern: str) -> re.Pattern:
    """Turn a view-name pattern into a regular expression with groups ``row`` and ``col``."""
    if not isinstance(pattern, str) or not pattern:
        raise LightFieldError(f"pattern must be a non-empty string like 'view_{{row}}_{{col}}.png', got {pattern!r}.")
    if "/" in pattern or "\\" in pattern:
        raise LightFieldError(
            f"pattern {pattern!r} contains a folder; give the folder as the path and only the file name as the pattern."
        )
    parts, pos, seen = [], 0, set()
    for m in _TOKEN_RE.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        pos = m.end()
        tok = m.group(0)
        name = m.group(1)
        if tok in ("*", "{any}"):
            parts.append(".*?")
        elif tok == "?":
            parts.append(".")
        elif name == "ext":
            parts.append(_EXT_RE)
        elif name in ("row", "v", "col", "u"):
            group = "row" if name in ("row", "v") else "col"
            if group in seen:
                raise LightFieldError(f"pattern {pattern!r} names the {group} index twice.")
            seen.add(group)
            parts.append(rf"(?P<{group}>-?\d+)")
        else:
            raise LightFieldError(
                f"Unknown placeholder {tok!r} in pattern {pattern!r}; use {{row}}/{{v}}, {{col}}/{{u}}, "
                "{any} or *, and {ext}."
            )
    parts.append(re.escape(pattern[pos:]))
    if seen != {"row", "col"}:
        raise LightFieldError(
            f"pattern {pattern!r} must contain both a vertical ({{row}} or {{v}}) and a horizontal "
            "({col} or {u}) index placeholder."
        )
    return re.compile("".join(parts), re.IGNORECASE)


def match_views(files: list[Path], pattern: str, vertical: str = "row") -> dict[tuple[int, int], Path]:
    """``{(row, col): path}`` (raw indices from the names) for the files matching ``pattern``."""
    if vertical not in _VERTICAL:
        raise LightFieldError(f"vertical={vertical!r}: use 'row' (or 'v') or 'col' (or 'u').")
    swap = _VERTICAL[vertical]
    rx = compile_pattern(pattern)
    out: dict[tuple[int, int], Path] = {}
    for p in files:
        m = rx.fullmatch(p.name)
        if not m:
            continue
        r, c = int(m.group("row")), int(m.group("col"))
        key = (c, r) if swap else (r, c)
        if key in out:
            raise LightFieldError(
                f"Two files map to the same view {key} with pattern {pattern!r}: {out[key].name} and {p.name}. "
                "Make the pattern more specific (e.g. include the extension)."
            )
        out[key] = p
    return out


def detect_pattern(folder: Path) -> tuple[str, str, dict] | None:
    """The built-in pattern matching most image files in ``folder`` (at least 2), or None.

    Returns (name, pattern, matches).
    """
    files = image_files(folder)
    best = None
    for name, pat in BUILTIN_PATTERNS.items():
        try:
            found = match_views(files, pat)
        except LightFieldError:
            continue  # e.g. duplicate positions: this pattern is not the folder's scheme
        if len(found) >= 2 and (best is None or len(found) > len(best[2])):
            best = (name, pat, found)
    return best


def read_grid_folder(
    path: str | os.PathLike,
    pattern: str | None = None,
    vertical: str = "row",
    base: int | None = None,
    grid: tuple[int, int] | None = None,
    lazy: bool = True,
) -> LightField:
    """Read a folder of views whose file names give their grid position.

    Parameters
    ----------
    path
        The folder.
    pattern
        File-name pattern: ``{row}``/``{v}`` the vertical index (top first),
        ``{col}``/``{u}`` the horizontal one, ``{any}`` or ``*`` anything, ``?``
        one character, ``{ext}`` an image suffix; None: the built-in patterns.
    vertical
        Which placeholder is the vertical view index: ``"row"`` (default, also
        ``"v"``) or ``"col"`` (also ``"u"``) when the names are transposed.
    base
        Index of the first view in the names (0, 1, or e.g. -3 for centred
        numbering); None: the smallest index found if it is <= 0, else 1.
    grid
        (V, U) to force the grid size (when border views are missing); also
        reads views lying apart from the others (else ignored, or refused).
    lazy
        True (default): decode each view only when used (dask, one chunk per view).

    Returns
    -------
    LightField
        (V, U, Y, X, C) float32; view (0, 0) top-left, (V-1, U-1) bottom-right.
        Grid positions without a file are False in ``view_mask`` and NaN.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise LightFieldError(f"{folder} is not a folder of views.")
    files = image_files(folder)
    pattern_name, used, found = _find_views(folder, files, pattern, vertical)
    strays: dict[tuple[int, int], Path] = {}
    if grid is None:
        found, strays = _drop_strays(folder, found, explicit=pattern is not None)
    base = _auto_base(found) if base is None else int(base)
    V, U = _grid_size(found, base, grid)
    if pattern is None:
        _check_dense(found, (V, U), folder, used)
    views = {(r - base, c - base): p for (r, c), p in found.items()}
    data, mask, info = open_view_grid(views, (V, U), lazy=lazy)
    meta = {"source": str(folder), "format": "grid", "pattern": used, "pattern_name": pattern_name,
            "index_base": base, "angular_spacing": None, "disparity_range": None, **info}
    used_files = set(found.values())
    ignored = [p.name for p in files if p not in used_files]
    if ignored:  # other images in the folder (a depth map, a thumbnail ...): listed, not read
        meta["ignored_files"] = ignored[:20]
    if strays:
        meta["stray_files"] = sorted(p.name for p in strays.values())
    # decode_view applies the value rule to every view as it is decoded
    return LightField(data=data, view_mask=mask, metadata=meta, _checked=True)


def _find_views(folder: Path, files: list[Path], pattern: str | None, vertical: str):
    """(pattern name, pattern, {(row, col): path}) of the folder's views: by ``pattern``, or the built-in
    pattern that matches the most files; at least two views."""
    if pattern is None:
        best = detect_pattern(folder)
        if best is None:
            raise LightFieldError(_no_views_message(folder, files))
        pattern_name, used, found = best
    else:
        pattern_name, used = "user", pattern
        found = match_views(files, pattern, vertical)
        if not found:
            examples = ", ".join(p.name for p in files[:4]) or "no image files at all"
            raise LightFieldError(
                f"pattern {pattern!r} matches none of the {len(files)} image files in {folder} "
                f"(e.g. {examples}). Placeholders: {{row}}/{{v}}, {{col}}/{{u}}, {{any}} or *, {{ext}}."
            )
    if len(found) < 2:
        raise LightFieldError(
            f"Only one view ({next(iter(found.values())).name}) in {folder} matches {used!r}; a light field "
            "needs at least two views."
        )
    return pattern_name, used, found


def _check_dense(found, grid: tuple[int, int], folder: Path, used: str) -> None:
    """Auto-detection's guard (napari offers every folder to the reader): a few photos that happen to end in _N_M
    are not a light field."""
    V, U = grid
    if len(found) < 0.25 * V * U:
        raise LightFieldError(
            f"Only {len(found)} of the {V}x{U} grid positions implied by the names in {folder} have a view "
            f"(built-in pattern {used!r}); if this is a light field, pass pattern= (and grid=) explicitly."
        )


def _grid_size(found, base: int, grid) -> tuple[int, int]:
    """(V, U): what the names' indices span from ``base``, or ``grid`` when given (not smaller)."""
    rows = [k[0] for k in found]
    cols = [k[1] for k in found]
    if min(rows) < base or min(cols) < base:
        raise LightFieldError(f"base={base} but the file names have indices down to {min(min(rows), min(cols))}.")
    V, U = max(rows) - base + 1, max(cols) - base + 1
    if grid is not None:
        gv, gu = (int(grid), int(grid)) if isinstance(grid, int) else (int(grid[0]), int(grid[1]))
        if gv < V or gu < U:
            raise LightFieldError(f"grid={grid!r} is smaller than the {V}x{U} views found in the names.")
        V, U = gv, gu
    return V, U


def _auto_base(found) -> int:
    low = min(min(k) for k in found)
    return low if low <= 0 else 1  # names counting from 1: a missing first row stays missing


def _runs(values) -> list[tuple[int, int]]:
    """Sorted distinct indices as (first, last) runs of consecutive numbers."""
    out: list[list[int]] = []
    for v in sorted(set(values)):
        if out and v == out[-1][1] + 1:
            out[-1][1] = v
        else:
            out.append([v, v])
    return [(a, b) for a, b in out]


def _span(run: tuple[int, int]) -> str:
    return str(run[0]) if run[0] == run[1] else f"{run[0]}-{run[1]}"


def _gaps(runs: list[tuple[int, int]]) -> list[str]:
    return [_span((a[1] + 1, b[0] - 1)) for a, b in zip(runs, runs[1:])]


def _names(views: dict, limit: int = 5) -> str:
    names = [views[k].name for k in sorted(views)]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _drop_strays(folder: Path, found: dict, explicit: bool) -> tuple[dict, dict]:
    """``(views read, views ignored)``: views cut off from the main block by empty rows or columns.

    Only whole empty rows/columns *between* views count: a grid with scattered missing views
    (a cross, the diagonals, a vignetted corner) has none and is read as it is, missing views NaN.
    With such gaps, the block (a run of rows x a run of columns) holding most views is the light
    field; a few views outside it (at most a tenth of the block, and at most 2 when the block is
    smaller than 20 views) are strays, ignored with a warning.  Anything else is ambiguous: an error
    for auto-detected names, a warning for an explicit pattern (the user said these files belong).
    """
    row_runs = _runs(k[0] for k in found)
    col_runs = _runs(k[1] for k in found)
    if len(row_runs) == 1 and len(col_runs) == 1:
        return found, {}

    def inside(k, rr, cr):
        return rr[0] <= k[0] <= rr[1] and cr[0] <= k[1] <= cr[1]

    blocks = [(sum(inside(k, rr, cr) for k in found), rr, cr) for rr in row_runs for cr in col_runs]
    n_block, rr, cr = max(blocks, key=lambda b: b[0])
    block = {k: p for k, p in found.items() if inside(k, rr, cr)}
    strays = {k: p for k, p in found.items() if k not in block}
    b = _auto_base(found)
    V, U = max(k[0] for k in found) - b + 1, max(k[1] for k in found) - b + 1
    empty = " and ".join(f"{what} {', '.join(g)}" for what, g in (("rows", _gaps(row_runs)),
                                                                   ("columns", _gaps(col_runs))) if g)
    empty += " hold no view"
    whole = f"{V}x{U} grid with {V * U - len(found)} of its {V * U} positions empty"
    if n_block >= 4 and len(strays) <= max(2, n_block // 10):
        warnings.warn(
            f"{folder}: ignored {len(strays)} view file{'s' if len(strays) > 1 else ''} lying apart from the "
            f"others ({_names(strays)}): {empty} (indices as in the file names). Reading "
            f"{'them' if len(strays) > 1 else 'it'} too would make a {whole}; read the {rr[1] - rr[0] + 1}x"
            f"{cr[1] - cr[0] + 1} block of rows {_span(rr)}, columns {_span(cr)}. Remove the stray file"
            f"{'s' if len(strays) > 1 else ''}, or pass grid= to read every view.",
            RuntimeWarning, stacklevel=4,
        )
        return block, strays
    message = (
        f"The views in {folder} lie in separate groups: {empty} (indices as in the file names). The largest "
        f"block (rows {_span(rr)}, columns {_span(cr)}) has {n_block} view{'s' if n_block > 1 else ''}; "
        f"{len(strays)} lie{'s' if len(strays) == 1 else ''} outside it ({_names(strays)}). As one light field "
        f"they make a {whole}."
    )
    if explicit:  # the user's pattern claims these files: read them, but say how sparse the result is
        warnings.warn(message + " Missing views are NaN.", RuntimeWarning, stacklevel=4)
        return found, {}
    raise LightFieldError(
        message + " Move the files that do not belong to another folder, or, if this is one sparse light "
        "field, pass pattern= (and grid=) explicitly."
    )


def _no_views_message(folder: Path, images: list[Path]) -> str:
    try:
        everything = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    except OSError:
        everything = []
    if not everything:
        return f"The folder {folder} is empty: there is no light field in it."
    what = f"{len(images)} image files" if images else f"no image files (found {len(everything)} other files)"
    examples = ", ".join(p.name for p in images[:4]) if images else ", ".join(everything[:4])
    return (
        f"No light field found in {folder}: {what}, e.g. {examples}. Expected HCI views "
        "(input_Cam000.png ...), Lytro toolbox views (IMG_0001_001_01_01.png ...) or views named "
        "..._ROW_COL.png. For other names pass pattern='name_{row}_{col}.png' (format='grid'); "
        "for a single file pass its path."
    )
