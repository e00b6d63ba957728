"""Scoring deblurred images against sharp references (how: docs/api.md, Evaluation).

:func:`compare` scores one image (what the Deblur widget shows for a "sharp reference" layer); :func:`evaluate`
a pair folder, deblurred by a model or given as a folder of outputs, beside the blurry input so that the gain is
visible.  PSNR and SSIM come from :mod:`~napari_lfdeblur.training.metrics`.
"""

from __future__ import annotations

import csv as _csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cancel import cancel_check, check_function
from .errors import DeblurInputError, LFDeblurError

__all__ = ["Evaluation", "compare", "evaluate", "lpips_status"]

log = logging.getLogger(__name__)

METRICS = ("psnr", "ssim", "mae")
# torchvision's ImageNet AlexNet, the backbone lpips builds on; torch keeps it in its hub cache
ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
ALEXNET_URL = f"https://download.pytorch.org/models/{ALEXNET_FILE}"


# ---------------------------------------------------------------- one image
def _fixed_range(x: np.ndarray):
    """The range an image's type implies (uint8: 0-255; float in [0, 1]: 0-1), or None."""
    if x.dtype == np.uint8:
        return 0.0, 255.0
    if x.dtype.kind == "f" and x.size and np.nanmin(x) >= 0.0 and np.nanmax(x) <= 1.0:
        return 0.0, 1.0
    return None


def _unit_pair(image, reference, rgb):
    """Both images as float64 (N, H, W, C) in [0, 1] (see :func:`compare`): images without a fixed range are
    mapped by the *reference's* minimum and maximum, so a 16-bit image using a tenth of its range is not scored
    as nearly black."""
    a, r = np.asarray(image), np.asarray(reference)
    if a.shape != r.shape:
        raise DeblurInputError(
            f"the image ({'x'.join(map(str, a.shape))}) and its sharp reference ({'x'.join(map(str, r.shape))}) "
            "differ in size: compare full-size results with references of the same size (no crop or resize)"
        )
    rgb = (a.ndim >= 3 and a.shape[-1] in (3, 4)) if rgb is None else bool(rgb)
    if a.ndim < (3 if rgb else 2):
        raise DeblurInputError(f"expected an image (Y, X) or (Y, X, C), got shape {a.shape}")
    a, r = (a[..., :3], r[..., :3]) if rgb else (a[..., None], r[..., None])  # alpha is not part of the picture
    rr = _fixed_range(r)
    # the reference decides for an image of its own type (a result may overshoot [0, 1] a little)
    ra = rr if rr is not None and a.dtype == r.dtype else _fixed_range(a)
    if ra is None or rr is None:
        if a.dtype != r.dtype:
            raise DeblurInputError(
                f"the image ({a.dtype}) and the reference ({r.dtype}) have no common intensity scale: "
                "convert them to the same type first"
            )
        lo, hi = float(np.nanmin(r)), float(np.nanmax(r))
        ra = rr = (lo, hi if hi > lo else lo + 1.0)
    h, w, c = a.shape[-3:]

    def unit(x, rng):
        x = (np.nan_to_num(x.astype(np.float64)) - rng[0]) / (rng[1] - rng[0])
        return x.reshape(-1, h, w, c)

    return unit(a, ra), unit(r, rr)


def _scores(a: np.ndarray, r: np.ndarray) -> dict[str, float]:
    """PSNR, SSIM and MAE of float (N, H, W, C) arrays in [0, 1] (means over N)."""
    from .training.metrics import finite_mean, psnr, ssim

    return {
        "psnr": finite_mean(psnr(a, r, reduction="none")),
        "ssim": ssim(a, r),  # a smaller window under 11x11, an error under 3x3: never a NaN shown as a score
        "mae": float(np.mean(np.abs(a - r))),
    }


def compare(image, reference, *, rgb=None) -> dict[str, float]:
    """PSNR (dB), SSIM and MAE of ``image`` against ``reference``.

    Both (Y, X), (Y, X, C) or stacks of them, of equal shape (else
    :class:`~napari_lfdeblur.errors.DeblurInputError`); stacks give the mean over planes.  ``rgb``: whether the
    last axis holds channels (default: when it has 3 or 4).  Intensities: uint8 / 255, floats as they are when
    the reference is in [0, 1], anything else (uint16, other floats) mapped by the reference's minimum and
    maximum.  SSIM uses an 11x11 window, for images under 11x11 the largest odd window that fits (a score, though
    not one comparable with 11x11 scores); images under 3x3 raise :class:`~napari_lfdeblur.errors.DeblurInputError`.
    """
    return _scores(*_unit_pair(image, reference, rgb))


# ---------------------------------------------------------------- LPIPS
def lpips_status() -> tuple[bool, str]:
    """Whether LPIPS can be computed here without downloading anything, and why not."""
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    if spec is None or spec.origin is None:
        return False, "the lpips package is not installed (pip install lpips)"
    if importlib.util.find_spec("torchvision") is None:
        return False, "lpips needs torchvision, which is not installed (pip install torchvision)"
    # lpips loads its linear layers from its own package folder ...
    linear = Path(spec.origin).parent / "weights" / "v0.1" / "alex.pth"
    if not linear.is_file():
        return False, f"lpips's weight file {linear} is missing: reinstall lpips"
    # ... and the AlexNet backbone through torchvision, which would download it into torch's hub cache
    import torch

    backbone = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not backbone.is_file():
        return False, f"the AlexNet weights are not on this machine: put {ALEXNET_URL} at {backbone}"
    return True, ""


def _lpips_scorer(device):
    """``score(a, b)`` for float (H, W, 3) arrays in [0, 1], built from local files only."""
    import lpips as lpips_pkg
    import torch

    # pnet_rand=True: lpips builds an untrained AlexNet (no download); the ImageNet weights come from
    # the local file lpips_status found
    net = lpips_pkg.LPIPS(net="alex", pnet_rand=True, verbose=False)
    state = torch.load(Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE, map_location="cpu",
                       weights_only=True)
    # lpips keeps torchvision's layer numbers inside its slices: sliceK.N.weight <- features.N.weight
    net.net.load_state_dict({k: state["features." + k.split(".", 1)[1]] for k in net.net.state_dict()})
    net = net.eval().to(device)

    def tensor(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).permute(2, 0, 1)[None].to(device)

    def score(a, b) -> float:
        with torch.inference_mode():
            return float(net(tensor(a), tensor(b), normalize=True).mean())

    return score


# ---------------------------------------------------------------- pair folders
def _find_outputs(folder, names: list[str]) -> dict[str, Path]:
    """Output file per pair name: ``NAME.ext``, or ``NAME_deblurred.ext`` as ``lfdeblur deblur`` writes."""
    from .io.formats import image_files

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DeblurInputError(f"outputs folder not found: {folder}")
    files: dict[str, Path] = {}
    for p in image_files(folder):
        files.setdefault(p.stem, p)
    found = {n: files.get(n) or files.get(f"{n}_deblurred") for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise DeblurInputError(
            f"{len(missing)} of {len(names)} pairs have no output image in {folder} "
            f"(e.g. {', '.join(missing[:5])}); name outputs like the blurred images (NAME.png or "
            "NAME_deblurred.png, as 'lfdeblur deblur' writes them), or pass limit= to score fewer pairs"
        )
    return {n: p for n, p in found.items() if p is not None}


def _ssim_note(small: dict[str, int]) -> str:
    """What the table says about images whose SSIM used a window smaller than 11x11."""
    if not small:
        return ""
    shown = ", ".join(f"{n} ({w}x{w})" for n, w in list(small.items())[:5]) + (", ..." if len(small) > 5 else "")
    n = len(small)
    return (f"{n} image{'s' if n != 1 else ''} under 11x11 pixels scored with a smaller window ({shown}): "
            "not comparable with 11x11 scores")


_COLUMNS = ("input_psnr", "psnr", "gain_db", "input_ssim", "ssim", "input_mae", "mae", "input_lpips", "lpips")


@dataclass
class Evaluation:
    """What :func:`evaluate` found: per-image rows, their mean, and how it was made.

    Each row (and ``mean``) has ``psnr``/``ssim``/``mae`` of the output,
    ``input_psnr``/``input_ssim``/``input_mae`` of the blurry input,
    ``gain_db`` (output minus input PSNR) and, when computed, ``lpips`` and
    ``input_lpips``; rows also have ``name``.  ``ssim_note`` says which
    images were under 11x11 and so scored with a smaller SSIM window ("" when none).
    """

    rows: list[dict]
    mean: dict
    source: str
    metrics: tuple[str, ...] = METRICS
    lpips_note: str = ""  # why LPIPS was skipped ("" when computed or not asked for)
    ssim_note: str = ""  # which images had a smaller SSIM window than 11x11 ("" when none)
    csv: Path | None = None
    cancelled: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in _COLUMNS if "lpips" in self.metrics or "lpips" not in c)

    def table(self) -> str:
        """A plain-text table: one line per image, then the mean."""
        heads = {"input_psnr": "in PSNR", "psnr": "out PSNR", "gain_db": "gain dB", "input_ssim": "in SSIM",
                 "ssim": "out SSIM", "input_mae": "in MAE", "mae": "out MAE", "input_lpips": "in LPIPS",
                 "lpips": "out LPIPS"}
        label = f"mean of {len(self.rows)}"
        width = max([len(label), 4, *(len(r["name"]) for r in self.rows)])

        def fmt(key, v):
            if key == "gain_db":
                return f"{v:+9.2f}"
            return f"{v:9.2f}" if "psnr" in key else f"{v:9.4f}"

        def line(name, values):
            return f"{name:<{width}}  " + " ".join(fmt(k, values[k]) for k in self.columns)

        head = f"{'name':<{width}}  " + " ".join(f"{heads[k]:>9}" for k in self.columns)
        lines = [head, *(line(r["name"], r) for r in self.rows), "-" * len(head), line(label, self.mean)]
        if self.ssim_note:
            lines.append(f"SSIM: {self.ssim_note}")
        if self.lpips_note:
            lines.append(f"LPIPS skipped: {self.lpips_note}")
        return "\n".join(lines)

    def write_csv(self, path) -> Path:
        """Rows and a final ``mean`` row as CSV, written atomically."""
        from .io.atomic import atomic_path

        path = Path(path).expanduser()
        with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = _csv.writer(f)
            w.writerow(["name", *self.columns])
            for r in [*self.rows, {**self.mean, "name": "mean"}]:
                w.writerow([r["name"], *(repr(float(r[k])) for k in self.columns)])
        self.csv = path
        return path


#: what ``evaluate(lpips=...)`` takes: the API's True/False/"auto" and the command line's words
_LPIPS_CHOICES = {"auto": "auto", "on": True, "off": False}


def _lpips_choice(lpips):
    """``lpips`` as True (required), False (never) or ``"auto"``; anything else is refused, not read as its
    truthiness ("off" is a non-empty string: it would have meant required)."""
    if isinstance(lpips, (bool, np.bool_)):
        return bool(lpips)
    if isinstance(lpips, str) and lpips.strip().lower() in _LPIPS_CHOICES:
        return _LPIPS_CHOICES[lpips.strip().lower()]
    raise DeblurInputError(f"lpips must be True (or 'on': required), False (or 'off': never) or 'auto' (when "
                           f"available), got {lpips!r}")


def _check_evaluate(model, outputs, limit, lpips, progress, csv):
    """The arguments that can be judged before any work; ``lpips`` as :func:`_lpips_choice` reads it."""
    if (model is None) == (outputs is None):
        raise DeblurInputError("give a model to deblur with or a folder of outputs to score (exactly one of them)")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1):
        raise DeblurInputError(f"limit must be a positive number of pairs (or None for all), got {limit!r}")
    want_lpips = _lpips_choice(lpips)
    check_function(progress, "progress", "progress(done, total)", where="evaluate", error=DeblurInputError)
    if csv is not None:  # now, not after scoring every image
        from .io.atomic import check_writable_file

        check_writable_file(csv, "the CSV")
    return want_lpips


def _lpips_for(want_lpips, device):
    """(the LPIPS scorer or None, why it was skipped); an error when it was required and is not available."""
    if not want_lpips:
        return None, ""
    available, note = lpips_status()
    if not available:
        if want_lpips != "auto":
            raise LFDeblurError(f"LPIPS asked for but not available: {note}")
        return None, note
    from .devices import resolve_device

    return _lpips_scorer(resolve_device(device)), note


def _producer(model, outputs, names: list[str], *, device, dtype, tile, cancel):
    """(``produce(name, blur, sharp)``, the deblurred image of a pair; what the outputs are, in words): a file
    of the outputs folder, or the model run on the blurred image.  Fails now on a missing file or a wrong model."""
    if outputs is not None:
        from .io.pixels import to_float, to_rgb
        from .io.read import read_image

        files = _find_outputs(outputs, names)

        def read(name, blur, sharp):
            out = to_float(to_rgb(read_image(files[name]), "output"))  # as the pair datasets read the pairs
            if out.shape != sharp.shape:
                raise DeblurInputError(
                    f"output {files[name].name} is {out.shape[1]}x{out.shape[0]} but the sharp image of {name!r} "
                    f"is {sharp.shape[1]}x{sharp.shape[0]}: score full-size outputs (no crop or resize)"
                )
            return out

        return read, f"outputs in {Path(outputs).expanduser()}"
    from .inference.deblur import deblur
    from .inference.models import cached_model

    net = cached_model(model, device=device, dtype=dtype)  # once, now: a wrong model fails before any work

    def run(name, blur, sharp):
        return deblur(blur, model=net, tile=tile, device=device, dtype=dtype, normalize="none", rgb=True,
                      cancel=cancel)

    return run, f"model {model}" if isinstance(model, (str, Path)) else f"model {type(model).__name__}"


def _row(name: str, blur, out, sharp, lpips_score) -> dict:
    """One pair's scores: the input's and the output's against the sharp image, and the PSNR gain."""
    row: dict = {"name": name}
    row.update({f"input_{k}": v for k, v in compare(blur, sharp, rgb=True).items()})
    row.update(compare(out, sharp, rgb=True))
    row["gain_db"] = row["psnr"] - row["input_psnr"]
    if lpips_score is not None:
        row["input_lpips"], row["lpips"] = lpips_score(blur, sharp), lpips_score(out, sharp)
    return row


def _score_pairs(data, produce, lpips_score, progress, cancel) -> tuple[list[dict], dict[str, int], bool]:
    """(rows, the SSIM window of each image under 11x11, whether ``cancel`` stopped it) over ``data``."""
    from .inference.deblur import DeblurCancelled
    from .training.metrics import ssim_window

    rows: list[dict] = []
    small: dict[str, int] = {}  # name -> SSIM window of the images under 11x11
    for i, name in enumerate(data.names):
        if cancel():
            return rows, small, True
        blur, sharp = (t.permute(1, 2, 0).numpy() for t in data[i])
        try:  # an image too small to score: said now, naming it, before any deblurring
            win = ssim_window(*sharp.shape[:2])
        except DeblurInputError as e:
            raise DeblurInputError(f"pair {name!r}: {e}") from None
        if win < 11:
            small[name] = win
        try:
            out = produce(name, blur, sharp)
        except DeblurCancelled:
            return rows, small, True
        rows.append(_row(name, blur, out, sharp, lpips_score))
        log.info("%s: PSNR %.2f -> %.2f dB", name, rows[-1]["input_psnr"], rows[-1]["psnr"])
        if progress is not None:
            progress(i + 1, len(data.names))
    return rows, small, False


def evaluate(pairs, model=None, outputs=None, *, device="auto", dtype=None, tile=None, limit=None, csv=None,
             lpips="auto", progress=None, cancel=None) -> Evaluation:
    """Score deblurring on a pair folder, with the blurry input as the baseline.

    Parameters
    ----------
    pairs
        A pair folder (write_pairs, DPDD or LFDOF layout: anything :func:`~napari_lfdeblur.open_pairs` reads) or
        a pair dataset; images are used whole.
    model, outputs
        Exactly one: a model (``"default"``, a checkpoint path or an ``nn.Module``) that deblurs each blurred
        image at full size, tile by tile; or a folder of output images matched to the pairs by file stem
        (``NAME.png`` or ``NAME_deblurred.png``), of the sharp images' size.
    device, dtype, tile
        Passed to :func:`~napari_lfdeblur.deblur` (and LPIPS runs on ``device``).
    limit
        Score only the first ``limit`` pairs (a positive number).
    csv
        Write the rows and their mean to this CSV file (atomically); a path that cannot be written is refused
        before any scoring.
    lpips
        ``"auto"``: LPIPS when it is available locally (see :func:`~napari_lfdeblur.evaluation.lpips_status`),
        else skipped with the reason in ``Evaluation.lpips_note``; ``True`` or ``"on"``: required (error when
        not available); ``False`` or ``"off"``: never.  Anything else is a
        :class:`~napari_lfdeblur.errors.DeblurInputError`.
    progress, cancel
        ``progress(done, total)`` after each image; ``cancel`` (a :class:`~napari_lfdeblur.CancelToken` or a
        function returning True) stops at the next tile: the result holds the images scored so far,
        ``cancelled=True``, and no CSV is written.

    Returns
    -------
    :class:`Evaluation`: ``rows``, ``mean``, ``table()``, ``write_csv()``.  SSIM of images under 11x11 uses a
    smaller window, said in ``Evaluation.ssim_note`` and under the table; an image under 3x3 is a
    :class:`~napari_lfdeblur.errors.DeblurInputError` naming it.
    """
    from .training.datasets import PairDataset, open_pairs
    from .training.metrics import finite_mean

    want_lpips = _check_evaluate(model, outputs, limit, lpips, progress, csv)
    cancel = cancel_check(cancel, where="evaluate")
    data = pairs if isinstance(pairs, PairDataset) else open_pairs(pairs, crop="full", augment=False)
    if limit is not None:
        data = data.subset(range(min(int(limit), len(data))))
    lpips_score, note = _lpips_for(want_lpips, device)
    produce, source = _producer(model, outputs, data.names, device=device, dtype=dtype, tile=tile, cancel=cancel)
    rows, small, cancelled = _score_pairs(data, produce, lpips_score, progress, cancel)
    result = Evaluation(rows=rows, mean={}, source=source, lpips_note=note, cancelled=cancelled,
                        metrics=METRICS + (("lpips",) if lpips_score is not None else ()), ssim_note=_ssim_note(small))
    result.mean = {k: finite_mean([r[k] for r in rows]) for k in result.columns}
    result.mean["gain_db"] = result.mean["psnr"] - result.mean["input_psnr"]  # gain of the means
    if csv is not None and not cancelled:
        result.write_csv(csv)
    return result
