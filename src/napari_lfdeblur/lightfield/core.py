"""``LightField`` (axes and values: docs/lightfield-formats.md) and the value rule that the readers and
``LightField(...)`` share: samples become float32 in [0, 1], and NaN only marks a whole missing view, so that
refocusing never averages a NaN or an inf into its output.
"""

from __future__ import annotations

from dataclasses import InitVar, dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import LightFieldError


def _is_dask(a) -> bool:
    return type(a).__module__.startswith("dask.")


# -- the value rule ------------------------------------------------------------
_FULL_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}

#: how far outside [0, 1] a float sample may lie: the rounding of values computed in [0, 1] (an average that
#: lands a float32 step above 1), never a wrong scale such as 0..255
RANGE_TOLERANCE = 1e-5

_SCALE_HINT = (
    "map it to [0, 1] first (e.g. data / 255 for 8-bit values), or read it with "
    "napari_lfdeblur.read_lightfield(array, scale=...) (a full-scale value such as 4095 for 12-bit data, "
    "a (low, high) pair, or 'minmax')"
)
_NAN_RULE = "NaN only marks a missing view (a whole view of NaN, with view_mask False there)"


def check_scalable(dtype, what: str) -> None:
    """Raise unless ``dtype`` has a natural mapping to [0, 1] (else an explicit scale is needed)."""
    dtype = np.dtype(dtype)
    if dtype in _FULL_SCALE or dtype == np.bool_ or dtype.kind == "f":
        return
    raise LightFieldError(f"{what} has dtype {dtype}, which has no natural [0, 1] range; {_SCALE_HINT}.")


def _to_float32(a: np.ndarray, what: str) -> np.ndarray:
    """The dtype part of the rule (no value scan)."""
    a = np.asarray(a)
    dt = a.dtype
    if dt in _FULL_SCALE:
        out = a.astype(np.float32)
        return np.divide(out, np.float32(_FULL_SCALE[dt]), out=out)  # in place: one copy, not two
    if dt == np.bool_:
        return a.astype(np.float32)
    check_scalable(dt, what)
    return a.astype(np.float32, copy=False)


def _check_range(lo: float, hi: float, what: str) -> None:
    if lo < -RANGE_TOLERANCE or hi > 1.0 + RANGE_TOLERANCE:
        raise LightFieldError(f"{what} holds values in [{lo:g}, {hi:g}], outside [0, 1]; {_SCALE_HINT}.")


def _infinite_error(what: str, where: str = "") -> LightFieldError:
    return LightFieldError(
        f"{what} holds infinite values{where}; replace them (e.g. np.nan_to_num) first. {_NAN_RULE}."
    )


def check_values(a: np.ndarray, what: str, allow_nan: bool = True) -> None:
    """Raise unless the float samples ``a`` are finite and in [0, 1]; NaN passes when ``allow_nan``.
    Two reductions, no full-size temporaries, when all is well (NaN and inf show in the min and max)."""
    if a.size == 0:
        return
    lo, hi = float(a.min()), float(a.max())
    if np.isfinite(lo) and np.isfinite(hi):
        _check_range(lo, hi, what)
        return
    if np.isinf(a).any():
        raise _infinite_error(what)
    nan = np.isnan(a)
    if not allow_nan:
        raise LightFieldError(
            f"{what} holds {int(nan.sum())} NaN values; {_NAN_RULE}. Fill them (e.g. np.nan_to_num) first."
        )
    if not nan.all():
        vals = a[~nan]
        _check_range(float(vals.min()), float(vals.max()), what)


def to_float01(a, what: str = "the data", allow_nan: bool = True) -> np.ndarray:
    """uint8/uint16/bool/float samples as float32 in [0, 1]; floats outside it are refused, not clipped, so
    that no silent clipping hides a wrong scale."""
    a = np.asarray(a)
    out = _to_float32(a, what)
    if a.dtype.kind == "f":  # converted integers are in range by construction
        check_values(out, what, allow_nan)
    return out


def _views_text(views, origin=(0, 0)) -> str:
    v0, u0 = origin
    names = ", ".join(f"({int(k[0]) + v0}, {int(k[1]) + u0})" for k in views[:4])
    return names + (f" and {len(views) - 4} more" if len(views) > 4 else "")


def _check_views(a: np.ndarray, mask, what: str, origin=(0, 0)) -> np.ndarray:
    """The value rule for float32 (V', U', Y, X, C) views; the mask of the present views.

    ``mask`` None: all-NaN views are missing.  Else views flagged present must be finite and missing ones are
    not looked at.  ``origin``: the grid position of ``a[0, 0]`` (a chunk of a lazy light field), for messages.
    """
    mins, maxs = a.min(axis=(2, 3, 4)), a.max(axis=(2, 3, 4))
    finite = np.isfinite(mins) & np.isfinite(maxs)
    present = np.ones(finite.shape, bool) if mask is None else np.asarray(mask, bool)
    infinite, holes, empty = [], [], []
    for v, u in zip(*np.nonzero(~finite & present)):  # only the (rare) views that are not finite: look closer
        x = a[v, u]
        if np.isinf(x).any():
            infinite.append((v, u))
            continue
        if np.isnan(x).all():
            if mask is None:
                present[v, u] = False  # a missing view
            else:
                empty.append((v, u))
            continue
        holes.append((v, u, int(np.isnan(x).sum())))
    if infinite:
        raise _infinite_error(what, f" in view{'s' if len(infinite) > 1 else ''} {_views_text(infinite, origin)}")
    if holes:
        v, u, n = holes[0]
        which = (
            f"view ({v + origin[0]}, {u + origin[1]}) holds {n} NaN value{'s' if n > 1 else ''}"
            if len(holes) == 1
            else f"views {_views_text(holes, origin)} hold NaN values ({n} in the first)"
        )
        raise LightFieldError(
            f"{what}: {which}, but {_NAN_RULE}. Fill them (e.g. np.nan_to_num) or mark the view missing."
        )
    if empty:
        raise LightFieldError(
            f"{what}: view{'s' if len(empty) > 1 else ''} {_views_text(empty, origin)} "
            f"{'are' if len(empty) > 1 else 'is'} entirely NaN (a missing view) but view_mask says present; set "
            "view_mask False there (read_lightfield(..., lazy=False) finds all-NaN views by itself)."
        )
    sel = present & finite
    if sel.any():
        _check_range(float(mins[sel].min()), float(maxs[sel].max()), what)
    return present


def _checked_chunk(block, mask=None, what="the light field", float_source=True, block_info=None):
    out = _to_float32(block, what)
    if float_source and block_info is not None and out.size:
        (v0, v1), (u0, u1) = block_info[0]["array-location"][:2]
        _check_views(out, mask[v0:v1, u0:u1], what, origin=(v0, u0))
    return out


def _check_array(data) -> None:
    if not (isinstance(data, np.ndarray) or (_is_dask(data) and hasattr(data, "map_blocks"))):
        raise LightFieldError(
            f"LightField data must be a numpy or dask array shaped (V, U, Y, X, C), got "
            f"{type(data).__name__}. Read files, zarr/HDF5 arrays and arrays in another axis order or value "
            "range with napari_lfdeblur.read_lightfield(...)."
        )
    if data.ndim != 5:
        raise LightFieldError(
            f"LightField.data must be 5D (V, U, Y, X, C), got shape {tuple(data.shape)}; "
            "greyscale light fields keep a channel axis of 1."
        )


def _mask_for(view_mask, grid: tuple[int, int]) -> np.ndarray | None:
    if view_mask is None:
        return None
    try:
        mask = np.asarray(view_mask, dtype=bool)
    except (TypeError, ValueError):
        raise LightFieldError(
            f"view_mask must be a (V, U) array of booleans, got {type(view_mask).__name__}."
        ) from None
    if mask.shape != grid:
        raise LightFieldError(f"view_mask shape {mask.shape} does not match the view grid {grid}.")
    return mask


def _apply_value_rule(data, mask, what: str):
    """(data as float32 in [0, 1], the view mask): numpy data now, dask data chunk by chunk when it is computed
    (a lazy light field is never read just to check it)."""
    if _is_dask(data):
        check_scalable(data.dtype, what)
        mask = np.ones(data.shape[:2], bool) if mask is None else mask
        return data.map_blocks(
            _checked_chunk, mask=mask, what=what, float_source=data.dtype.kind == "f",
            dtype=np.float32, meta=np.empty((0,) * 5, np.float32),
        ), mask
    out = _to_float32(data, what)
    if data.dtype.kind == "f":
        inferred = mask is None
        mask = _check_views(out, mask, what)
        if inferred and not mask.any():
            raise LightFieldError(
                f"Every view of {what[0].lower() + what[1:]} is NaN: there is no data in it "
                "(NaN marks missing views)."
            )
    return out, mask


@dataclass
class LightField:
    """A 4D light field with its views on a regular (V, U) grid.

    Attributes
    ----------
    data
        (V, U, Y, X, C) float32 in [0, 1]; a numpy array or a lazy dask array
        (one chunk per view, decoded only when used).  uint8 / uint16 / bool
        data are converted (/ 255, / 65535, 0 / 1); floats must be finite in
        [0, 1] in every present view (NaN only fills missing views), else
        LightFieldError; other dtypes need ``read_lightfield(array, scale=...)``.
        A numpy array is checked here, a dask array chunk by chunk as it is
        computed.
    view_mask
        (V, U) booleans, True where the view exists.  Missing views hold NaN.
        None: every view of a numpy array that is not entirely NaN (every
        view of a dask array).
    disparity
        Ground-truth disparity of the centre view in pixels per view step
        (Y, X), when the source has one; else None.  A point at (y, x) in
        the centre view with disparity d appears in view (v, u) at
        ``(y - d * (v - vc), x - d * (u - uc))`` (the HCI benchmark's sign).
    metadata
        ``source`` (path or description), ``format`` (reader name),
        ``angular_spacing`` (baseline between views, if known),
        ``disparity_range`` ((lo, hi), if the source gives one), and any
        format-specific extras.
    """

    data: Any
    # None when constructed means every view is present; __post_init__ always sets the (V, U) array
    view_mask: np.ndarray = None  # type: ignore[assignment]
    disparity: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)
    # internal: True where ``data`` already passed the value rule (a reader that applied it while decoding, a
    # slice or compute() of a checked light field), so that a ~GB light field is not scanned again
    _checked: InitVar[bool] = False

    def __post_init__(self, _checked: bool = False):
        data = self.data
        _check_array(data)
        if self.metadata is None:
            self.metadata = {}
        if not isinstance(self.metadata, dict):
            raise LightFieldError(f"LightField metadata must be a dict, got {type(self.metadata).__name__}.")
        mask = _mask_for(self.view_mask, tuple(data.shape[:2]))
        if 0 in data.shape[2:]:
            raise LightFieldError(f"The views of this light field hold no pixels (shape {tuple(data.shape)}).")
        if 0 in data.shape[:2]:
            raise LightFieldError("The light field has no views at all.")
        if not _checked:
            source = self.metadata.get("source")
            what = f"The light field {source}" if source else "The light-field data"
            self.data, mask = _apply_value_rule(data, mask, what)
        self.view_mask = np.ones(data.shape[:2], dtype=bool) if mask is None else mask
        if not self.view_mask.any():
            raise LightFieldError("The light field has no views at all.")
        if self.disparity is not None:
            self.disparity = np.asarray(self.disparity, dtype=np.float32)
            if self.disparity.shape != tuple(self.data.shape[2:4]):
                raise LightFieldError(
                    f"disparity map shape {self.disparity.shape} does not match the view size "
                    f"{tuple(self.data.shape[2:4])}."
                )

    @property
    def grid(self) -> tuple[int, int]:
        """Number of vertical and horizontal views, (V, U)."""
        return int(self.data.shape[0]), int(self.data.shape[1])

    @property
    def view_shape(self) -> tuple[int, int]:
        """(Y, X) size of one view in pixels."""
        return int(self.data.shape[2]), int(self.data.shape[3])

    @property
    def channels(self) -> int:
        return int(self.data.shape[4])

    @property
    def center(self) -> tuple[float, float]:
        """Grid coordinates of the optical centre, (vc, uc) = ((V-1)/2, (U-1)/2)."""
        V, U = self.grid
        return (V - 1) / 2.0, (U - 1) / 2.0

    @property
    def is_lazy(self) -> bool:
        return _is_dask(self.data)

    @property
    def n_views(self) -> int:
        return int(self.view_mask.sum())

    def view(self, v: int, u: int) -> np.ndarray:
        """One view as a (Y, X, C) float32 numpy array."""
        V, U = self.grid
        if not (0 <= v < V and 0 <= u < U):
            raise LightFieldError(f"View ({v}, {u}) is outside the {V}x{U} grid.")
        if not self.view_mask[v, u]:
            raise LightFieldError(f"View ({v}, {u}) is missing from this light field.")
        out = self.data[v, u]
        if _is_dask(out):
            out = out.compute()
        return np.asarray(out, dtype=np.float32)

    def center_view(self) -> np.ndarray:
        """The view nearest the grid centre that exists (the all-in-focus image)."""
        v, u = self.center_index()
        return self.view(v, u)

    def center_index(self) -> tuple[int, int]:
        """Integer index of the present view closest to the grid centre."""
        vc, uc = self.center
        vv, uu = np.nonzero(self.view_mask)
        d = (vv - vc) ** 2 + (uu - uc) ** 2
        # ties: prefer the top-left of the central ones, deterministically
        i = int(np.lexsort((uu, vv, d))[0])
        return int(vv[i]), int(uu[i])

    def compute(self) -> LightField:
        """Return a copy with ``data`` decoded into a numpy array."""
        if not self.is_lazy:
            return self
        return replace(self, data=np.asarray(self.data.compute(), dtype=np.float32), _checked=True)

    def summary(self) -> dict:
        """A plain dict describing the light field (what ``lfdeblur info`` prints)."""
        V, U = self.grid
        Y, X = self.view_shape
        d = {
            "source": str(self.metadata.get("source", "")),
            "format": self.metadata.get("format", ""),
            "grid (V x U)": f"{V} x {U}",
            "views present": f"{self.n_views} of {V * U}",
            "view size (Y x X)": f"{Y} x {X}",
            "channels": self.channels,
            "dtype": str(self.data.dtype),
            "lazy": self.is_lazy,
        }
        if "source_dtype" in self.metadata:
            d["source dtype"] = str(self.metadata["source_dtype"])
        if self.disparity is not None:
            d["ground-truth disparity"] = (
                f"yes, {float(np.nanmin(self.disparity)):.3f} .. {float(np.nanmax(self.disparity)):.3f} px/view"
            )
        else:
            d["ground-truth disparity"] = "no"
        if self.metadata.get("disparity_range") is not None:
            lo, hi = self.metadata["disparity_range"]
            d["disparity range (given)"] = f"{float(lo):.3f} .. {float(hi):.3f} px/view"
        if self.metadata.get("angular_spacing") is not None:
            d["angular spacing"] = self.metadata["angular_spacing"]
        return d

    def __repr__(self) -> str:
        V, U = self.grid
        Y, X = self.view_shape
        kind = "lazy" if self.is_lazy else "in memory"
        return (
            f"LightField({V}x{U} views of {Y}x{X}x{self.channels}, {self.n_views} present, {kind}, "
            f"format={self.metadata.get('format', '?')!r})"
        )


def check_lightfield(lf) -> None:
    """Raise LightFieldError unless ``lf`` is a LightField (what every light-field function takes)."""
    if not isinstance(lf, LightField):
        raise LightFieldError(
            f"Expected a LightField, got {type(lf).__name__}; read one with napari_lfdeblur.read_lightfield(path)."
        )
