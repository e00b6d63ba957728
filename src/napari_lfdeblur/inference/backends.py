"""Which runtime runs the network: PyTorch, or OpenVINO on a CPU where it is installed and faster.

``backend="auto"`` (the default of ``deblur``) picks OpenVINO when all hold:
the network is a DRBNet on the CPU, the ``openvino`` package is installed
(the ``[openvino]`` extra), the CPU has AMX, and ``$LFDEBLUR_BACKEND`` does
not say ``torch``.  Measured (``benchmarks/bench_inference.py``, 1 MP):
on a 2-core Intel Xeon with AMX, OpenVINO ran the full network in 3.7 s
against 6.9 s for PyTorch in bfloat16 (an earlier probe); on a 2-core AMD EPYC with
AVX512-BF16 but no AMX PyTorch was the faster (4.2 s against 4.6 s, and
1.4 s against 2.1 s for the shipped model), so there ``auto`` keeps PyTorch.
``$LFDEBLUR_BACKEND=openvino`` makes ``auto`` pick OpenVINO wherever it can
run.  Anything that goes wrong preparing it (an OpenVINO version that cannot
import this torch's graphs, a read-only cache...) falls back to PyTorch with
a warning, once per network.  ``"torch"`` and ``"openvino"`` force one (the
latter raises where it cannot run).  Any other ``$LFDEBLUR_BACKEND`` (a typo)
is a :class:`~napari_lfdeblur.errors.ModelError` when ``auto`` reads it.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable

import numpy as np

from ..errors import ModelError
from .models import is_drbnet, precision_of, run_network
from .openvino_backend import OpenVINONetwork, openvino_available

__all__ = ["BACKENDS", "resolve_backend", "network_function"]

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "openvino")
BACKEND_ENV = "LFDEBLUR_BACKEND"


def _env_preference() -> str:
    """``$LFDEBLUR_BACKEND``, lower-cased ("" when unset); a value that names no backend is an error, so that a
    typo does not silently run the other runtime."""
    raw = os.environ.get(BACKEND_ENV, "")
    preference = raw.strip().lower()
    if preference not in ("", *BACKENDS):
        raise ModelError(
            f"${BACKEND_ENV} is {raw!r}, which is not a backend: set it to {', '.join(BACKENDS[:-1])} or "
            f"{BACKENDS[-1]}, or unset it"
        )
    return preference


def resolve_backend(net, backend: str | None = "auto") -> str:
    """``"torch"`` or ``"openvino"``: what ``backend`` means for this network on this machine."""
    from ..network.record import record_of

    choice = str(backend or "auto").strip().lower()
    if choice not in BACKENDS:
        raise ModelError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    on_cpu = record_of(net).device.type == "cpu"
    if choice == "openvino":
        if not on_cpu:
            raise ModelError("the OpenVINO backend runs on the CPU; use device='cpu' or backend='torch'")
        if not openvino_available():
            raise ModelError("backend='openvino' needs the openvino package: pip install 'napari-lfdeblur[openvino]'")
        if not is_drbnet(net):
            raise ModelError("the OpenVINO backend runs DRBNet networks; use backend='torch' for other modules")
        return "openvino"
    if choice == "auto":
        preference = _env_preference()
        if preference == "torch" or not (on_cpu and is_drbnet(net) and openvino_available()):
            return "torch"
        from ..network.devices import cpu_has_amx

        if preference == "openvino" or cpu_has_amx():
            return "openvino"
    return "torch"


class _WithFallback:
    """OpenVINO, and PyTorch for good once preparing OpenVINO failed (warned once)."""

    def __init__(self, net, precision: str, required: bool):
        self.net = net
        self.openvino = OpenVINONetwork(net, precision)
        self.required = required
        self.failed = False
        self._lock = threading.Lock()

    def __reduce__(self):
        return (_WithFallback, (self.net, self.openvino.precision, self.required))

    @property
    def backend(self) -> str:
        return "torch" if self.failed else "openvino"

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        if not self.failed:
            try:
                return self.openvino(rgb)
            except MemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any failure of the optional runtime: fall back to torch
                if self.required:
                    raise ModelError(f"OpenVINO could not run the network: {e}") from e
                with self._lock:
                    if not self.failed:
                        self.failed = True
                        msg = f"OpenVINO could not run the network ({type(e).__name__}: {e}); using PyTorch"
                        warnings.warn(msg, RuntimeWarning, stacklevel=2)
                        log.warning(msg)
        return run_network(rgb, self.net)


def network_function(net, backend: str | None = "auto") -> Callable[[np.ndarray], np.ndarray]:
    """A function running ``net`` on float RGB in [0, 1], (N, H, W, 3) or (H, W, 3), in the chosen runtime.

    Picklable (dask workers rebuild it from the network), and the precision is
    the one PyTorch would use for this network (``precision_of``).
    """
    chosen = resolve_backend(net, backend)
    if chosen == "torch":
        return _TorchFunction(net)
    precision = precision_of(net)
    if precision not in ("bfloat16", "float32"):
        precision = "float32"
    return _WithFallback(net, precision, required=str(backend).lower() == "openvino")


class _TorchFunction:
    """``run_network`` bound to a network (a class rather than a closure, so that dask can pickle it)."""

    backend = "torch"

    def __init__(self, net):
        self.net = net

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        return run_network(rgb, self.net)

