"""What a run writes into its folder and how it continues: checkpoints, the resume file, the log, the summary.

Every file is written atomically (a crash never leaves a half-written one).  ``resume.pt`` holds the network,
the Adam state, the AMP scaler, the random generators, the step, the loss history and the validations as plain
tensors and Python values (it loads with ``torch.load(weights_only=True)``): a continued run produces the same
losses, step for step, as an uninterrupted one (same device and thread count; the data order depends only on
the seed and the step).  It also records which data the run trains on: resuming on other data is refused.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import random
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ..errors import TrainingError
from ..io.atomic import atomic_path, check_writable_file
from ..network.checkpoint import is_torch_file, save_payload
from .config import TrainConfig
from .events import CheckpointSaved, TrainingEvent
from .run import Progress, RunSetup, describe

__all__ = ["RESUME_FORMAT", "RunFiles", "load_resume", "plain", "resolve_resume", "restore_progress", "run_folder",
           "seed_everything"]

RESUME_FORMAT = "napari-lfdeblur-resume/1"


# --------------------------------------------------------------------------- random generators
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def rng_state() -> dict:
    np_state = cast(tuple, np.random.get_state(legacy=True))  # ("MT19937", key, pos, has_gauss, gauss)
    state: dict[str, Any] = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def set_rng_state(state: dict) -> None:
    py = state.get("python")
    if py is not None:
        random.setstate((py[0], tuple(py[1]), py[2]))
    npst = state.get("numpy")
    if npst is not None:
        np.random.set_state(("MT19937", npst["key"].numpy().astype(np.uint32), npst["pos"], npst["has_gauss"],
                             npst["gauss"]))
    if state.get("torch") is not None:
        torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- plain values
def plain(x):
    """Python scalars / lists / dicts only (numpy values converted), for checkpoints and JSON."""
    if isinstance(x, dict):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if x is None or type(x) in (bool, int, float, str):
        return x
    for t, numpy_t in ((bool, np.bool_), (int, np.integer), (float, np.floating)):  # numpy scalars, enums
        if isinstance(x, (t, numpy_t)):
            return t(x)
    return str(x)  # paths, devices, str subclasses


def json_safe(x):
    """NaN and infinities (no validation, no PSNR yet) as None: JSON has no NaN, ``null`` is valid."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [json_safe(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------- arithmetic record
def last_amp(record: str) -> str:
    """The arithmetic a run's last steps used, from its ``amp`` record (see :meth:`RunFiles.amp_record`)."""
    return str(record).rsplit(", then ", 1)[-1]


# --------------------------------------------------------------------------- the run folder and the resume file
def run_folder(out) -> Path | None:
    """The run folder of the ``out`` option (None: the run writes nothing), checked before anything is read."""
    if out is None:
        return None
    folder = Path(out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise TrainingError(f"out={out} is a file; a training run writes a folder (checkpoints, log.csv): give "
                            "a folder that does not exist yet, or an earlier run's folder")
    # a read-only or full disk: said now, not at the first checkpoint
    check_writable_file(folder / "resume.pt", "the training run")
    return folder


def resolve_resume(resume, out: Path | None) -> Path | None:
    """The resume file that ``resume`` (a run's ``resume`` option) names for the output folder ``out``, or None."""
    r = resume
    if r is None and out is not None and (out / "resume.pt").is_file():
        # never overwrite a run's checkpoints because a resume flag was forgotten
        state = "finished" if (out / "summary.json").is_file() else "stopped before its last step"
        raise TrainingError(
            f"{out} already holds a training run ({state}): continue it with resume=True (the Train "
            "widget's 'resume from output folder', the CLI's --resume), or choose another output folder "
            "(resume=False starts afresh and overwrites it)"
        )
    if r is None or r is False:
        return None
    if r is True or (isinstance(r, str) and r.lower() in ("true", "auto", "last")):
        if out is None:
            raise TrainingError("resume=True continues from out/resume.pt: give out=FOLDER")
        p = out / "resume.pt"
        if not p.is_file():
            # say so: a run stopped before its first checkpoint starts again from step 1
            what = "has no checkpoint" if out.is_dir() else "does not exist yet"
            warnings.warn(f"resume: {out} {what} to resume from (no resume.pt): starting from step 1",
                          RuntimeWarning, stacklevel=2)
            return None
        return p
    p = Path(r).expanduser()
    if p.is_dir():
        p = p / "resume.pt"
    if not p.is_file():
        raise TrainingError(f"no resume file at {p}; a run with out=FOLDER writes FOLDER/resume.pt")
    return p


def _unreadable(path: Path) -> str:
    """Why ``torch.load`` may have failed on ``path``, in a few words (judged by its first bytes)."""
    try:
        path.open("rb").close()
    except OSError as e:
        return f"it cannot be opened ({e.strerror or e})"
    if is_torch_file(path):
        return "it is truncated or damaged, or was not written by napari-lfdeblur"
    return "it is not a PyTorch file at all"


def load_resume(path: Path) -> dict:
    """The state in a resume file, after checking that it is one."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        # torch's own text is not shown: it runs to several lines and, for a file it cannot read safely, advises
        # weights_only=False, which would run whatever code the file holds; a resume file holds tensors only
        raise TrainingError(f"could not read the resume file {path}: {_unreadable(path)} ({type(e).__name__}); "
                            "resume from another run's resume.pt, or start afresh") from e
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise TrainingError(
            f"{path} is not a napari-lfdeblur resume file (a model checkpoint such as last.pt or best.pt "
            "cannot resume a run: it has no optimizer state; start a new run from it with model=PATH)"
        )
    return state


# --------------------------------------------------------------------------- restoring
def restore_progress(setup: RunSetup, config: TrainConfig) -> Progress:
    """A fresh run's progress, or the one in ``setup.resume_state`` (its optimizer, gradient scaler and random
    generators restored too)."""
    st = setup.resume_state
    if st is None:
        return Progress(amp_before=(setup.amp_name, 0))
    _check_resumed_data(st.get("data") or {}, setup.data_record, setup.resumed_from)
    setup.opt.load_state_dict(st["optimizer"])
    if setup.scaler is not None and st.get("scaler"):
        setup.scaler.load_state_dict(st["scaler"])
    step = int(st["step"])
    best = st.get("best") or {}
    old = st.get("settings", {})
    progress = Progress(
        step=step,
        history=[dict(r) for r in st.get("history", [])],
        validations=[dict(r) for r in st.get("validations", [])],
        best={"psnr": float(best.get("psnr", -math.inf)), "step": int(best.get("step", 0))},
        input_scores=dict(st["input_scores"]) if st.get("input_scores") else None,
        elapsed_before=float(st.get("elapsed", 0.0)),
        amp_before=(str(old.get("amp", "off")), step),  # the arithmetic of the steps done before this session
    )
    set_rng_state(st.get("rng", {}))
    _warn_changes(old, step, config, setup.amp_name)
    return progress


def _warn_changes(old: dict, step: int, config: TrainConfig, amp_now: str) -> None:
    """Warn of the options that make a resumed run differ from an uninterrupted one (``old``: the run's
    settings as its resume file records them)."""
    # the warnings point at train(): above are restore_progress, Trainer._start and Trainer.run
    for k in ("batch", "patch", "seed"):
        if k in old and old[k] != getattr(config, k):
            warnings.warn(f"resuming with {k}={getattr(config, k)} but the run used {k}={old[k]}: the "
                          "continuation will not match an uninterrupted run", RuntimeWarning, stacklevel=5)
    if int(old.get("total", config.steps)) != config.steps:
        warnings.warn(f"resuming with steps={config.steps} but the run was planned for {old.get('total')}: "
                      "the learning-rate schedule changes from here", RuntimeWarning, stacklevel=5)
    if step < config.steps and last_amp(old.get("amp", "off")) != amp_now:
        warnings.warn(f"resuming with amp {amp_now} but the run used {old.get('amp', 'off')}: the "
                      "continuation will not match an uninterrupted run", RuntimeWarning, stacklevel=5)


def _check_resumed_data(old: dict, now: dict, resumed_from: str | None) -> None:
    """Refuse to continue a run on other data than it was trained on (``old``, ``now``: the records of
    :func:`~.setup.data_record`; resume files from before this record say nothing, and are not checked)."""
    run = Path(str(resumed_from)).parent if resumed_from else "the resumed run"
    elsewhere = (f"or train in a new output folder (model={run / 'last.pt'} starts from its network)"
                 if isinstance(run, Path) else "or start a new run")

    def differs(k):
        return bool(old.get(k)) and bool(now.get(k)) and old[k] != now[k]

    if differs("data_key"):
        raise TrainingError(f"the run in {run} was trained on {old['data']}; you gave {now['data']}. Resume "
                            f"it with the same data, {elsewhere}")
    if differs("train_key"):
        raise TrainingError(f"the run in {run} was trained on {old['train']}; with the validation you gave it "
                            f"would train on {now['train']}. Resume it with the same val=, "
                            f"{elsewhere}")


# --------------------------------------------------------------------------- the run's files
class RunFiles:
    """What a run writes into its folder ``out`` (nothing when None, or on ranks other than 0): checkpoints,
    the resume file, ``log.csv`` and ``summary.json``, and the summary of the run they hold, from the run's
    ``config``, ``setup`` and ``progress``; ``emit`` receives a :class:`~.events.CheckpointSaved` per file."""

    def __init__(self, out: Path | None, config: TrainConfig, setup: RunSetup, progress: Progress,
                 emit: Callable[[TrainingEvent], Any]):
        self.out, self.config, self.setup, self.progress, self.emit = out, config, setup, progress, emit
        self.saved_at = time.perf_counter()  # when the last checkpoint was written (the timer's start)

    # ---------------------------------------------------------------- the run's summary
    def settings(self) -> dict:
        c = self.config
        return {"phase": c.phase, "loss": str(self.setup.loss_fn), "total": c.steps, "batch": c.batch,
                "patch": c.patch, "lr": c.learning_rate, "schedule": c.schedule, "warmup": c.warmup,
                "min_lr": c.min_lr, "seed": c.seed, "grad_clip": c.grad_clip, "amp": self.amp_record(),
                "world_size": self.setup.ctx.world}

    def amp_record(self) -> str:
        """The arithmetic of all the run's steps: a run resumed with another ``amp`` says where it changed."""
        before, upto = self.progress.amp_before
        now = self.setup.amp_name
        if upto == 0:
            return now
        if self.progress.step == upto or last_amp(before) == now:  # no step this session, or no change: as it was
            return before
        return f"{before} to step {upto}, then {now}"

    def summary(self, at_best: bool = False) -> dict:
        """The run's summary (what checkpoints and ``summary.json`` hold); ``at_best``: as of the best
        validation."""
        s, p = self.setup, self.progress
        last_val = p.validations[-1] if p.validations else None
        if at_best:
            last_val = next((v for v in p.validations if v["step"] == p.best["step"]), last_val)
        inp = p.input_scores or {}
        summary = {
            **self.settings(),
            "steps": int(last_val["step"]) if at_best and last_val else p.step,
            "data": self.config.description or describe(s.data),
            "n_train": len(s.data),
            "val_data": describe(s.val),
            "n_val": len(s.val) if s.val is not None else 0,
            "val_psnr": float(last_val["psnr"]) if last_val else math.nan,
            "val_ssim": float(last_val["ssim"]) if last_val else math.nan,
            "val_step": int(last_val["step"]) if last_val else 0,
            "input_psnr": float(inp.get("psnr", math.nan)),
            "input_ssim": float(inp.get("ssim", math.nan)),
            "best_step": int(p.best["step"]),
            "best_psnr": float(p.best["psnr"]) if math.isfinite(p.best["psnr"]) else math.nan,
            "final_loss": float(np.mean([r["loss"] for r in p.history[-50:]])) if p.history else math.nan,
            "seconds": round(p.elapsed(), 1),
            "device": str(s.device),
            "torch_version": torch.__version__,
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "config": self.config.to_dict(),  # every option as given: TrainConfig.from_dict makes it again
        }
        if s.previous:
            summary["previous"] = plain(s.previous)
        return plain(summary)

    # ---------------------------------------------------------------- writing
    def save_models(self, which=("last",)) -> list[Path]:
        from ..network.checkpoint import save_model

        paths: list[Path] = []
        if self.out is None or not self.setup.ctx.main:
            return paths
        for w in which:
            p = self.out / f"{w}.pt"
            save_model(self.setup.net, p, training=self.summary(at_best=(w == "best")))
            paths.append(p)
            self.emit(CheckpointSaved(self.progress.step, path=str(p), which=w))
        return paths

    def save_resume(self) -> Path | None:
        if self.out is None or not self.setup.ctx.main:
            return None
        s, p = self.setup, self.progress
        state = {
            "format": RESUME_FORMAT,
            "step": p.step,
            "config": dict(s.net.config),
            "model": {k: v.detach().cpu().clone() for k, v in s.net.state_dict().items()},
            "optimizer": s.opt.state_dict(),
            "scaler": s.scaler.state_dict() if s.scaler is not None else None,
            "rng": rng_state(),
            "history": p.history,
            "validations": p.validations,
            "best": {"psnr": float(p.best["psnr"]), "step": int(p.best["step"])},
            "input_scores": p.input_scores,
            "elapsed": float(p.elapsed()),
            "settings": self.settings(),
            "previous": plain(s.previous) if s.previous else None,
            "data": dict(s.data_record),
        }
        path = save_payload(state, self.out / "resume.pt")
        self.emit(CheckpointSaved(p.step, path=str(path), which="resume"))
        return path

    def write_log(self) -> Path | None:
        if self.out is None or not self.setup.ctx.main:
            return None
        history = self.progress.history
        vals = {v["step"]: v for v in self.progress.validations}
        terms: list[str] = []
        for r in history:
            terms += [k for k in r if k not in ("step", "loss", "lr", "seconds") and k not in terms]
        cols = ["step", "loss", *terms, "lr", "seconds", "val_psnr", "val_ssim", "input_psnr", "input_ssim"]
        p = self.out / "log.csv"
        with atomic_path(p) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in history:
                v = vals.get(r["step"], {})
                row = [r["step"], f"{r['loss']:.6g}", *[f"{r[k]:.6g}" if k in r else "" for k in terms],
                       f"{r['lr']:.6g}", f"{r['seconds']:.4g}"]
                row += [f"{v[k]:.6g}" if k in v else "" for k in ("psnr", "ssim", "input_psnr", "input_ssim")]
                w.writerow(row)
        return p

    def checkpoint(self, models=("last",)) -> None:
        """The models ``models``, the resume file and the log."""
        self.save_models(models)
        self.save_resume()
        self.write_log()
        self.saved_at = time.perf_counter()

    def write_summary(self, summary: dict) -> None:
        if self.out is None or not self.setup.ctx.main:
            return
        with atomic_path(self.out / "summary.json") as tmp:
            tmp.write_text(json.dumps(json_safe(plain(summary)), indent=2, default=str, allow_nan=False),
                           encoding="utf-8")
