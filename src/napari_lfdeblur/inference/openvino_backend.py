"""The network through OpenVINO, an optional runtime made for CPU inference (the ``[openvino]`` extra).

The torch network is traced once per set of weights, with free height and width, and kept on disk
(``<cache>/openvino``); per input shape it is compiled (OpenVINO's ``CACHE_DIR`` keeps compiled graphs on disk,
this process the last few).  Batches go in and out as NHWC in the network's [-1, 1]: the layout change runs
inside the compiled graph.  Inputs are padded to multiples of 8 here, as DRBNet does itself, because the traced
graph holds only the no-padding branch.  :class:`OpenVINONetwork` pickles as its torch network, so dask
workers rebuild (and recompile) it.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import threading
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .tiling import ALIGN

__all__ = ["OpenVINONetwork", "openvino_available", "openvino_cache_dir"]

log = logging.getLogger(__name__)

# part of the cache key: raise it when the tracing changes, so that models traced before are not reused
_TRACE_FORMAT = 1
_SHAPES_KEPT = 4  # compiled shapes kept per network: tiles of one image need one to three
# compiled graphs hold the weights (12 MB per shape for the shipped model, 47 MB for the full one):
# the oldest are deleted beyond this
_COMPILED_CACHE_BYTES = 512 * 2**20
_convert_lock = threading.Lock()


def openvino_available() -> bool:
    """Whether the ``openvino`` package can be imported (checked without importing it)."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def openvino_cache_dir() -> Path:
    """Where traced models and compiled graphs are kept: ``openvino/`` in the per-user cache
    (``$LFDEBLUR_CACHE``, else platformdirs'), beside the authors' weights."""
    from ..cache import cache_dir

    return cache_dir() / "openvino"


def _weights_key(module) -> str:
    """A hash of the weights, the module's class and configuration, and both libraries' versions."""
    import openvino
    import torch

    h = hashlib.sha256()
    h.update(f"{type(module).__module__}.{type(module).__qualname__}|{openvino.__version__}|{torch.__version__}"
             f"|{_TRACE_FORMAT}".encode())
    for name in ("base", "res_blocks", "input_detail", "clip_output", "fac_impl"):
        h.update(f"|{name}={getattr(module, name, None)!r}".encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:32]


def _traced_model(module):
    """The OpenVINO model of ``module`` with free N, H, W: read from the disk cache, or traced and saved there."""
    import openvino as ov
    import torch

    folder = openvino_cache_dir()
    xml = folder / f"{_weights_key(module)}.xml"
    core = ov.Core()
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        try:
            return core.read_model(str(xml))
        except Exception as e:  # a damaged cache entry: trace again
            log.warning("could not read the cached OpenVINO model %s (%s); tracing again", xml, e)
    log.info("tracing the network for OpenVINO (once per set of weights; kept in %s)", folder)
    traced = module
    if any(p.dtype != torch.float32 or p.device.type != "cpu" for p in module.parameters()):
        traced = copy.deepcopy(module).to("cpu", torch.float32)
    traced = traced.eval()
    # DRBNet's forward checks shapes; tracing fixes them to constants and says so for each
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        model = ov.convert_model(traced, example_input=torch.zeros(1, 3, 64, 64),
                                 input=[ov.PartialShape([-1, 3, -1, -1])])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # written under a temporary name and renamed: a crash leaves no half-written pair
        tmp = folder / f".{xml.stem}.{os.getpid()}.{threading.get_ident()}.xml"
        ov.save_model(model, str(tmp), compress_to_fp16=False)
        os.replace(tmp.with_suffix(".bin"), xml.with_suffix(".bin"))
        os.replace(tmp, xml)
    except OSError as e:  # a read-only cache costs time, not results
        log.warning("could not keep the OpenVINO model in %s (%s); it will be traced again next time", folder, e)
    return model


def _prune(folder: Path, max_bytes: int) -> None:
    """Delete the least recently written compiled graphs until ``folder`` holds at most ``max_bytes``
    (the newest, just written, always stays)."""
    try:
        blobs = sorted((p.stat().st_mtime, p.stat().st_size, p) for p in folder.glob("*.blob"))
    except OSError:
        return
    total = sum(size for _, size, _ in blobs)
    for _, size, path in blobs[:-1]:
        if total <= max_bytes:
            break
        try:
            path.unlink()
            total -= size
        except OSError:
            pass


class OpenVINONetwork:
    """A DRBNet run by OpenVINO on the CPU: call it on (N, H, W, 3) float RGB in [-1, 1], get the same back.

    ``precision``: ``"bfloat16"`` or ``"float32"`` (what OpenVINO computes in).  It runs on as many threads
    per call as torch does, so that dask's one-block-per-thread accounting holds.
    """

    def __init__(self, net, precision: str = "float32"):
        if precision not in ("bfloat16", "float32"):
            raise ModelError(f"OpenVINO runs in 'bfloat16' or 'float32', not {precision!r}")
        self.net = net
        self.precision = precision
        self._model: Any = None  # the traced model with free shape, made on first call
        self._compiled: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()
        self.failed = False  # set by the runtime when it gave up on OpenVINO for PyTorch

    def __reduce__(self):
        return (OpenVINONetwork, (self.net, self.precision))

    def compiled(self, shape: tuple[int, int, int, int]):
        """The graph compiled for NHWC ``shape`` (H and W multiples of 8), made once per shape."""
        with self._lock:
            hit = self._compiled.get(shape)
            if hit is not None:
                self._compiled.move_to_end(shape)
                return hit
            import openvino as ov
            import torch
            from openvino.preprocess import PrePostProcessor

            if self._model is None:
                with _convert_lock:
                    self._model = _traced_model(self.net)
            model = self._model.clone()
            n, h, w, _ = shape
            model.reshape([n, 3, h, w])
            ppp = PrePostProcessor(model)
            # NHWC from the caller; the network wants NCHW
            ppp.input().tensor().set_layout(ov.Layout("NHWC"))
            ppp.input().model().set_layout(ov.Layout("NCHW"))
            ppp.output().tensor().set_layout(ov.Layout("NHWC"))
            ppp.output().model().set_layout(ov.Layout("NCHW"))
            model = ppp.build()
            folder = openvino_cache_dir() / "compiled"
            config = {
                "INFERENCE_PRECISION_HINT": "bf16" if self.precision == "bfloat16" else "f32",
                "INFERENCE_NUM_THREADS": max(1, torch.get_num_threads()),
                "PERFORMANCE_HINT": "LATENCY",
            }
            try:
                folder.mkdir(parents=True, exist_ok=True)
                config["CACHE_DIR"] = str(folder)
            except OSError:
                pass
            compiled = ov.Core().compile_model(model, "CPU", config)
            if "CACHE_DIR" in config:
                _prune(folder, _COMPILED_CACHE_BYTES)
            self._compiled[shape] = compiled
            while len(self._compiled) > _SHAPES_KEPT:
                self._compiled.popitem(last=False)
            return compiled

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        n, h, w, _ = batch.shape
        ph, pw = (-h) % ALIGN, (-w) % ALIGN
        if ph or pw:  # as DRBNet pads: reflect where the side allows it, else replicate
            widths = ((0, 0), (0, ph), (0, pw), (0, 0))
            batch = np.pad(batch, widths, mode="reflect") if ph < h and pw < w else np.pad(batch, widths, mode="edge")
        compiled = self.compiled(tuple(batch.shape))
        request = compiled.create_infer_request()  # one per call: dask threads call at once
        request.infer({0: batch})
        return request.get_output_tensor(0).data[:, :h, :w].copy()  # the request's buffer is reused
