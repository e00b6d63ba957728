"""The in-memory light field: one axis convention for the whole project.

``LightField.data`` is shaped (V, U, Y, X, C) = (vertical view, horizontal
view, row, column, channel), float32 in [0, 1].  View (0, 0) is the top-left
view of the camera grid (seen from behind the camera, looking at the scene),
view (V-1, U-1) the bottom-right one.  Moving right in U moves the viewpoint
right; moving down in V moves it down.  Views that the source does not have are
flagged False in ``view_mask`` and hold NaN in ``data`` so that nothing can use
invented pixels silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import LightFieldError


def _is_dask(a) -> bool:
    return type(a).__module__.startswith("dask.")


@dataclass
class LightField:
    """A 4D light field with its views on a regular (V, U) grid.

    Attributes
    ----------
    data
        (V, U, Y, X, C) float32 in [0, 1]; a numpy array or a lazy dask array
        (one chunk per view, decoded only when used).
    view_mask
        (V, U) booleans, True where the view exists.  Missing views hold NaN.
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
    view_mask: np.ndarray | None = None
    disparity: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.data.ndim != 5:
            raise LightFieldError(
                f"LightField.data must be 5D (V, U, Y, X, C), got shape {tuple(self.data.shape)}; "
                "greyscale light fields keep a channel axis of 1."
            )
        if self.view_mask is None:
            self.view_mask = np.ones(self.data.shape[:2], dtype=bool)
        self.view_mask = np.asarray(self.view_mask, dtype=bool)
        if self.view_mask.shape != tuple(self.data.shape[:2]):
            raise LightFieldError(
                f"view_mask shape {self.view_mask.shape} does not match the view grid "
                f"{tuple(self.data.shape[:2])}."
            )
        if not self.view_mask.any():
            raise LightFieldError("The light field has no views at all.")
        if self.disparity is not None:
            self.disparity = np.asarray(self.disparity, dtype=np.float32)
            if self.disparity.shape != tuple(self.data.shape[2:4]):
                raise LightFieldError(
                    f"disparity map shape {self.disparity.shape} does not match the view size "
                    f"{tuple(self.data.shape[2:4])}."
                )

    # -- shape helpers -------------------------------------------------
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

    # -- access --------------------------------------------------------
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

    def compute(self) -> "LightField":
        """Return a copy with ``data`` decoded into a numpy array."""
        if not self.is_lazy:
            return self
        return replace(self, data=np.asarray(self.data.compute(), dtype=np.float32))

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
