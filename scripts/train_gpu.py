"""Train the default model on one GPU in about 8 minutes: one command.

    python scripts/train_gpu.py                # a CUDA GPU: runs/train_gpu/default.pt (float16)
    python scripts/train_gpu.py --tiny         # the same recipe at a tiny size on the CPU, in seconds

The recipe of ``scripts/train_default.py`` (which made the shipped model on
a CPU in 2 hours), with the pairs prepared by ``--workers`` data-loader
processes (default 8 on a GPU) while the network trains, the pipeline every
run uses on every device:

1. Phase 1, pixel loss (multi-scale L1), on light-field pairs rendered and
   refocused on the fly: procedural scenes (90 % of the draws) and the Lytro
   plants capture shipped in the package (10 %, ``sample_data``: no file
   outside the project).  Validation: 8 procedural scenes no draw uses.
2. Phase 2, ``shift_l1`` on the real DPDD pairs, decoded once and cached
   (``--train-pairs`` of the 50 training pairs, sharp shots mapped onto the
   blurry shots' exposure), half of the draws from light-field pairs as in
   the shipped model's last stage (procedural 16 %, plants 4 %, procedural
   scenes textured with the training pairs' sharp shots 30 %).  Validation:
   centre 512x512 crops of the 10 held-out pairs.
3. The held-out evaluation: the same 10 DPDD pairs as ``train_default.py``
   (every 6th of the sorted names), at full size, PSNR and SSIM of the
   output against the blurry input's; then the network is written as a
   float16 checkpoint (at most 16 MB: a width-16 network is 6 MB) to
   ``--weights-out`` (default ``<work>/default.pt``).  The shipped weights
   ``src/napari_lfdeblur/weights/default.pt`` are written only with
   ``--ship``.

Sizing.  The run first times a few steps of each phase (well under a minute), then
gives phase 1 and phase 2 the numbers of steps that fill ``--minutes``
(default 8) with room for setup, validation and the evaluation; the plan is
kept in ``<work>/plan.json``.  ``--steps1``/``--steps2`` fix them instead.

Progress is printed as it goes; checkpoints every minute.  Running the same
command again continues a stopped run (same plan, same result as an
uninterrupted one); SIGTERM / Ctrl-C stop it cleanly after the current step.

What the run reads: the project, and of the shared data only the DPDD
pairs it uses (``--train-pairs`` training pairs and the 10 held-out ones;
36 + 10 pairs: 36.5 MB).  ``--pack DIR`` copies exactly those files to
``DIR/pairs/dpdd_canon_train60/`` and prints the total with the tracked
project (56.7 MB when written), so that the run can travel to a GPU machine with
less than 60 MB: ``python scripts/train_gpu.py --data DIR`` there.

``--tiny`` runs the whole recipe at a tiny size on the CPU (a width-4
network, 32-px patches, a few steps, 2 training and 2 held-out pairs, 5x5
views) in a temporary folder: a test that every part runs end to end.
Without the shared DPDD pairs it fine-tunes on light-field pairs alone and
evaluates on procedural scenes (said in its output).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "src" / "napari_lfdeblur" / "weights" / "default.pt"
DPDD = "dpdd_canon_train60"
#: the 10 held-out DPDD pairs of train_default.py (every 6th of the 60 sorted names), fixed here so that a packed
#: folder holding only the pairs a run reads holds out the same ones
HELDOUT = ("1P0A0917", "1P0A1002", "1P0A1434", "1P0A1532", "1P0A1614", "1P0A1717", "1P0A1810", "1P0A1924",
           "1P0A1992", "1P0A2098")
MAX_CHECKPOINT_MB = 16
#: what the project and the data the run reads may take together, so that the run travels to a GPU machine
MAX_TRAVEL_MB = 60


def _train_default():
    """scripts/train_default.py as a module (its Printer, shared-data lookup and light-field mix)."""
    spec = importlib.util.spec_from_file_location("_train_default", Path(__file__).with_name("train_default.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def parse(argv=None):
    ap = argparse.ArgumentParser(description="Train the default model on one GPU in about 8 minutes (see the "
                                             "module docstring).")
    ap.add_argument("--data", help="shared data folder (default ../shared/data beside the repository)")
    ap.add_argument("--work", help="run folder (default runs/train_gpu; a temporary folder with --tiny)")
    ap.add_argument("--weights-out", help="the float16 checkpoint to write (default <work>/default.pt)")
    ap.add_argument("--ship", action="store_true",
                    help="write the shipped weights src/napari_lfdeblur/weights/default.pt (never written otherwise)")
    ap.add_argument("--minutes", type=float, default=8.0, help="the run's wall-clock budget (default %(default)s)")
    ap.add_argument("--steps1", type=int, help="phase-1 steps (default: sized to --minutes)")
    ap.add_argument("--steps2", type=int, help="phase-2 steps (default: sized to --minutes)")
    ap.add_argument("--base", type=int, default=16, help="network width (default %(default)s; 32 would not fit "
                                                         f"the {MAX_CHECKPOINT_MB} MB float16 checkpoint)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--lr1", type=float, default=4e-4)
    ap.add_argument("--lr2", type=float, default=2e-4)
    ap.add_argument("--train-pairs", type=int, default=36,
                    help="DPDD training pairs used (of 50, spread over the sorted names; default %(default)s, which "
                         f"keeps the project and the data read under {MAX_TRAVEL_MB} MB)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--workers", type=int, default=None,
                    help="data-loader processes preparing the pairs (default: 8 on a GPU, 0 on a CPU)")
    ap.add_argument("--amp", default=None, help="mixed precision (default: bfloat16 on a GPU, auto on a CPU)")
    ap.add_argument("--compile", action="store_true",
                    help="torch.compile the network (each phase compiles first, for minutes outside the budget)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", dest="resume", action="store_true", default=True,
                    help="continue a stopped run from its checkpoints (the default)")
    ap.add_argument("--no-resume", dest="resume", action="store_false",
                    help="refuse to continue: fail if the run folder already holds a run")
    ap.add_argument("--print-every", type=int, default=50)
    ap.add_argument("--pack", metavar="DIR", help="copy the data files the run reads to DIR and stop")
    ap.add_argument("--tiny", action="store_true", help="the whole recipe at a tiny size on the CPU")
    args = ap.parse_args(argv)
    if args.tiny:
        args.device = "cpu" if args.device == "auto" else args.device
        args.base, args.batch, args.patch = 4, 2, 32
        args.steps1 = args.steps1 or 6
        args.steps2 = args.steps2 or 4
        args.train_pairs = min(args.train_pairs, 2)
        args.print_every = 2
    return args


# --------------------------------------------------------------------------- the data the run reads
def pair_files(folder: Path, names) -> list[Path]:
    """The blurred and sharp files of the pairs ``names`` in a DPDD-layout folder."""
    from napari_lfdeblur.io import image_files

    out = []
    for sub in ("blur", "sharp"):
        by_stem = {f.stem: f for f in image_files(folder / sub)}
        out += [by_stem[n] for n in names if n in by_stem]
    return out


def training_names(folder: Path, k: int) -> list[str]:
    """``k`` training pairs spread over the sorted names that are not held out."""
    from napari_lfdeblur.io import image_files

    names = sorted(f.stem for f in image_files(folder / "sharp") if f.stem not in HELDOUT)
    if k >= len(names):
        return names
    return [names[round(i * (len(names) - 1) / max(1, k - 1))] for i in range(k)] if k > 1 else names[:1]


def project_bytes() -> int:
    """The tracked files of the project (what a copy of the repository carries)."""
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    return sum((REPO / f).stat().st_size for f in files.decode().split("\0") if f and (REPO / f).is_file())


def pack(args, dpdd_dir: Path) -> int:
    """Copy the DPDD files the run reads to ``args.pack`` (same layout) and print the sizes."""
    out = Path(args.pack) / "pairs" / DPDD
    files = pair_files(dpdd_dir, list(HELDOUT) + training_names(dpdd_dir, args.train_pairs))
    for f in files:
        dest = out / f.parent.name / f.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    data = sum(f.stat().st_size for f in files)
    proj = project_bytes()
    total = (data + proj) / 1e6
    print(f"copied {len(files)} files ({data / 1e6:.1f} MB) to {out}; with the tracked project ({proj / 1e6:.1f} MB): "
          f"{total:.1f} MB", flush=True)
    if total > MAX_TRAVEL_MB:
        print(f"warning: more than {MAX_TRAVEL_MB} MB; lower --train-pairs", file=sys.stderr)
        return 1
    return 0


# --------------------------------------------------------------------------- the phases
def run_config(args, **kw):
    from napari_lfdeblur.training import TrainConfig

    cuda = args.device_type == "cuda"
    amp = args.amp or ("bfloat16" if cuda else "auto")
    workers = args.workers if args.workers is not None else (8 if cuda else 0)
    return TrainConfig(batch=args.batch, patch=args.patch, device=args.device, amp=amp, seed=args.seed,
                       num_workers=workers, channels_last=cuda, compile=bool(args.compile), resume=True,
                       checkpoint_minutes=1.0, log_every=25, **kw)


def phase1_config(args, steps, out=None, description=None):
    return run_config(args, phase="pixel", loss="l1", steps=steps, lr=args.lr1, warmup=max(1, steps // 20),
                      val_every=max(1, steps // 4), out=out, description=description)


def phase2_config(args, steps, out=None, description=None):
    return run_config(args, phase="feature", loss="shift_l1", steps=steps, lr=args.lr2, warmup=max(1, steps // 20),
                      val_every=max(1, steps // 4), out=out, description=description)


def seconds_per_step(data, config, arch, token) -> float:
    """The median time of a step of ``config`` on ``data`` (after a few untimed ones)."""
    from napari_lfdeblur.training import train

    r = train(data, model=arch, config=config.replace(steps=12, out=None, resume=None, val_every=None),
              cancel=token)
    times = sorted(h["seconds"] for h in r.history[4:])
    return times[len(times) // 2] if times else math.nan  # nan: stopped during the timing


def plan_steps(args, work: Path, data1, data2, arch, token) -> dict:
    """The steps of each phase: given, kept from an earlier session (``plan.json``), or sized to ``--minutes``."""
    path = work / "plan.json"
    if path.is_file():
        plan = json.loads(path.read_text())
        print(f"plan (from {path}): phase 1 {plan['steps1']} steps, phase 2 {plan['steps2']} steps", flush=True)
        return plan
    plan = {"minutes": args.minutes}
    if args.steps1 and args.steps2:
        plan.update(steps1=args.steps1, steps2=args.steps2)
    else:
        t0 = time.perf_counter()
        t1 = seconds_per_step(data1, phase1_config(args, 12), arch, token)
        t2 = seconds_per_step(data2, phase2_config(args, 12), arch, token)
        spent = time.perf_counter() - t0
        if token.cancelled or not (math.isfinite(t1) and math.isfinite(t2)):
            return plan  # stopped: nothing planned, nothing written
        # training gets 80 % of what is left: setup, validation, checkpoints and the evaluation take the rest
        budget = max(60.0, 0.8 * (60 * args.minutes - spent))
        plan.update(steps1=args.steps1 or max(50, int(0.6 * budget / t1)),
                    steps2=args.steps2 or max(50, int(0.4 * budget / t2)),
                    seconds_per_step=[round(t1, 4), round(t2, 4)], calibration_seconds=round(spent, 1))
        print(f"timed {t1:.3f} s/step (phase 1) and {t2:.3f} s/step (phase 2) in {spent:.0f} s: phase 1 "
              f"{plan['steps1']} steps, phase 2 {plan['steps2']} steps", flush=True)
    work.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(plan, indent=1))
    return plan


def phase_data(args, dpdd_dir: Path | None, td):
    """(phase-1 data and validation, phase-2 data, phase-2 validation, final held-out data, their words)."""
    from napari_lfdeblur.io import read_image
    from napari_lfdeblur.sample_data import sample_lightfield
    from napari_lfdeblur.training import ConcatPairs, LightFieldPairs, ProceduralPairs, open_pairs, split

    views = 5 if args.tiny else 11
    plants = sample_lightfield("lytro_plants")
    # a pool of 32 scenes (0.6 GB in each loader process) so that a batch of 32 draws from many scenes; a new
    # scene every 32 draws, as ProceduralPairs' defaults
    pool = 8 if args.tiny else 32
    proc = ProceduralPairs(patch=args.patch, length=9000, seed=args.seed, views=views, pool=pool, refresh=32 * pool)
    data1 = ConcatPairs([proc, LightFieldPairs([plants], names=[td.PLANTS], patch=args.patch, length=1000)])
    val1 = proc.heldout(2 if args.tiny else 8, patch=args.patch, crop="center", augment=False)
    words1 = f"{data1.describe()} (procedural 90 %, {td.PLANTS} 10 % of draws)"
    st = {"mix": 0.2, "photo": 0.3, "patch": args.patch, "seed": args.seed}
    if dpdd_dir is None:  # --tiny without the shared pairs: light-field pairs only
        data2 = ConcatPairs(td.lightfield_pairs(plants, args.patch, 8, 2, args.seed + 1))
        return data1, val1, data2, val1, val1, words1, "light-field pairs only (no DPDD pairs found)", \
            "procedural scenes (no DPDD pairs found)"
    names = training_names(dpdd_dir, args.train_pairs)
    vpatch = 64 if args.tiny else 512
    held = list(HELDOUT[:2] if args.tiny else HELDOUT)
    raw = open_pairs(dpdd_dir, patch=args.patch)  # every score is against the real sharp shot
    _, val2 = split(raw, val_names=held, val_patch=vpatch)
    matched = open_pairs(dpdd_dir, patch=args.patch, match_exposure=True)
    dpdd = matched.subset([i for i, n in enumerate(matched.names) if n in set(names)])
    photos = [read_image(f) for f in pair_files(dpdd_dir, names) if f.parent.name == "sharp"]
    if args.tiny:
        photos = [p[:256, :256] for p in photos]
    words = (f"DPDD Canon pairs {DPDD} ({len(dpdd)} training pairs; {len(HELDOUT)} held out by name; sharp "
             f"shots mapped onto the blurry shots' exposure)")
    data2, words2 = td.mix_lightfields(dpdd, words, st, plants, photos)
    if args.tiny:  # fewer views: the tiny run takes seconds
        for d in data2.datasets:
            if isinstance(d, ProceduralPairs):
                d.views = views
    final = raw.options(patch=vpatch, crop="center") if args.tiny else raw.options(patch=None)
    final = final.subset([i for i, n in enumerate(raw.names) if n in set(held)])
    where = f"centre {vpatch}x{vpatch} crops of" if args.tiny else "full-size (1024x1024)"
    return data1, val1, data2, val2, final, words1, words2, f"{where} {len(final)} held-out DPDD pairs"


def main(argv=None) -> int:
    args = parse(argv)
    td = _train_default()
    data_root = td.shared_data(args.data)
    dpdd_dir = data_root / "pairs" / DPDD
    if args.pack:
        if not dpdd_dir.is_dir():
            print(f"error: {dpdd_dir} not found; pass --data pointing at the shared data folder", file=sys.stderr)
            return 2
        return pack(args, dpdd_dir)
    if not dpdd_dir.is_dir():
        if not args.tiny:
            print(f"error: {dpdd_dir} not found; pass --data pointing at the shared data folder (or a folder "
                  "made with --pack)", file=sys.stderr)
            return 2
        dpdd_dir = None
    elif not all(len(pair_files(dpdd_dir, [n])) == 2 for n in HELDOUT):
        print(f"error: {dpdd_dir} lacks some of the held-out pairs {', '.join(HELDOUT)}", file=sys.stderr)
        return 2

    import torch

    from napari_lfdeblur.devices import resolve_device
    from napari_lfdeblur.network.checkpoint import load_model, save_model
    from napari_lfdeblur.training import CancelToken, finetune, score_model, train

    args.device_type = resolve_device(args.device).type
    work = Path(args.work) if args.work else (Path(tempfile.mkdtemp(prefix="lfdeblur_gpu_tiny_")) if args.tiny
                                              else REPO / "runs" / "train_gpu")
    weights_out = Path(args.weights_out) if args.weights_out else (SHIPPED if args.ship else work / "default.pt")
    if weights_out.resolve() == SHIPPED.resolve() and not args.ship:
        print(f"error: {weights_out} is the shipped model; pass --ship to replace it", file=sys.stderr)
        return 2
    if not args.resume and any((work / p / "resume.pt").exists() for p in ("phase1", "phase2")):
        print(f"error: {work} already holds a run; use another --work or drop --no-resume", file=sys.stderr)
        return 2
    if args.device_type != "cuda" and not args.tiny:
        print(f"note: no GPU ({args.device} resolves to {args.device_type}); the run is sized to {args.minutes:g} "
              "minutes of this device", flush=True)
    if args.tiny:
        torch.set_num_threads(1)
    print(f"run folder {work}; the model will be written to {weights_out}", flush=True)

    token = CancelToken()

    def stop(signum, frame):
        print(f"signal {signum}: stopping after the current step ...", flush=True)
        token.cancel()
        signal.signal(signum, signal.SIG_DFL)  # a second signal kills

    old = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        return _run(args, td, dpdd_dir, work, weights_out, token, torch, train, finetune, score_model, load_model,
                    save_model)
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run(args, td, dpdd_dir, work, weights_out, token, torch, train, finetune, score_model, load_model,
         save_model) -> int:
    t_start = time.perf_counter()
    data1, val1, data2, val2, final, words1, words2, final_words = phase_data(args, dpdd_dir, td)
    arch = {"arch": "DRBNet", "base": args.base, "res_blocks": 2, "input_detail": True}
    plan = plan_steps(args, work, data1, data2, arch, token)
    if token.cancelled:
        return 3

    r1 = train(data1, val=val1, model=arch, config=phase1_config(args, plan["steps1"], work / "phase1", words1),
               cancel=token, callback=td.Printer(args.print_every, "phase 1"))
    if r1.cancelled:
        return 3
    r2 = finetune(data2, val=val2, model=r1.last, config=phase2_config(args, plan["steps2"], work / "phase2", words2),
                  cancel=token, callback=td.Printer(args.print_every, "phase 2"))
    if r2.cancelled:
        return 3

    model = load_model(r2.last, device=args.device)
    print(f"held-out evaluation on the {final_words} ...", flush=True)
    ev = score_model(model, final, device=model.device, cancel=token)
    if ev["stopped"] or token.cancelled:
        print("stopped during the evaluation: nothing written; run the same command again to evaluate and write "
              "the model (the trained phases are kept)", flush=True)
        return 3
    wall = time.perf_counter() - t_start
    result = {
        "heldout": final_words,
        "psnr": float(ev["psnr"]), "ssim": float(ev["ssim"]),
        "input_psnr": float(ev["input_psnr"]), "input_ssim": float(ev["input_ssim"]),
        "per_image": [{k: (float(v) if isinstance(v, float) else v) for k, v in r.items()} for r in ev["per_image"]],
        "plan": plan, "seconds_this_session": round(wall, 1),
        "train_seconds": round(float(r1.summary.get("seconds", 0)) + float(r2.summary.get("seconds", 0)), 1),
    }
    summary = {**r2.summary, "recipe": "scripts/train_gpu.py: phase 1 pixel (multi-scale L1) on light-field pairs, "
                                       "then phase 2 shift_l1 on DPDD pairs and light-field pairs",
               "phase1": r1.summary, "final_evaluation": result, "tiny": bool(args.tiny)}
    summary.pop("previous", None)
    save_model(model, weights_out, training=json.loads(json.dumps(summary, default=str)), half=True)
    size_mb = weights_out.stat().st_size / 2**20
    (work / "final.json").write_text(json.dumps(result, indent=1))
    print(f"held-out: model PSNR {ev['psnr']:.2f} dB / SSIM {ev['ssim']:.4f}, blurry input {ev['input_psnr']:.2f} dB "
          f"/ {ev['input_ssim']:.4f} ({ev['psnr'] - ev['input_psnr']:+.2f} dB)", flush=True)
    print(f"wrote {weights_out} ({size_mb:.1f} MB, float16); {wall / 60:.1f} min this session", flush=True)
    if size_mb > MAX_CHECKPOINT_MB:
        print(f"error: the checkpoint is larger than {MAX_CHECKPOINT_MB} MB: train a narrower network (--base)",
              file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
