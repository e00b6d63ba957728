"""Train the shipped default model end to end (CPU-friendly: about 2 hours on 2 cores).

Recipe (the paper's two phases, shortened to fit a CPU):

1. Phase 1, pixel loss (multi-scale L1), on pairs refocused on the fly from
   light fields, no files written: procedural scenes
   (``synthetic_lightfield`` with random seeds, 90 % of the draws) and the
   real Lytro capture ``lytro_plants_IMG_0001`` (CC BY 4.0, 10 %), the only
   shared light field whose licence allows shipping weights trained on it.
   Validation: 8 procedural scenes no training draw uses.
2. Phase 2, fine-tuning on the real two-shot pairs
   ``pairs/dpdd_canon_train60`` (50 pairs; 10 held out by name: every 6th
   of the sorted names) with the misalignment-tolerant loss ``shift_l1``
   (the VGG19 ImageNet weights of the paper's feature loss cannot be
   downloaded here).  Validation: centre 512x512 crops of the 10 held-out
   pairs.  ``--stage2`` splits phase 2 into consecutive stages (e.g. 128²
   patches first, then 256² patches, which hold more of the context
   around a large defocus blur); ``MODEL_CARD.md`` lists the stages used.
   A stage with ``mix=F`` draws a fraction F of its pairs from the phase-1
   light fields (procedural 80 %, plants 20 % of those): DPDD's small-
   aperture "sharp" shots are softer than a pinhole view, and fine-tuning
   on them alone teaches the network to soften in-focus detail and
   desaturate strong colours; the light-field pairs keep it honest.
   A stage with ``photo=F`` draws a fraction F from procedural light fields
   textured with the sharp shots of the DPDD training pairs (never the
   held-out ones): exact pairs whose blur is pure defocus (no misalignment,
   no exposure change) on the camera's own detail and noise.
3. The final network is scored on the 10 held-out pairs at full size
   (1024x1024) against the blurry input itself, and written to
   ``src/napari_lfdeblur/weights/default.pt`` (``save_model``) with
   ``MODEL_CARD.md`` beside it.

Runs across sessions: checkpoints every few minutes under ``--work``
(default ``runs/train_default/``, git-ignored); running the same command
again continues where it stopped, with the same result as an uninterrupted
run.  SIGTERM / Ctrl-C stop it cleanly after the current step.  In the
background::

    nohup python scripts/train_default.py > runs/train_default.log 2>&1 &

``--quick`` is a smoke test: the default network and patch size but a few
steps per phase, small validations, everything under a temporary folder
(the package is not touched); it prints the measured seconds per step and
the time the default settings would take.

Shared data is found at ``../shared/data`` beside the repository (or
``$LFDEBLUR_SHARED_DATA``, or ``--data``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from napari_lfdeblur.errors import TrainingError
from napari_lfdeblur.training.config import FINETUNE_PHASE, NEW_NETWORK_BASE, TrainConfig  # no torch

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = TrainConfig()
PLANTS = "lytro_plants_IMG_0001"
DPDD = "dpdd_canon_train60"


def shared_data(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser().resolve()
    env = os.environ.get("LFDEBLUR_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def parse(argv=None):
    ap = argparse.ArgumentParser(description="Train the default napari-lfdeblur model (see the module docstring).")
    ap.add_argument("--data", help="shared data folder (default ../shared/data beside the repository)")
    ap.add_argument("--work", help="run folder (default runs/train_default; a temporary folder with --quick)")
    ap.add_argument("--weights-out", help="where to write the model (default src/napari_lfdeblur/weights/default.pt)")
    ap.add_argument("--base", type=int, default=NEW_NETWORK_BASE,
                    help="network width (32 = the paper's; default %(default)s)")
    ap.add_argument("--paper-arch", action="store_true",
                    help="the paper's estimate path (no input_detail): starts far from the identity and, in 2 CPU "
                         "hours, scored below the blurry input (24.13 vs 24.38 dB on the held-out DPDD pairs)")
    ap.add_argument("--steps1", type=int, default=3000, help="phase-1 steps (default 3000)")
    ap.add_argument("--steps2", type=int, default=1500, help="phase-2 steps (default 1500)")
    ap.add_argument("--batch", type=int, default=DEFAULTS.batch)
    ap.add_argument("--patch", type=int, default=DEFAULTS.patch)
    ap.add_argument("--lr1", type=float, default=3e-4,
                    help="phase-1 learning rate (1e-3 diverged at step ~490 on this recipe; 3e-4 is stable)")
    ap.add_argument("--lr2", type=float, default=2e-4)
    ap.add_argument("--stage2", action="append", type=stage_spec,
                    metavar="steps=N,patch=P,batch=B,lr=LR[,warmup=W,seed=S,mix=F,photo=F]",
                    help="phase 2 as consecutive stages, each fine-tuning the previous one's last model (repeat the "
                         "option; keys left out come from --steps2/--patch/--batch/--lr2/--seed).  Without it, phase "
                         "2 is one stage.  Larger patches in a later stage give the network more context around "
                         "large defocus blur; mix=F (0 <= F < 1) draws a fraction F of the stage's pairs from the "
                         "phase-1 light fields, photo=F from procedural light fields textured with the DPDD "
                         "training pairs' sharp shots")
    ap.add_argument("--no-match-exposure", dest="match_exposure", action="store_false", default=True,
                    help="train phase 2 on the sharp shots as they are (by default each is mapped onto its blurry "
                         "shot's exposure: the two shots of a DPDD pair differ in exposure too)")
    ap.add_argument("--loss2", default="shift_l1",
                    help="phase-2 loss: shift_l1 (misalignment-tolerant, the default), l1, vgg+0.1*shift_l1 "
                         "(VGG19 weights must be available locally), ...")
    ap.add_argument("--seed", type=int, default=DEFAULTS.seed)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: on a shared 2-core CPU, 2 threads spin and are slower; use 2 "
                         "on an idle machine)")
    ap.add_argument("--device", default=DEFAULTS.device)
    ap.add_argument("--workers", type=int, default=DEFAULTS.num_workers,
                    help="data-loader processes rendering the light-field pairs while the network trains (default 0; "
                         "on a GPU machine give several, e.g. 8: the same run, the GPU no longer waits for data)")
    ap.add_argument("--resume", dest="resume", action="store_true", default=True,
                    help="continue a stopped run from its checkpoints (the default)")
    ap.add_argument("--no-resume", dest="resume", action="store_false",
                    help="refuse to continue: fail if the run folder already holds a run")
    ap.add_argument("--print-every", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="smoke test: a few steps, temporary folder, package untouched")
    args = ap.parse_args(argv)
    defaults = {"steps": args.steps2, "patch": args.patch, "batch": args.batch, "lr": args.lr2,
                "warmup": DEFAULTS.warmup, "seed": args.seed, "mix": 0.0, "photo": 0.0}
    args.stages2 = [{**defaults, **st} for st in (args.stage2 or [{}])]
    if args.quick:
        args.steps1 = min(args.steps1, 12)  # the first ~6 steps also render the initial scene pool
        for st in args.stages2:
            st["steps"] = min(st["steps"], 4)
    return args


STAGE_KEYS = {"steps": int, "patch": int, "batch": int, "lr": float, "warmup": int, "seed": int, "mix": float,
              "photo": float}


def stage_spec(text: str) -> dict:
    """``steps=1500,patch=256,batch=2,lr=2e-4`` -> a dict (argparse type of --stage2)."""
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key not in STAGE_KEYS or not value:
            raise argparse.ArgumentTypeError(f"{part!r}: expected KEY=VALUE with KEY one of {', '.join(STAGE_KEYS)}")
        try:
            out[key] = STAGE_KEYS[key](value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part!r}: {value!r} is not a valid {key}") from None
    if not (0.0 <= out.get("mix", 0.0) and 0.0 <= out.get("photo", 0.0)
            and out.get("mix", 0.0) + out.get("photo", 0.0) < 1.0):
        raise argparse.ArgumentTypeError(f"{text!r}: the light-field fractions mix and photo must be >= 0 and "
                                         "add up to less than 1 (the rest are DPDD pairs)")
    return out


def base_config(args) -> TrainConfig:
    """The options both phases share: checkpoints every 5 minutes, and a stopped run continues when run again."""
    return TrainConfig(batch=args.batch, patch=args.patch, device=args.device, seed=args.seed, resume=True,
                       checkpoint_minutes=5.0, num_workers=args.workers)


def phase1_config(args, out=None, description=None) -> TrainConfig:
    """Phase 1: the pixel loss (multi-scale L1) on light-field pairs, validated 6 times."""
    return base_config(args).replace(phase="pixel", loss="l1", steps=args.steps1, lr=args.lr1,
                                     val_every=max(1, args.steps1 // 6), out=out, description=description)


def stage_config(args, st: dict, out=None, description=None) -> TrainConfig:
    """A phase-2 stage (one of ``args.stages2``): fine-tuning with ``--loss2``, validated 5 times."""
    return base_config(args).replace(phase=FINETUNE_PHASE, loss=args.loss2, steps=st["steps"], lr=st["lr"],
                                     warmup=st["warmup"], batch=st["batch"], patch=st["patch"], seed=st["seed"],
                                     val_every=max(1, st["steps"] // 5), out=out, description=description)


def stage_dir(work: Path, k: int) -> Path:
    """phase2, phase2b, phase2c, ... (the first stage keeps the single-stage run's folder name)."""
    return work / ("phase2" if k == 0 else f"phase2{chr(ord('a') + k)}")


class Printer:
    def __init__(self, every: int, label: str):
        self.every, self.label = every, label

    def __call__(self, e):
        from napari_lfdeblur.training import events as ev

        if isinstance(e, ev.Started):
            how = f"resumed from step {e.step}" if e.step else "from scratch"
            print(f"[{self.label}] {e.phase} phase, loss {e.loss}, {e.total} steps ({how}), device {e.device}, "
                  f"model {e.model}\n  data: {e.data}\n  train items {e.n_train}, validation items {e.n_val}",
                  flush=True)
        elif isinstance(e, ev.Step):
            if e.step % self.every == 0 or e.step == e.total or e.step <= 2:
                eta = time.strftime("%H:%M:%S", time.gmtime(e.eta))
                print(f"[{self.label}] step {e.step}/{e.total} loss {e.loss:.4f} lr {e.lr:.2e} "
                      f"{e.seconds_per_step:.2f} s/step eta {eta}", flush=True)
        elif isinstance(e, ev.Validation):
            print(f"[{self.label}] validation at step {e.step}: PSNR {e.psnr:.2f} dB SSIM {e.ssim:.4f} "
                  f"(blurry input {e.input_psnr:.2f} dB / {e.input_ssim:.4f}){' best' if e.best else ''} "
                  f"[{e.seconds:.0f} s]", flush=True)
        elif isinstance(e, ev.Stopped):
            print(f"[{self.label}] stopped after step {e.step}; checkpoint {e.checkpoint}. Run the same command "
                  "again to continue.", flush=True)
        elif isinstance(e, ev.Finished):
            print(f"[{self.label}] finished {e.step} steps in {e.seconds / 60:.1f} min (all sessions)", flush=True)


def dpdd_split_names(folder: Path) -> list[str]:
    from napari_lfdeblur.training import open_pairs

    names = sorted(open_pairs(folder).names)
    return names[::6]  # 10 of 60, spread over the sorted names


def main(argv=None) -> int:
    args = parse(argv)
    import torch

    from napari_lfdeblur.io import image_files, read_image
    from napari_lfdeblur.lightfield.readers import read_lightfield
    from napari_lfdeblur.network.checkpoint import load_model, save_model
    from napari_lfdeblur.training import (
        CancelToken,
        ConcatPairs,
        finetune,
        open_pairs,
        score_model,
        split,
        train,
    )

    torch.set_num_threads(args.threads)
    data = shared_data(args.data)
    plants_dir, dpdd_dir = data / "lightfields" / PLANTS, data / "pairs" / DPDD
    for p in (plants_dir, dpdd_dir):
        if not p.exists():
            print(f"error: {p} not found; pass --data pointing at the shared data folder", file=sys.stderr)
            return 2
    if args.quick:
        work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="lfdeblur_quick_"))
        weights_out = Path(args.weights_out) if args.weights_out else work / "weights" / "default.pt"
    else:
        work = Path(args.work) if args.work else REPO / "runs" / "train_default"
        weights_out = Path(args.weights_out) if args.weights_out else REPO / "src" / "napari_lfdeblur" / "weights" / \
            "default.pt"
    work.mkdir(parents=True, exist_ok=True)
    p1_dir = work / "phase1"
    p2_dirs = [stage_dir(work, k) for k in range(len(args.stages2))]
    if not args.resume and any((d / "resume.pt").exists() for d in (p1_dir, *p2_dirs)):
        print(f"error: {work} already holds a run; use another --work or drop --no-resume", file=sys.stderr)
        return 2
    try:  # every phase's options, checked before hours of training
        phase1_config(args)
        for st in args.stages2:
            stage_config(args, st)
    except TrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"run folder {work}; model will be written to {weights_out}", flush=True)

    token = CancelToken()

    def stop(signum, frame):
        print(f"signal {signum}: stopping after the current step ...", flush=True)
        token.cancel()
        signal.signal(signum, signal.SIG_DFL)  # a second signal kills

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t_start = time.perf_counter()

    # ---------------------------------------------------------------- phase 1
    plants_lf = read_lightfield(plants_dir)  # read once: phase 1 and any mixed phase-2 stage draw from it
    proc, plants = lightfield_pairs(plants_lf, args.patch, n_procedural=9000, n_plants=1000, seed=args.seed)
    data1 = ConcatPairs([proc, plants])
    val1 = proc.heldout(2 if args.quick else 8, patch=args.patch, crop="center", augment=False)
    pr1 = Printer(args.print_every, "phase 1")
    arch = {"arch": "DRBNet", "base": args.base, "res_blocks": 2, "input_detail": not args.paper_arch}
    cfg1 = phase1_config(args, p1_dir, f"{data1.describe()} (procedural 90 %, {PLANTS} 10 % of draws)")
    r1 = train(data1, val=val1, model=arch, config=cfg1, cancel=token, callback=pr1)
    if r1.cancelled:
        return 3
    # ---------------------------------------------------------------- phase 2
    held = dpdd_split_names(dpdd_dir)
    held_set = set(held)
    dpdd = open_pairs(dpdd_dir, patch=args.patch)  # raw pairs: every score is against the real sharp shot
    vpatch = 256 if args.quick else 512
    _, val2 = split(dpdd, val_names=held, val_patch=vpatch)
    if args.quick:
        val2 = val2.subset(range(2))
    stages, start = [], r1.last
    for k, st in enumerate(args.stages2):
        # targets with the blurry shot's exposure (see match_exposure), or the sharp shots as they are
        train2, _ = split(open_pairs(dpdd_dir, patch=st["patch"], match_exposure=args.match_exposure),
                          val_names=held, val_patch=vpatch)
        label = "phase 2" + (f" stage {k + 1}/{len(args.stages2)}" if len(args.stages2) > 1 else "")
        description = f"DPDD Canon pairs {DPDD} ({len(train2)} pairs; {len(held)} held out by name" + (
            "; sharp shots mapped onto the blurry shots' exposure for training)" if args.match_exposure else ")")
        if st["mix"] > 0 or st["photo"] > 0:
            photos = [read_image(f) for f in image_files(dpdd_dir / "sharp")
                      if f.stem not in held_set] if st["photo"] > 0 else None
            train2, description = mix_lightfields(train2, description, st, plants_lf, photos)
        r2 = finetune(train2, val=val2, model=start, config=stage_config(args, st, p2_dirs[k], description),
                      cancel=token, callback=Printer(args.print_every, label))
        if r2.cancelled:
            return 3
        stages.append(r2)
        start = r2.last  # the next stage fine-tunes this one

    # ---------------------------------------------------------------- final scores and the shipped files
    model = load_model(stages[-1].last, device=args.device)
    if args.quick:
        final_val = val2
        final_desc = f"centre {vpatch}x{vpatch} crops of {len(val2)} held-out DPDD pairs"
    else:
        final_val = dpdd.options(patch=None).subset([i for i, n in enumerate(dpdd.names) if n in set(held)])
        final_desc = f"the {len(final_val)} held-out DPDD pairs at full size (1024x1024)"
    print(f"final evaluation on {final_desc} ...", flush=True)
    ev_dpdd = score_model(model, final_val, device=model.device, cancel=token)
    if ev_dpdd["stopped"] or token.cancelled:
        # a part of the held-out pairs would make a card with wrong figures: write nothing
        print("stopped during the final evaluation: the model and its card were not written; run the same "
              "command again to evaluate and write them (the trained phases are kept)", flush=True)
        return 3
    ev_proc = score_model(model, val1, device=model.device)
    s2s = [r.summary for r in stages]
    s1, s2 = r1.summary, s2s[-1]
    total_seconds = float(s1.get("seconds", 0)) + sum(float(s.get("seconds", 0)) for s in s2s)
    final = {
        "dpdd_heldout": {k: float(ev_dpdd[k]) for k in ("psnr", "ssim", "input_psnr", "input_ssim")},
        "dpdd_heldout_names": held,
        "dpdd_heldout_images": final_desc,
        "procedural_heldout": {k: float(ev_proc[k]) for k in ("psnr", "ssim", "input_psnr", "input_ssim")},
        "per_image": [{k: (float(v) if isinstance(v, float) else v) for k, v in r.items()} for r in
                      ev_dpdd["per_image"]],
    }
    summary = {**s2, "recipe": "phase 1 pixel (multi-scale L1) on light-field pairs, then phase 2 "
                          f"{args.loss2} on DPDD",
               "phase1": s1, "phase2_stages": [{k: v for k, v in s.items() if k != "previous"} for s in s2s],
               "final_evaluation": final, "total_seconds": round(total_seconds, 1),
               "threads": args.threads, "quick": bool(args.quick)}
    summary.pop("previous", None)
    save_model(model, weights_out, training=json.loads(json.dumps(summary, default=str)), half=True)
    card = weights_out.parent / "MODEL_CARD.md"
    card.write_text(model_card(args, s1, s2s, final, total_seconds, model), encoding="utf-8")
    print(f"wrote {weights_out} and {card}", flush=True)
    d = final["dpdd_heldout"]
    print(f"held-out DPDD: model {d['psnr']:.2f} dB / {d['ssim']:.4f}, blurry input {d['input_psnr']:.2f} dB / "
          f"{d['input_ssim']:.4f}", flush=True)

    wall = time.perf_counter() - t_start
    # median raw step time over the second half of each phase (after the scene pool has been rendered)
    t1 = _median([r["seconds"] for r in r1.history[len(r1.history) // 2:]])
    t2 = [_median([r["seconds"] for r in r.history[len(r.history) // 2:]]) for r in stages]
    print(f"seconds per step (median, second half): phase 1 {t1:.2f}, phase 2 "
          f"{', '.join(f'{t:.2f}' for t in t2)}; this run {wall:.0f} s wall", flush=True)
    if args.quick:
        d1, d2 = parse([]).steps1, parse([]).steps2
        est = d1 * t1 + d2 * t2[0]
        print(f"estimate for the default settings ({d1} + {d2} steps, validation excluded): {est / 3600:.2f} h",
              flush=True)
    return 0


def lightfield_pairs(plants_lf, patch: int, n_procedural: int, n_plants: int, seed: int) -> list:
    """Pairs refocused on the fly: procedural scenes and the Lytro plants (the phase-1 data)."""
    from napari_lfdeblur.training import LightFieldPairs, ProceduralPairs

    return [ProceduralPairs(patch=patch, length=n_procedural, seed=seed),
            LightFieldPairs([plants_lf], names=[PLANTS], patch=patch, length=n_plants)]


def mix_lightfields(dpdd, description: str, st: dict, plants_lf, photos=None):
    """DPDD pairs plus light-field pairs at the stage's patch size: a fraction ``st["mix"]`` of the draws from
    the phase-1 light fields (procedural 80 %, plants 20 % of those), ``st["photo"]`` from procedural light
    fields textured with ``photos``."""
    from napari_lfdeblur.training import ConcatPairs, ProceduralPairs

    n_dpdd, photo = len(dpdd), st.get("photo", 0.0)
    rest = 1.0 - st["mix"] - photo
    parts, shares = [dpdd], []
    if st["mix"] > 0:
        n_lf = round(n_dpdd * st["mix"] / rest)
        n_plants = max(1, round(0.2 * n_lf))
        parts += lightfield_pairs(plants_lf, st["patch"], max(1, n_lf - n_plants), n_plants, st["seed"])
        share = 100 * st["mix"]
        shares.append(f"procedural {0.8 * share:.0f} %, {PLANTS} {0.2 * share:.0f} %")
    if photo > 0:
        n_ph = max(1, round(n_dpdd * photo / rest))
        # another seed stream than the plain procedural scenes'
        ph = ProceduralPairs(patch=st["patch"], length=n_ph, seed=st["seed"] + 104_729, images=photos)
        parts.append(ph)
        shares.append(f"procedural textured with the {len(photos)} training pairs' sharp shots "
                      f"{100 * photo:.0f} %")
    return ConcatPairs(parts), (
        f"{description} + light-field pairs on the fly ({100 * (1 - rest):.0f} % of draws: {', '.join(shares)})")


def _median(v):
    v = sorted(x for x in v if math.isfinite(x))
    return v[len(v) // 2] if v else math.nan


def precision(summary: dict) -> str:
    """A phase's arithmetic, from its summary's ``amp`` (runs from before it was recorded were float32)."""
    amp = summary.get("amp", "off")
    return "float32" if amp in ("off", None) else f"{amp} mixed precision (float32 weights)"


def model_card(args, s1, s2s, final, total_seconds, model) -> str:
    d, p = final["dpdd_heldout"], final["procedural_heldout"]
    s2 = s2s[-1]
    many = len(s2s) > 1
    heads = " | ".join(f"phase 2{f' stage {k + 1}' if many else ''}" for k in range(len(s2s)))
    rule = "|".join("---" for _ in s2s)

    def row(f):
        return " | ".join(f(s) for s in s2s)

    n_params = sum(t.numel() for t in model.parameters())
    return f"""# napari-lfdeblur default model

`default.pt` is a DRBNet (Ruan et al., "Learning to Deblur using Light Field Generated and Real
Defocus Images", CVPR 2022) re-implemented in this package and trained from scratch with
`scripts/train_default.py`{' (QUICK SMOKE TEST: not a usable model)' if args.quick else ''}.

- Network: DRBNet, base width {model.config['base']} ({n_params / 1e6:.2f} M parameters; the paper's is base 32,
  11.7 M), {model.config['res_blocks']} residual blocks.  Input RGB in [-1, 1].
{arch_line(model)}- Trained on: CPU ({args.threads} thread(s)), {total_seconds / 3600:.2f} h of training in all,
  torch {s2.get('torch_version', '')}.

## Recipe

| | phase 1 | {heads} |
|---|---|{rule}|
| data | {s1.get('data', '')} | {row(lambda s: str(s.get('data', '')))} |
| loss | {s1.get('loss')} (multi-scale: 1, 1/2, 1/4, 1/8 weighted 1, 0.5, 0.25, 0.125) | {row(lambda s: str(s.get('loss')) + LOSS_NOTES.get(str(s.get('loss')), ''))} |
| steps x batch x patch | {s1.get('steps')} x {s1.get('batch')} x {s1.get('patch')}² | {row(lambda s: f"{s.get('steps')} x {s.get('batch')} x {s.get('patch')}²")} |
| optimiser | Adam, lr {s1.get('lr')} cosine to 1 %, grad clip {s1.get('grad_clip')} | {row(lambda s: f"Adam, lr {s.get('lr')}{warm(s)} cosine to 1 %, grad clip {s.get('grad_clip')}")} |
| precision | {precision(s1)} | {row(precision)} |
| seed | {s1.get('seed')} | {row(lambda s: str(s.get('seed')))} |
| time | {s1.get('seconds', 0) / 60:.1f} min | {row(lambda s: f"{s.get('seconds', 0) / 60:.1f} min")} |
{chr(10) + 'Each phase-2 stage fine-tunes the previous stage' + chr(39) + 's last model.' if many else ''}

Command: `python scripts/train_default.py {recipe_args(args)}`

The paper's phase 2 uses a VGG19 feature loss; its ImageNet weights could not be downloaded on the
training machine, so {'the misalignment-tolerant `shift_l1` loss of this package' if s2.get('loss') == 'shift_l1'
                      else f"`{s2.get('loss')}`"} was used instead.

## Validation

| held-out data | model PSNR / SSIM | blurry input PSNR / SSIM |
|---|---|---|
| {final['dpdd_heldout_images']} | {d['psnr']:.2f} dB / {d['ssim']:.4f} | {d['input_psnr']:.2f} dB / {d['input_ssim']:.4f} |
| {len_or(s1.get('n_val'))} procedural scenes never seen in training (centre {args.patch}² crops) | {p['psnr']:.2f} dB / {p['ssim']:.4f} | {p['input_psnr']:.2f} dB / {p['input_ssim']:.4f} |

Held-out DPDD pairs (by name): {', '.join(final['dpdd_heldout_names'])}.
These scores are not comparable with published DPDD results (different test images, resized to
1024x1024 with the aspect ratio changed, JPEG-recompressed, and a much shorter training).

## Data and licences

- Procedural light fields (`napari_lfdeblur.lightfield.synthetic`), textured with images bundled
  with scikit-image (`skimage.data`) and procedural patterns{photo_note(args)}.
- Lytro plants `{PLANTS}`: J. F. Jaramillo Hernandez, M. F. Hernandez Baena, "Plants captured with
  lytro 1st gen dataset" (osf.io/qrm2x), CC BY 4.0.
- DPDD (Abuolaim & Brown, "Defocus Deblurring Using Dual-Pixel Data", ECCV 2020): 50 Canon pairs of
  a 1024x1024 copy; no licence is stated for this data (research use; cite the paper).  Check that
  this fits your use of the weights.

## Limitations
{below_input_warning(d)}
A light network trained for about two CPU hours, far from the paper's model (trained for days
on 11k LFDOF pairs and the full DPDD): compare the figures above with the blurry input's.  For quality, train
longer on a GPU (`lfdeblur train` / `finetune`, or this script with more steps and `--base 32`),
or load the authors' weights (`single_image_defocus_deblurring.pth`).
"""


def recipe_args(args) -> str:
    """The options that reproduce this recipe, every stage key spelled out."""
    parts = [f"--base {args.base}", f"--steps1 {args.steps1}", f"--lr1 {args.lr1:g}", f"--loss2 {args.loss2}"]
    parts += ["--paper-arch"] * args.paper_arch + ["--no-match-exposure"] * (not args.match_exposure)
    parts += ["--stage2 " + ",".join(f"{k}={v:g}" for k, v in st.items()) for st in args.stages2]
    return " ".join(parts)


def photo_note(args) -> str:
    """The data-section words for stages whose procedural scenes wear the DPDD training shots."""
    if not any(st.get("photo", 0) > 0 for st in args.stages2):
        return ""
    return (", and (stages with `photo`) with the sharp\n  shots of the DPDD training pairs (never the "
            "held-out ones)")


def warm(s) -> str:
    return f" ({s['warmup']} warm-up steps)" if s.get("warmup") else ""


LOSS_NOTES = {
    "shift_l1": " (L1 after the best shift of up to 3 px per 32 px tile, at 3 scales)",
    "l1": " (plain L1 at full resolution: the pairs' small misalignment is not compensated)",
}


def arch_line(model) -> str:
    if not model.config.get("input_detail"):
        return "- The paper's estimate path (each finer estimate starts from the coarser one upsampled).\n"
    return ("- `input_detail=True` (not in the paper): each finer estimate starts from the coarser one upsampled plus\n"
            "  the input's own detail at that scale, and the heads' last layers start at zero, so the untrained\n"
            "  network is the identity.  The paper's path starts from a blocky 1/8 copy and must learn to\n"
            "  rebuild every detail; in a 2-hour CPU budget that scored below the blurry input.  Same weights\n"
            "  and state-dict names as the paper's network.\n")


def below_input_warning(d) -> str:
    if d["psnr"] >= d["input_psnr"]:
        return ""
    return (f"\n**Warning: on the held-out DPDD pairs this model scores below the blurry input itself "
            f"({d['psnr']:.2f} dB against {d['input_psnr']:.2f} dB): it needs a longer training before it is "
            "useful.**\n")


def len_or(x):
    return x if x else "8"


if __name__ == "__main__":
    sys.exit(main())
