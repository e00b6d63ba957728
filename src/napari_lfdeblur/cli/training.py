"""``lfdeblur train`` and ``finetune``; their options' defaults and words come from the training config (no torch)."""

from __future__ import annotations

from pathlib import Path

from ..errors import LFDeblurError
from .argtypes import positive_int
from .progress import ProgressLog, StepClock, terminal_bar


def add_commands(sub) -> None:
    for name, helptext in (
        ("train", "train a network (phase 1: light-field pairs, pixel loss)"),
        ("finetune", "fine-tune a trained network (phase 2: real pairs, misalignment-tolerant loss)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("data", nargs="+",
                       help="pair folders, light fields, or 'synthetic' (procedural light fields on the fly)")
        p.add_argument("-o", "--out", required=True, help="run folder: checkpoints (last.pt, best.pt), log.csv")
        _add_model_arguments(p, name)
        _add_data_arguments(p)
        _add_run_arguments(p, name)
        p.set_defaults(func=cmd_train)


def _add_model_arguments(p, name: str) -> None:
    from ..training.config import NEW_NETWORK_BASE, PHASES, TrainConfig

    if name == "finetune":
        p.add_argument("--model", required=True, help="checkpoint to start from (e.g. a phase-1 best.pt)")
        return
    p.add_argument("--base", type=positive_int, default=NEW_NETWORK_BASE,
                   help="network width: 32 = the paper's DRBNet (default %(default)s, at most 256)")
    p.add_argument("--paper-arch", action="store_true",
                   help="a new network with the paper's exact estimate path; by default a new network "
                        "starts as the identity (input_detail), which a short training only improves")
    p.add_argument("--phase", choices=PHASES, default=TrainConfig().phase,
                   help="phase 1 (pixel loss) or phase 2 (feature loss) of the paper (default %(default)s)")
    p.add_argument("--model", help="start from this checkpoint instead of a new network")


def _add_data_arguments(p) -> None:
    from ..training.config import SUGGESTED_VAL_FRACTION, TrainConfig

    cfg = TrainConfig()
    p.add_argument("--loss", help="l1, charbonnier, shift_l1, vgg, or sums like 'vgg+0.1*shift_l1'")
    p.add_argument("--photos", metavar="FOLDER",
                   help="texture the 'synthetic' light fields with the sharp images in FOLDER (e.g. from your "
                        "camera or microscope): pairs with your images' own detail, noise and colours")
    p.add_argument("--match-exposure", action="store_true",
                   help="real two-shot pair folders: map each sharp shot onto its blurry shot's exposure "
                        "(the two shots differ in exposure too; scripts/train_default.py does this)")
    p.add_argument("--batch", type=positive_int, default=cfg.batch, help="pairs per step (default %(default)s)")
    p.add_argument("--patch", type=positive_int, default=cfg.patch,
                   help="crop size, a multiple of 8 (default %(default)s)")
    p.add_argument("--val", default=None,
                   help=f"validation: a fraction of the scenes ({SUGGESTED_VAL_FRACTION:g}; data of a single "
                        "scene hold out a band of their images that training never reads), or a pair folder "
                        "(default: no validation)")
    p.add_argument("--workers", type=int, default=cfg.num_workers, metavar="N",
                   help="data-loader processes that prepare the next pairs while the network trains (pairs "
                        "refocused from light fields on the fly are CPU work: on a GPU, give a few; the run is "
                        "the same for any N; default %(default)s = in the training process)")


def _add_run_arguments(p, name: str) -> None:
    from ..training.config import AMP_CHOICES, DEFAULT_LR, FINETUNE_PHASE, PHASES, SCHEDULES, TrainConfig, amp_choice

    cfg = TrainConfig()
    p.add_argument("--steps", type=positive_int, default=cfg.steps, help="optimisation steps (default %(default)s)")
    lr_default = (", ".join(f"{DEFAULT_LR[k]:g} in the {k} phase" for k in PHASES) if name == "train"
                  else f"{DEFAULT_LR[FINETUNE_PHASE]:g}")
    p.add_argument("--lr", type=float, default=cfg.lr, help=f"initial learning rate (default {lr_default})")
    p.add_argument("--schedule", choices=SCHEDULES, default=cfg.schedule,
                   help="learning-rate schedule (default %(default)s)")
    p.add_argument("--val-every", type=positive_int, default=cfg.val_every,
                   help="steps between validations (default a tenth of the run)")
    p.add_argument("--device", default=cfg.device, help="auto, cpu, cuda, cuda:1, mps (default %(default)s)")
    p.add_argument("--amp", choices=AMP_CHOICES, default=amp_choice(cfg.amp),
                   help="mixed precision: auto = float16 on CUDA, bfloat16 on CPUs that compute it natively "
                        "(AVX512-BF16/AMX: 1.2-1.7x faster steps), float32 elsewhere; off = float32")
    p.add_argument("--threads", type=positive_int, default=cfg.threads, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=cfg.seed, help="of everything random (default %(default)s)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out if there is one")


def read_photos(folder) -> list:
    """The images of a folder (PNG, JPEG, TIFF, BMP, WebP), for ``--photos``; a clear error when there are none."""
    from ..io import image_files, read_image

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LFDeblurError(f"--photos: {folder} is not a folder; give a folder of sharp images")
    files = image_files(folder)
    if not files:
        raise LFDeblurError(f"--photos: no PNG, JPEG, TIFF, BMP or WebP images in {folder}")
    return [read_image(f) for f in files]


def cmd_train(args) -> int:
    import warnings

    from ..training import finetune, train

    if getattr(args, "paper_arch", False) and args.model:
        raise LFDeblurError("--paper-arch builds a new network; --model starts from a checkpoint, which brings its "
                            "own architecture: give one of the two")
    config = _config(args)  # the options are checked here, before any data is read
    printer = _EventPrinter(args)  # ($LFDEBLUR_LOG_INTERVAL_S is checked here too, before any data is read)
    data, val = _data(args), _val(args.val)
    data = data if len(data) > 1 else data[0]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="resume: ", category=RuntimeWarning)  # said on 'started'
            if args.command == "finetune":
                result = finetune(data, model=args.model, val=val, config=config, callback=printer)
            else:
                model = args.model if args.model else {"base": args.base, "input_detail": not args.paper_arch}
                result = train(data, model=model, val=val, config=config, callback=printer)
    finally:
        printer.bar.close()
    state = "stopped" if result.cancelled else "finished"
    print(f"{args.command} {state} at step {result.steps}/{result.total}; last: {result.last}; best: {result.best}")
    return 0


def _config(args):
    from ..training.config import FINETUNE_PHASE, TrainConfig

    return TrainConfig(
        phase=FINETUNE_PHASE if args.command == "finetune" else args.phase, loss=args.loss, steps=args.steps,
        batch=args.batch, patch=args.patch, lr=args.lr, schedule=args.schedule, device=args.device, amp=args.amp,
        seed=args.seed, val_every=args.val_every, out=args.out, num_workers=args.workers, threads=args.threads,
        resume=True if args.resume else None,
    )


def _data(args) -> list:
    """The data arguments as train() takes them (pair sources where --photos or --match-exposure shape them)."""
    from ..training import open_pairs

    data = [("synthetic" if d in ("synthetic", "procedural") else d) for d in args.data]
    if args.photos:
        if "synthetic" not in data:
            raise LFDeblurError("--photos textures the procedural light fields: add 'synthetic' to the data")
        scenes = open_pairs("synthetic", patch=args.patch, images=read_photos(args.photos))
        data = [scenes if d == "synthetic" else d for d in data]
    if args.match_exposure:
        data = [open_pairs(data, patch=args.patch, match_exposure=True)]
    return data


def _val(val):
    if val is None:
        return None
    try:
        return float(val)
    except ValueError:
        return val


class _EventPrinter:
    """The training events on the terminal: a bar with the steady-state rate and time left, and lines for
    the start, validations, the best checkpoint and a stop; a log line now and then where there is no bar."""

    def __init__(self, args):
        self.args, self.log, self.clock = args, ProgressLog(), None
        # tqdm's own rate and time left would extrapolate from the first steps, which carry the run's start-up:
        # the bar shows the steady-state ones of StepClock instead
        self.bar = terminal_bar(total=args.steps, desc=args.command, unit="step",
                                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")

    def __call__(self, event) -> None:
        getattr(self, f"_{event.kind}", lambda _event: None)(event)

    def _started(self, event) -> None:
        args, bar = self.args, self.bar
        self.clock = StepClock(event.step, event.total)
        bar.reset(total=event.total)
        bar.update(event.step)
        bar.write(f"{args.command}: {event.model.get('base', '?')}-wide DRBNet on {event.runs_on}, "
                  f"{event.phase} phase, data: {event.data}")
        if args.resume and not event.resumed_from:
            bar.write(f"--resume: {args.out} holds no checkpoint to resume from (no resume.pt): starting from "
                      "step 1")

    def _step(self, event) -> None:
        clock, bar = self.clock, self.bar
        assert clock is not None  # "started" comes first
        clock.step(event.step)
        bar.set_postfix_str(f"loss={event.loss:.4f}, lr={event.lr:.1e}, {clock.describe()}", refresh=False)
        bar.update(event.step - bar.n)
        if bar.disable:  # stderr is a file or a pipe: no bar, a line now and then (the first step's too)
            self.log(f"{self.args.command}: step {event.step}/{event.total}  loss {event.loss:.4f}  "
                     f"{clock.describe()}", force=event.step == event.total)

    def _validation(self, event) -> None:
        self.bar.write(f"step {event.step}: validation PSNR {event.psnr:.2f} dB / SSIM {event.ssim:.3f} "
                       f"(blurry input {event.input_psnr:.2f} dB / {event.input_ssim:.3f})")

    def _checkpointsaved(self, event) -> None:
        if event.which == "best":
            self.bar.write(f"best checkpoint: {event.path}")

    def _stopped(self, event) -> None:
        if event.checkpoint:
            self.bar.write(f"stopped after step {event.step}; saved {event.checkpoint}. To continue, run the same "
                           "command with --resume")
