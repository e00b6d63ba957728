"""Sub-pixel shifts of view images on torch tensors, the primitive that refocusing, disparity estimation and
procedural light fields are made of (it sits below all three, so none imports another for it), and the thread
setting of their loops."""

from __future__ import annotations

import contextlib
import math

from ..errors import LightFieldError

__all__ = ["LOOP_THREADS", "cpu_threads", "resolve_device", "shift", "shift_add"]

#: torch CPU threads of the slice-based loops here and in ``refocus``, ``disparity`` and ``synthetic``: hundreds
#: of small operations, each ending in an OpenMP barrier that waits for any descheduled thread on a busy CPU
#: (figures: docs/performance.md, "Light fields").  The setting is per thread; 0 keeps torch's own.
LOOP_THREADS = 1


@contextlib.contextmanager
def cpu_threads(device=None):
    """Run the enclosed torch CPU work with ``LOOP_THREADS`` threads (restored after)."""
    n = LOOP_THREADS
    if not n or (device is not None and getattr(device, "type", str(device)) != "cpu"):
        yield
        return
    import torch

    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _int_shift_add(acc, src, k: int, w: float, axis: int) -> None:
    """``acc[i] += w * src[clamp(i - k)]`` along ``axis`` (0 or 1 of a (Y, X, ...) tensor)."""
    if w == 0.0:
        return
    n = src.shape[axis]
    k = max(-n, min(n, k))

    def sl(a, start, stop):
        return a[start:stop] if axis == 0 else a[:, start:stop]

    if k >= 0:
        if k < n:
            sl(acc, k, n).add_(sl(src, 0, n - k), alpha=w)
        if k > 0:
            sl(acc, 0, k).add_(sl(src, 0, 1), alpha=w)
    else:
        sl(acc, 0, n + k).add_(sl(src, -k, n), alpha=w)
        sl(acc, n + k, n).add_(sl(src, n - 1, n), alpha=w)


def _keys(t: float) -> float:
    """Keys' cubic convolution kernel (a = -0.5)."""
    t = abs(t)
    if t <= 1.0:
        return 1.5 * t**3 - 2.5 * t**2 + 1.0
    if t < 2.0:
        return -0.5 * t**3 + 2.5 * t**2 - 4.0 * t + 2.0
    return 0.0


def shift_add(acc, src, s: float, w: float, axis: int, order: int = 1) -> None:
    """``acc += w * src(i - s)`` along ``axis``, clamped borders; ``order`` 1 is
    bilinear, 3 Keys' cubic convolution."""
    k = math.floor(s)
    f = s - k
    if f < 1e-6:
        _int_shift_add(acc, src, k, w, axis)
    elif f > 1 - 1e-6:
        _int_shift_add(acc, src, k + 1, w, axis)
    elif order == 1:
        _int_shift_add(acc, src, k, w * (1.0 - f), axis)
        _int_shift_add(acc, src, k + 1, w * f, axis)
    else:
        # the sample at i - k - j lies at distance |f - j| from i - s
        for j in (-1, 0, 1, 2):
            _int_shift_add(acc, src, k + j, w * _keys(f - j), axis)


def shift(out, src, sy: float, sx: float, tmp=None, order: int = 1):
    """``out = src(y - sy, x - sx)`` (bilinear, or cubic with ``order=3``; clamped
    borders); ``tmp`` a scratch buffer like ``src`` (needed when both shifts are
    non-zero).  Returns ``out``."""
    if sy == 0.0 and sx == 0.0:
        out.copy_(src)
        return out
    if sy == 0.0 or sx == 0.0:  # one pass
        out.zero_()
        shift_add(out, src, sx or sy, 1.0, axis=1 if sx else 0, order=order)
        return out
    if tmp is None:
        tmp = src.new_empty(src.shape)
    tmp.zero_()
    shift_add(tmp, src, sx, 1.0, axis=1, order=order)
    out.zero_()
    shift_add(out, tmp, sy, 1.0, axis=0, order=order)
    return out


def resolve_device(device=None):
    """A ``torch.device``: None means the CPU (refocusing is cheap there); anything else as
    :func:`napari_lfdeblur.devices.resolve_device` (``"auto"``, ``"cuda:0"``, ...), with
    its errors raised as ``LightFieldError``."""
    import torch

    from ..devices import resolve_device as resolve
    from ..errors import ModelError

    if device is None:
        return torch.device("cpu")
    try:
        return resolve(device)
    except ModelError as e:
        raise LightFieldError(str(e)) from e
