"""Lazy, chunked deblurring of dask arrays with ``map_overlap``: the tiling of :mod:`.tiling` with dask's chunks
as the parts, each computed from itself plus a halo of its neighbours (none at the image border) when, and only
when, it is asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np

from .tile_plan import lazy_chunks
from .tiling import ALIGN


def as_dask(arr):
    """``arr`` as a dask array; a numpy array is read through views of its chunks, neither copied nor hashed
    (``dask.array.from_array`` copies it and hashes every byte: seconds and gigabytes for a huge image)."""
    import dask.array as da

    if isinstance(arr, da.Array):
        return arr
    if not isinstance(arr, np.ndarray):  # zarr, h5py, ...: dask reads them chunk by chunk
        return da.from_array(arr, name=False)

    def view(block_info=None):
        return arr[tuple(slice(*loc) for loc in block_info[None]["array-location"])]

    chunks = da.core.normalize_chunks("auto", arr.shape, dtype=arr.dtype)
    return da.map_blocks(view, chunks=chunks, dtype=arr.dtype, meta=np.empty((0,) * arr.ndim, dtype=arr.dtype),
                         name=f"image-{uuid.uuid4().hex}")


def _spatial_chunks(arr, chunk: int | None, ndim_plane: int, depth: int = 0):
    """Rechunk so that stack axes have chunk 1, channels one chunk and Y/X about ``chunk``
    (:func:`~.tile_plan.lazy_chunks`)."""
    import dask.array as da

    arr = da.asarray(arr)
    n_stack = arr.ndim - ndim_plane
    chunks: list = [1] * n_stack
    chunks += [lazy_chunks(arr.shape[ax], max(arr.chunks[ax]), chunk, depth) for ax in (n_stack, n_stack + 1)]
    chunks += [-1] * (ndim_plane - 2)  # channels
    return arr.rechunk(tuple(chunks))


def lazy_map_planes(arr, plane_fn: Callable[[np.ndarray], np.ndarray], *, rgb: bool, depth: int, out_dtype,
                    chunk: int | None = None):
    """Apply ``plane_fn`` ((Y', X'[, C]) block -> same shape) lazily to (..., Y, X[, C]): blocks arrive with a
    halo of ``depth`` pixels (a multiple of 8, so that they start on the network's grid), trimmed off after."""
    if depth % ALIGN:
        raise ValueError(f"depth must be a multiple of {ALIGN}, got {depth}")
    ndim_plane = 3 if rgb else 2
    arr = _spatial_chunks(arr, chunk, ndim_plane, depth)
    n_stack = arr.ndim - ndim_plane
    depths = {ax: 0 for ax in range(arr.ndim)}
    for ax in (n_stack, n_stack + 1):  # an axis in one chunk has no neighbour to borrow a halo from
        depths[ax] = int(depth) if len(arr.chunks[ax]) > 1 else 0

    def block_fn(block):
        planes = block.reshape((-1,) + block.shape[n_stack:])
        out = np.stack([plane_fn(p) for p in planes])
        return out.reshape(block.shape).astype(out_dtype, copy=False)

    # a name of our own: dask would otherwise name the result by pickling block_fn, network weights and all
    # (0.1-0.3 s per call on a CPU, seconds for the levels of a pyramid, before napari can draw anything)
    return arr.map_overlap(block_fn, depth=depths, boundary="none", trim=True, dtype=np.dtype(out_dtype),
                           meta=np.empty((0,) * arr.ndim, dtype=out_dtype), name=f"deblur-{uuid.uuid4().hex}")
