"""Saving and loading deblurring networks.

The project's own checkpoint (:func:`save_model`) is a dict::

    {"format": "napari-lfdeblur/1",
     "state_dict": {...},            # tensors only
     "config": {"arch": "DRBNet", "base": 32, "res_blocks": 2},
     "input_convention": "rgb_minus1_1",
     "training": {...},              # summary: data, epochs, losses (plain types)
     "package_version": "0.1.0",
     "extra": {...}}                 # optional, plain types

Files are always read with ``torch.load(..., weights_only=True)``: a checkpoint cannot run code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

import torch
from torch import nn

from ..devices import resolve_device
from ..errors import ModelError
from ..io.atomic import atomic_path
from .drbnet import INPUT_CONVENTION, DRBNet
from .precision import inference_precision, use_channels_last
from .record import ModelRecord, record_of

__all__ = ["FORMAT", "default_model_path", "is_torch_file", "load_model", "read_checkpoint", "save_model"]

FORMAT = "napari-lfdeblur/1"
_FORMAT_PREFIX = "napari-lfdeblur/"
_WRAPPER_KEYS = ("state_dict", "model", "params", "params_ema", "model_state_dict", "net", "network", "generator")
_PREFIXES = ("module.", "_orig_mod.")  # DataParallel's and torch.compile's, removed on loading
_AUTHORS_FILE = "single_image_defocus_deblurring.pth"


def default_model_path() -> Path:
    """Where the shipped default checkpoint lives (it may not exist yet)."""
    return Path(__file__).resolve().parent.parent / "weights" / "default.pt"


#: Models known by name besides "default": name -> a function returning the checkpoint file (it may fetch
#: it).  :mod:`.authors` adds "authors" (the package imports it), so this module never imports that one.
NAMED_MODELS: dict[str, Callable[[], Path]] = {}


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("napari-lfdeblur")
    except Exception:
        return "0.0.0+unknown"


# ---------------------------------------------------------------------- saving
def _check_plain(value: Any, where: str) -> None:
    """Only types ``torch.load(weights_only=True)`` can read back (and JSON-like ones)."""
    if value is None or type(value) in (bool, int, float, str):  # exact: np.float64 subclasses float
        return
    if isinstance(value, torch.Tensor):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise ModelError(f"{where}: dict keys must be str or int, got {type(k).__name__}")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise ModelError(
        f"{where} holds a {type(value).__name__}, which a safe (weights_only) load cannot read back: "
        "store only str, int, float, bool, None, lists, dicts and tensors (convert numpy values with float()/.tolist())"
    )


def _unwrap(model: nn.Module) -> nn.Module:
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def save_model(model: nn.Module, path, *, training: dict | None = None, extra: dict | None = None,
               half: bool = False) -> Path:
    """Write ``model`` to ``path`` in the project's format, atomically; returns the path.

    ``training`` is a summary of how it was trained (data, epochs, losses, ...), ``extra`` anything else; both
    must hold plain types only.  ``half=True`` stores the weights as float16 (half the file, for shipping:
    ``load_model`` loads them into a float32 network, whose outputs differ by far less than one uint8 level).
    """
    model = _unwrap(model)
    if not isinstance(model, DRBNet):
        raise ModelError(f"save_model saves DRBNet networks, got {type(model).__name__}")
    training = {} if training is None else training
    _check_plain(training, "training")
    if extra is not None:
        _check_plain(extra, "extra")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    payload = {
        "format": FORMAT,
        "state_dict": state,
        "config": model.config,
        "input_convention": getattr(model, "input_convention", INPUT_CONVENTION),
        "training": training,
        "package_version": _package_version(),
    }
    if extra is not None:
        payload["extra"] = extra

    return save_payload(payload, Path(path).expanduser())


def save_payload(payload, path: Path) -> Path:
    """``torch.save`` to ``path`` atomically: the new file whole, or the old one left in place.

    Through a file object of ours: given a path, torch's zip writer reports a full disk only as a RuntimeError,
    where from our file object the ENOSPC comes with it, for atomic_path to raise a one-line OutputError.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return path


# --------------------------------------------------------------------- loading
def _is_state_dict(obj: Any) -> TypeGuard[Mapping[str, torch.Tensor]]:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _strip_prefixes(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = dict(sd)
    while out and (p := next((q for q in _PREFIXES if all(k.startswith(q) for k in out)), None)):
        out = {k[len(p) :]: v for k, v in out.items()}
    return out


def _describe_keys(obj: Any, n: int = 6) -> str:
    if isinstance(obj, Mapping):
        keys = list(obj)
        more = f", ... ({len(keys)} in all)" if len(keys) > n else ""
        return "keys " + ", ".join(repr(k) for k in keys[:n]) + more
    return f"a {type(obj).__name__}"


def _infer_config(sd: Mapping[str, torch.Tensor], source: str) -> dict[str, Any]:
    """DRBNet config from a bare state dict: width from conv1_1, residual blocks from conv4_4."""
    w = sd.get("conv1_1.0.weight")
    if w is None or "upconv0_kernel.2.weight" not in sd:
        raise ModelError(
            f"{source} is not a DRBNet checkpoint: it has no 'conv1_1.0.weight' / 'upconv0_kernel.2.weight' tensors "
            f"({_describe_keys(sd)}). Pass a napari-lfdeblur checkpoint (saved with save_model) or the authors' "
            f"'{_AUTHORS_FILE}'."
        )
    base = int(w.shape[0])
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"conv4_4\.(\d+)\.stem\.", k))}
    return {"arch": "DRBNet", "base": base, "res_blocks": len(blocks)}


def _find_state_dict(obj: Any, source: str) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None, dict]:
    """(state dict, config or None, metadata) from whatever a checkpoint file held."""
    if not isinstance(obj, Mapping):
        raise ModelError(
            f"{source} holds a {type(obj).__name__}, not a state dict or a napari-lfdeblur checkpoint; "
            f"pass a napari-lfdeblur checkpoint or the authors' '{_AUTHORS_FILE}'"
        )
    fmt = obj.get("format")
    if isinstance(fmt, str) and fmt.startswith(_FORMAT_PREFIX):
        if fmt != FORMAT:
            raise ModelError(
                f"{source} is a {fmt!r} checkpoint; this napari-lfdeblur ({_package_version()}) reads {FORMAT!r}: "
                "upgrade napari-lfdeblur"
            )
        sd = obj.get("state_dict")
        if not _is_state_dict(sd):
            raise ModelError(f"{source} is a {FORMAT} checkpoint without a valid 'state_dict': the file is damaged")
        meta = {k: obj.get(k) for k in ("input_convention", "training", "package_version", "extra") if k in obj}
        return _strip_prefixes(sd), obj.get("config"), meta
    if _is_state_dict(obj):
        return _strip_prefixes(obj), None, {}
    for key in _WRAPPER_KEYS:
        inner = obj.get(key)
        if _is_state_dict(inner):
            cfg = obj.get("config") if isinstance(obj.get("config"), dict) else None
            return _strip_prefixes(inner), cfg, {}
    raise ModelError(
        f"{source} holds no recognisable state dict ({_describe_keys(obj)}); expected a napari-lfdeblur "
        f"checkpoint, a bare DRBNet state dict such as the authors' '{_AUTHORS_FILE}', or a dict with one under "
        f"{', '.join(repr(k) for k in _WRAPPER_KEYS[:3])}"
    )


def _load_strict(model: nn.Module, sd: Mapping[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with a message that names the mismatch."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [
        (k, tuple(sd[k].shape), tuple(v.shape)) for k, v in expected.items() if k in sd and sd[k].shape != v.shape
    ]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing tensor(s) (first: {', '.join(missing[:4])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensor(s) (first: {', '.join(unexpected[:4])})")
        if shapes:
            k, got, want = shapes[0]
            parts.append(f"{len(shapes)} shape mismatch(es) (first: {k} is {got} in the file, {want} in the model)")
        cfg = getattr(model, "config", None)
        raise ModelError(
            f"{source} does not match {type(model).__name__}{'' if cfg is None else ' ' + str(cfg)}: "
            + "; ".join(parts)
            + ". It was probably saved from another network or a damaged file: pass a napari-lfdeblur "
            f"checkpoint (save_model) or the authors' '{_AUTHORS_FILE}'."
        )
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        for k, v in model.state_dict().items():
            # a sum is NaN/inf when any element is (or, rarely, when it overflows: then look closer)
            if v.is_floating_point() and not torch.isfinite(v.sum()) and not torch.isfinite(v).all():
                raise ModelError(f"{source} contains NaN or infinite weights (first: {k}): the checkpoint is damaged")


def _looks_like_web_page(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(512).lstrip().lower()
    except OSError:
        return False
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body"))


def read_checkpoint(path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with every failure turned into a ModelError."""
    if isinstance(path, str) and not path.strip():
        raise ModelError(_EMPTY_PATH)
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"checkpoint file not found: {p}")
    if p.is_dir():
        raise ModelError(f"{p} is a folder; pass the checkpoint file inside it (a .pt/.pth file)")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (zip), EOFError, ...
        if _looks_like_web_page(p):
            hint = (
                "it is a web page (HTML), not a checkpoint: the download link gave its page instead of the file "
                "(Google Drive does this for large files: use its 'Download anyway' button)"
            )
        # torch's own message is not shown: for a file it cannot read safely it suggests weights_only=False,
        # which would run whatever code the file holds
        elif is_torch_file(p) and ("weights_only" in str(e) or "Weights only load failed" in str(e)):
            hint = ("it holds Python objects besides tensors, which are never loaded, for safety (unpickling them "
                    "can run code); ask its author for a plain state dict "
                    "(torch.save(model.state_dict(), 'model.pth')) or a napari-lfdeblur checkpoint")
        elif is_torch_file(p):
            hint = "it is truncated or damaged: download or copy it again"
        else:
            hint = (f"it is not a PyTorch checkpoint file at all; pass a napari-lfdeblur checkpoint (.pt) or the "
                    f"authors' '{_AUTHORS_FILE}'")
        raise ModelError(f"{p} is not a readable checkpoint: {hint} ({type(e).__name__})") from e


_EMPTY_PATH = "no checkpoint given (the path is empty): pass a checkpoint file (.pt/.pth) or 'default'"


def is_torch_file(p: Path) -> bool:
    """A zip archive (torch.save since 1.6) or a pickle (older torch.save), judged by the first bytes."""
    try:
        with open(p, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def _prepare(model: nn.Module, device, dtype, keep_dtype: bool = False, training=None, source=None) -> nn.Module:
    """``model`` on ``device`` in ``dtype``, in eval mode, with its :class:`~.record.ModelRecord` (``training``
    and ``source`` replace what an earlier ``load_model`` recorded)."""
    before = record_of(model)
    dev = resolve_device(device)
    own = next((p.dtype for p in model.parameters()), None) if keep_dtype else None
    weights, autocast = inference_precision(dtype, dev, own)
    model = model.to(device=dev) if keep_dtype and dtype is None else model.to(device=dev, dtype=weights)
    if use_channels_last(dev):
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # not in torch's stubs
    model.eval()
    model.record = ModelRecord(  # type: ignore[assignment]  # an attribute of ours on the module
        device=dev,
        compute_dtype=autocast,
        input_convention=before.input_convention,
        training=before.training if training is None else training,
        source=before.source if source is None else source,
    )
    return model


def _checkpoint_file(name_or_path) -> Path:
    """The file a model name (``"default"``, ``"authors"``, ...) or path stands for; a name's file may be fetched."""
    name = str(name_or_path).strip().lower() if isinstance(name_or_path, str) else None
    if name == "default":
        path = default_model_path()
        if not path.exists():
            raise ModelError(
                f"the default model file is missing ({path}): reinstall napari-lfdeblur (its wheel ships "
                "weights/default.pt; a source checkout gets it from git), or pass a checkpoint path instead: "
                "one saved with save_model / a training run, or the "
                f"authors' '{_AUTHORS_FILE}' (load_model('path/to/{_AUTHORS_FILE}'))"
            )
        return path
    if name in NAMED_MODELS:
        return NAMED_MODELS[name]()
    if not str(name_or_path).strip():
        raise ModelError(_EMPTY_PATH)
    return Path(name_or_path)


def load_model(name_or_path="default", device="auto", dtype=None) -> nn.Module:
    """A deblurring network ready for inference: eval mode, on ``device``, in ``dtype``.

    ``name_or_path``: ``"default"`` (the shipped model), ``"authors"`` (the
    authors' published weights, AGPL-3.0: downloaded into a per-user cache on
    first use, announced on stderr, and checked against their recorded sha256
    afterwards, offline too; see :func:`~napari_lfdeblur.fetch_authors_checkpoint`), a checkpoint path
    (napari-lfdeblur format, the authors' bare state dict, or a wrapped state
    dict), a state dict already in memory, or an ``nn.Module`` (returned
    as is, moved to the device; its dtype is kept unless ``dtype`` is given).  ``device``: see
    :func:`~napari_lfdeblur.devices.resolve_device`; ``dtype``: see
    ``napari_lfdeblur.network.precision.inference_precision`` (``None``/``"auto"``: float32 weights,
    under bfloat16 autocast on a CPU with native bfloat16, about twice as fast).  The result carries a
    :class:`~napari_lfdeblur.network.record.ModelRecord` as ``.record`` (device, the
    autocast type or None, input convention, training summary, source).
    Every problem raises :class:`~napari_lfdeblur.errors.ModelError`.
    """
    if isinstance(name_or_path, nn.Module):
        return _prepare(name_or_path, device, dtype, keep_dtype=True)
    if isinstance(name_or_path, Mapping):
        obj, source = name_or_path, "the given dict"
    elif isinstance(name_or_path, (str, os.PathLike)):
        path = _checkpoint_file(name_or_path)
        obj, source = read_checkpoint(path), str(path)
    else:
        raise ModelError(
            f"model must be 'default', a checkpoint path, a state dict or a torch nn.Module, "
            f"got {type(name_or_path).__name__}"
        )
    sd, config, meta = _find_state_dict(obj, source)
    if config is None:
        config = _infer_config(sd, source)
    convention = meta.get("input_convention", INPUT_CONVENTION)
    if convention != INPUT_CONVENTION:
        raise ModelError(
            f"{source} expects inputs as {convention!r}, but this version only supports {INPUT_CONVENTION!r}: "
            "upgrade napari-lfdeblur"
        )
    try:
        model = DRBNet.from_config(config)
    except ModelError as e:
        raise ModelError(f"{source}: {e}") from e
    except TypeError as e:
        raise ModelError(f"{source}: invalid DRBNet config {config!r} ({e})") from e
    _load_strict(model, sd, source)
    return _prepare(model, device, dtype, training=meta.get("training") or {},
                    source=None if source == "the given dict" else source)
