"""What a run writes and how it continues: checkpoints, the resume file, the log, the run's summary.

What a run with ``out=FOLDER`` writes (atomically: a crash never leaves a
half-written file under these names):

- ``last.pt``: the network after the last completed step, in the project's
  checkpoint format (:func:`~napari_lfdeblur.network.checkpoint.save_model`) with
  a ``training`` summary (phase, loss, steps, data, validation PSNR/SSIM of
  the network and of the blurry input, time, ...); load it with
  ``load_model``.
- ``best.pt``: the same for the step with the best validation PSNR.
- ``resume.pt``: everything needed to continue exactly: the network, the
  Adam state, the AMP scaler, the random generators, the step, the loss
  history and validations, as plain tensors and Python values (it loads with
  ``torch.load(weights_only=True)``).  ``train(..., resume=True)`` continues
  from ``out/resume.pt`` when it exists (and starts afresh otherwise), so the
  same command can be run again after an interruption; a continued run
  produces the same losses, step for step, as an uninterrupted one
  (same device and thread count; the data order and augmentations depend
  only on the seed and the step).  It records which data the run trains on;
  resuming it with other data (another folder, other held-out validation
  scenes) is refused: that continuation would match no uninterrupted run.
- ``log.csv``: one row per step (loss and its terms, learning rate, seconds
  per step) with the validation scores on the steps where they were
  computed; ``summary.json`` at the end.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import random
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from ..errors import TrainingError
from ..io.atomic import atomic_path
from ..network.checkpoint import is_torch_file, save_payload
from .events import CheckpointSaved

__all__ = ["RESUME_FORMAT", "RunFiles", "load_resume", "plain", "resolve_resume", "seed_everything"]

RESUME_FORMAT = "napari-lfdeblur-resume/1"


# --------------------------------------------------------------------------- random generators
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed & 0xFFFFFFFF)
    torch.manual_seed(seed)


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
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
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    if x is None or type(x) in (bool, int, float, str):
        return x
    for t in (bool, int, float, str):  # subclasses (numpy scalars, enums) to the plain type
        if isinstance(x, t):
            return t(x)
    return str(x)


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
    """The arithmetic a run's last steps used, from its ``amp`` record (see ``RunFiles._amp_record``)."""
    return str(record).rsplit(", then ", 1)[-1]


# --------------------------------------------------------------------------- the resume file
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


# --------------------------------------------------------------------------- the trainer's files
class RunFiles:
    """The part of :class:`~.trainer.Trainer` that writes and restores a run: checkpoints, the resume
    file, ``log.csv`` and ``summary.json``, and the summary of the run they hold.

    It reads the run's options, ``self.net``, ``self.opt``, ``self.scaler``, ``self.data``/``self.val``,
    ``self.ctx`` and ``self.out``, and owns what a resume restores: ``step``, ``history``,
    ``validations``, ``best``, ``input_scores`` and ``elapsed_before``.
    """

    # ---------------------------------------------------------------- the run's summary
    def _settings(self) -> dict:
        return {"phase": self.phase, "loss": str(self.loss_fn), "total": self.steps, "batch": self.batch,
                "patch": self.patch, "lr": self.lr, "schedule": self.schedule, "warmup": self.warmup,
                "min_lr": self.min_lr, "seed": self.seed, "grad_clip": self.grad_clip,
                "amp": self._amp_record(), "world_size": self.ctx.world,
                "data_on_device": getattr(self, "source", None) is not None}

    def _amp_now(self) -> str:
        return str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off"

    def _amp_record(self) -> str:
        """The arithmetic of all the run's steps: a run resumed with another ``amp`` says where it changed."""
        before, upto = self._amp_before
        now = self._amp_now()
        if upto == 0:
            return now
        if self.step == upto or last_amp(before) == now:  # no step this session, or no change: as it was
            return before
        return f"{before} to step {upto}, then {now}"

    def _describe(self, ds) -> str:
        if ds is None:
            return ""
        return ds.describe() if hasattr(ds, "describe") else f"{type(ds).__name__} ({len(ds)} items)"

    def _summary(self, at_best: bool = False) -> dict:
        last_val = self.validations[-1] if self.validations else None
        if at_best:
            last_val = next((v for v in self.validations if v["step"] == self.best["step"]), last_val)
        inp = self.input_scores or {}
        s = {
            **self._settings(),
            "steps": int(last_val["step"]) if at_best and last_val else self.step,
            "data": self.description or self._describe(getattr(self, "source", None) or self.data),
            "n_train": len(self.data),
            "val_data": self._describe(self.val),
            "n_val": len(self.val) if self.val is not None else 0,
            "val_psnr": float(last_val["psnr"]) if last_val else math.nan,
            "val_ssim": float(last_val["ssim"]) if last_val else math.nan,
            "val_step": int(last_val["step"]) if last_val else 0,
            "input_psnr": float(inp.get("psnr", math.nan)),
            "input_ssim": float(inp.get("ssim", math.nan)),
            "best_step": int(self.best["step"]),
            "best_psnr": float(self.best["psnr"]) if math.isfinite(self.best["psnr"]) else math.nan,
            "final_loss": float(np.mean([r["loss"] for r in self.history[-50:]])) if self.history else math.nan,
            "seconds": round(self.elapsed(), 1),
            "device": str(self.device),
            "torch_version": torch.__version__,
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
            "config": self.config.to_dict(),  # every option as given: TrainConfig.from_dict makes it again
        }
        if self.previous:
            s["previous"] = plain(self.previous)
        return plain(s)

    # ---------------------------------------------------------------- writing
    def _save_models(self, which=("last",)) -> list[Path]:
        from ..network.checkpoint import save_model

        paths = []
        if self.out is None or not self.ctx.main:
            return paths
        for w in which:
            p = self.out / f"{w}.pt"
            save_model(self.net, p, training=self._summary(at_best=(w == "best")))
            paths.append(p)
            self._emit(CheckpointSaved(self.step, path=str(p), which=w))
        return paths

    def _save_resume(self) -> Path | None:
        if self.out is None or not self.ctx.main:
            return None
        state = {
            "format": RESUME_FORMAT,
            "step": self.step,
            "config": dict(self.net.config),
            "model": {k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
            "optimizer": self.opt.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "rng": rng_state(),
            "history": self.history,
            "validations": self.validations,
            "best": {"psnr": float(self.best["psnr"]), "step": int(self.best["step"])},
            "input_scores": self.input_scores,
            "elapsed": float(self.elapsed()),
            "settings": self._settings(),
            "previous": plain(self.previous) if self.previous else None,
            "data": dict(getattr(self, "data_record", None) or {}),
        }
        p = save_payload(state, self.out / "resume.pt")
        self._emit(CheckpointSaved(self.step, path=str(p), which="resume"))
        return p

    def _write_log(self) -> Path | None:
        if self.out is None or not self.ctx.main:
            return None
        vals = {v["step"]: v for v in self.validations}
        terms = []
        for r in self.history:
            for k in r:
                if k not in ("step", "loss", "lr", "seconds") and k not in terms:
                    terms.append(k)
        cols = ["step", "loss", *terms, "lr", "seconds", "val_psnr", "val_ssim", "input_psnr", "input_ssim"]
        p = self.out / "log.csv"
        with atomic_path(p) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.history:
                v = vals.get(r["step"], {})
                row = [r["step"], f"{r['loss']:.6g}", *[f"{r[k]:.6g}" if k in r else "" for k in terms],
                       f"{r['lr']:.6g}", f"{r['seconds']:.4g}"]
                row += [f"{v[k]:.6g}" if k in v else "" for k in ("psnr", "ssim", "input_psnr", "input_ssim")]
                w.writerow(row)
        return p

    def _checkpoint(self, models=("last",)) -> None:
        self._save_models(models)
        self._save_resume()
        self._write_log()
        self._last_ckpt_time = time.perf_counter()

    def _write_summary(self, summary: dict) -> None:
        with atomic_path(self.out / "summary.json") as tmp:
            tmp.write_text(json.dumps(json_safe(plain(summary)), indent=2, default=str, allow_nan=False),
                           encoding="utf-8")

    # ---------------------------------------------------------------- restoring
    def _restore(self) -> None:
        """A fresh run's progress, or the one in ``self.resume_state`` (once the optimizer exists)."""
        self.step = 0
        self.history: list[dict] = []
        self.validations: list[dict] = []
        self.best = {"psnr": -math.inf, "step": 0}
        self.input_scores: dict | None = None
        self.elapsed_before = 0.0
        self._amp_before = (self._amp_now(), 0)  # (arithmetic of the steps done before this session, their count)
        if self.resume_state is not None:
            st = self.resume_state
            self._check_resumed_data(st.get("data") or {})
            self.opt.load_state_dict(st["optimizer"])
            if self.scaler is not None and st.get("scaler"):
                self.scaler.load_state_dict(st["scaler"])
            self.step = int(st["step"])
            self.history = [dict(r) for r in st.get("history", [])]
            self.validations = [dict(r) for r in st.get("validations", [])]
            b = st.get("best") or {}
            self.best = {"psnr": float(b.get("psnr", -math.inf)), "step": int(b.get("step", 0))}
            self.input_scores = dict(st["input_scores"]) if st.get("input_scores") else None
            self.elapsed_before = float(st.get("elapsed", 0.0))
            set_rng_state(st.get("rng", {}))
            old = st.get("settings", {})
            # the warnings point at train(): above are _restore, _setup, _start, _run and run
            self._amp_before = (str(old.get("amp", "off")), self.step)
            for k in ("batch", "patch", "seed"):
                if k in old and old[k] != getattr(self, k):
                    warnings.warn(f"resuming with {k}={getattr(self, k)} but the run used {k}={old[k]}: the "
                                  "continuation will not match an uninterrupted run", RuntimeWarning, stacklevel=6)
            if int(old.get("total", self.steps)) != self.steps:
                warnings.warn(f"resuming with steps={self.steps} but the run was planned for {old.get('total')}: "
                              "the learning-rate schedule changes from here", RuntimeWarning, stacklevel=6)
            if self.step < self.steps and last_amp(old.get("amp", "off")) != self._amp_now():
                warnings.warn(f"resuming with amp {self._amp_now()} but the run used {old.get('amp', 'off')}: the "
                              "continuation will not match an uninterrupted run", RuntimeWarning, stacklevel=6)

    def _check_resumed_data(self, old: dict) -> None:
        """Refuse to continue a run on other data than it was trained on (resume files from before this record
        say nothing, and are not checked)."""
        now = getattr(self, "data_record", None) or {}
        run = Path(str(self.resumed_from)).parent if self.resumed_from else "the resumed run"
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
