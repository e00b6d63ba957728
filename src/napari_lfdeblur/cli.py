"""The ``lfdeblur`` command: thin over the public API.

Each sub-command parses its arguments, calls the same function a script would
call, and prints what happened.  Errors a user can cause are printed as one
line (exit status 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
from pathlib import Path

from .errors import LFDeblurError


def _lightfield_options(args) -> dict:
    opts = {}
    if getattr(args, "format", None):
        opts["format"] = args.format
    if getattr(args, "pattern", None):
        opts["pattern"] = args.pattern
    if getattr(args, "views", None):
        opts["views"] = args.views  # (V, U), parsed by _views_type
    if getattr(args, "centers", None):
        opts["centers"] = args.centers
    if getattr(args, "axes", None):
        opts["axes"] = args.axes
    if getattr(args, "key", None):
        opts["key"] = args.key
    return opts


# ---------------------------------------------------------------- argument types (argparse says what is wrong)
def _int_at_least(minimum: int, wording: str):
    """An argparse type: a whole number of at least ``minimum`` (``wording`` says so when it is not)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be {wording}")
        return value

    return parse


_positive_int = _int_at_least(1, "a whole number of at least 1")
_non_negative_int = _int_at_least(0, "0 or more")


def _apertures_type(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give aperture sizes in (0, 1] separated by commas, e.g. 0.33,0.66,1") from None
    bad = [a for a in values if not 0 < a <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: aperture sizes must lie in (0, 1], not {bad[0]:g}")
    return values


def _views_type(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX*,]\s*(\d+)\s*)?", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise argparse.ArgumentTypeError(f"{text!r}: give views per macro-pixel as VxU (e.g. 14x14) or one number")
    v = int(m.group(1))
    return (v, int(m.group(2)) if m.group(2) is not None else v)


# ---------------------------------------------------------------- errors, in the command line's own words
# the API's messages name Python arguments; on the command line the user typed flags
_FLAGS = {"resume": "--resume", "pattern": "--pattern", "axes": "--axes", "key": "--key", "views": "--views",
          "centers": "--centers", "limit": "--limit", "focus": "--focus", "apertures": "--apertures",
          "threads": "--threads", "patch": "--patch", "steps": "--steps", "batch": "--batch", "amp": "--amp",
          "model": "--model", "out": "-o", "tile": "--tile", "overlap": "--overlap", "normalize": "--normalize",
          "num_workers": "--workers", "crop": "--crop", "val": "--val", "csv": "--csv", "loss": "--loss",
          "format": "--format"}
_COMMAND_FLAGS = {("pairs", "format"): "--image-format"}
_ARG_RE = re.compile(r"(?<![\w./\\-])([a-z_]+)=('[^']*'|\"[^\"]*\"|\([^)]*\)|[^\s,;:)]*)")


def _cli_words(command: str, message: str) -> str:
    """``resume=True`` -> ``--resume``, ``pattern='v_{row}.png'`` -> ``--pattern 'v_{row}.png'``, ..."""

    def flag(m):
        name, value = m.group(1), m.group(2)
        opt = _COMMAND_FLAGS.get((command, name)) or _FLAGS.get(name)
        if opt is None:
            return m.group(0)
        if name == "resume":
            return "--resume" if value in ("True", "") else m.group(0)
        if name == "amp" and value in ("False", "True"):
            return f"--amp {'off' if value == 'False' else 'auto'}"
        if value.startswith("("):  # views=(V, U) -> 14x14; normalize=(lo, hi) -> lo,hi
            parts = [v.strip() for v in value.strip("()").split(",")]
            value = ("x" if name == "views" else ",").join(parts)
        elif value == "None":
            value = "none"
        elif opt in ("--format", "--image-format", "--axes", "--key"):
            value = value.strip("'\"")
        return f"{opt} {value}" if value else opt

    # what only the Python API or the widgets can do is left out: the CLI says its own way
    message = re.sub(r"\s*\((?:[^()]*\bresume=False\b[^()]*|[^()]*the CLI's[^()]*)\)", "", message)
    return _ARG_RE.sub(flag, message)


def _os_error_line(e: OSError) -> str:
    """An OSError nobody turned into a project error, as one line with what to do."""
    where = e.filename if e.filename is not None else ""
    if getattr(e, "filename2", None):
        where = f"{where} -> {e.filename2}"
    text = f"{where}: {e.strerror}" if where and e.strerror else str(e) or type(e).__name__
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        text += "; free some space or write elsewhere"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        text += "; check the permissions, or write elsewhere"
    return text


def _bar(**options):
    """A tqdm bar on stderr, shown on terminals only.

    Some terminals report a size of 0 x 0 (a container's or CI runner's pseudo-terminal, ``script``); tqdm then
    draws nothing at all, and a long command looks silent: give it 80 x 24 there."""
    from tqdm import tqdm

    options.setdefault("disable", None)
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        size = None
    if size is not None and (size.columns <= 0 or size.lines <= 0):
        options["ncols"], options["nrows"], options["dynamic_ncols"] = 80, 24, False
    return tqdm(**options)


def _add_lightfield_arguments(p: argparse.ArgumentParser):
    p.add_argument("--format", choices=["hci", "grid", "eslf", "lenslet", "array"], help="override format detection")
    p.add_argument("--pattern", help="file pattern of a grid folder, e.g. 'view_{row}_{col}.png'")
    p.add_argument("--views", type=_views_type, help="views per macro-pixel for eslf/lenslet, e.g. 14x14")
    p.add_argument("--centers", help="microlens-centre table for raw lenslet images (.mat/.npy/.csv)")
    p.add_argument("--axes", help="axis order of an array file, e.g. VUYXC")
    p.add_argument("--key", help="dataset key inside .h5/.zarr files")


def cmd_info(args) -> int:
    from .lightfield.readers import read_lightfield

    lf = read_lightfield(args.path, **_lightfield_options(args))
    summary = lf.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        width = max(len(k) for k in summary)
        for k, v in summary.items():
            print(f"{k:<{width}}  {v}")
        if lf.n_views < lf.grid[0] * lf.grid[1]:
            print("present views (v down, u across; # = present, . = missing):")
            for row in lf.view_mask:
                print("  " + "".join("#" if m else "." for m in row))
    return 0


def _progress_bar(total: int, desc: str):
    return _bar(total=total, desc=desc, unit="img")


def cmd_refocus(args) -> int:
    import numpy as np

    from .io import check_writable_file, save_image
    from .lightfield.readers import read_lightfield
    from .lightfield.refocus import refocus

    lf = read_lightfield(args.lightfield, **_lightfield_options(args)).compute()
    disparities = args.disparity
    out = args.out
    if len(disparities) > 1 and "{" not in out:
        from pathlib import Path

        p = Path(out)
        out = str(p.with_name(p.stem + "_d{d:+.2f}" + (p.suffix or ".png")))
    for d in disparities:  # before any refocusing
        check_writable_file(out.format(d=d) if "{" in out else out)
    with _progress_bar(len(disparities), "refocus") as bar:
        for d in disparities:
            img = refocus(lf, d, aperture=args.aperture, aperture_shape=args.shape, device=args.device)
            path = out.format(d=d) if "{" in out else out
            save_image(path, img)
            bar.update(1)
            bar.write(f"d={d:+.3f} px/view, aperture {args.aperture}: {path}  (mean {float(np.mean(img)):.3f})")
    return 0


def cmd_pairs(args) -> int:
    from pathlib import Path

    from .lightfield.pairs import make_pairs, write_pairs
    from .lightfield.readers import read_lightfield

    sources: list[Path] = []
    for item in args.lightfields:
        p = Path(item)
        if p.is_dir() and args.each:
            sources.extend(sorted(q for q in p.iterdir() if not q.name.startswith(".")))
        else:
            sources.append(p)
    from .io import check_writable_file

    check_writable_file(Path(args.out) / "manifest.csv", "the pair folder")  # before any refocusing
    apertures = args.apertures  # a tuple, parsed by _apertures_type
    crop = None if args.crop.lower() == "none" else int(args.crop) if args.crop.isdigit() else args.crop
    n_total = len(sources) * len(apertures) * args.focus
    written = 0
    with _progress_bar(n_total, "pairs") as bar:
        for src in sources:
            try:
                lf = read_lightfield(src, **_lightfield_options(args))
            except LFDeblurError as e:
                if len(sources) == 1:
                    raise
                bar.write(f"skipping {src}: {e}")
                bar.update(len(apertures) * args.focus)
                continue
            pairs = make_pairs(lf.compute(), apertures=apertures, focus=args.focus, crop=crop)
            write_pairs(pairs, args.out, format=args.image_format)
            written += len(pairs)
            bar.update(len(apertures) * args.focus)
    print(f"{written} pairs from {len(sources)} light field(s) in {args.out}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, gui=args.gui, model=args.model)
    return 0


# ---------------------------------------------------------------- deblur
def _deblur_inputs(items: list[str]):
    """Expand folders (their images, as io.image_files lists them) and globs; returns (paths, whether one file
    was named)."""
    import glob
    import os
    from pathlib import Path

    from .errors import DeblurInputError
    from .io import describe_formats, image_files, image_format, is_image_path

    paths: list = []
    dangling: list = []  # broken symbolic links and link loops met in folders and globs: skipped, and said
    one_file = len(items) == 1

    def readable(q: Path) -> bool:
        if q.exists():  # False for a broken link or a link loop (which stat() cannot follow)
            return True
        dangling.append(q)
        return False

    for item in items:
        p = Path(item).expanduser()
        if p.is_dir() and image_format(p) != "ome.zarr":
            found = image_files(p, zarr=True, broken=dangling)
            if not found:
                raise DeblurInputError(f"{p}: no {describe_formats()} images in this folder")
            paths.extend(found)
            one_file = False
        elif p.exists():
            paths.append(p)
        elif any(c in item for c in "*?["):  # a glob the shell did not expand (Windows, quoted)
            found = sorted(Path(m) for m in glob.glob(os.path.expanduser(item))
                           if not Path(m).name.startswith(".") and is_image_path(m) and readable(Path(m)))
            if not found:
                raise DeblurInputError(f"no {describe_formats()} images match {item!r}")
            paths.extend(found)
            one_file = False
        elif os.path.lexists(p):
            raise DeblurInputError(f"{item} is a symbolic link to nothing (broken, or a loop of links)")
        else:
            raise DeblurInputError(f"{item} does not exist")
    if dangling:
        names = ", ".join(str(q) for q in dangling[:3]) + (", ..." if len(dangling) > 3 else "")
        print(f"lfdeblur deblur: skipping {len(dangling)} symbolic link(s) to nothing (broken, or loops): {names}",
              file=sys.stderr)
    unique = list(dict.fromkeys(paths))
    return unique, one_file and len(unique) == 1


def _deblur_outputs(inputs, one_file: bool, out: str, fmt: str | None) -> list:
    """Output paths: ``out`` itself for one file named like an image, else ``out/<stem>_deblurred.<ext>``."""
    from pathlib import Path

    from .errors import DeblurInputError
    from .io import NOT_WRITTEN_SUFFIXES, WRITE_SUFFIXES, image_format, result_format, stem, suffix_of

    out_p = Path(out).expanduser()
    if out_p.suffix.lower() in NOT_WRITTEN_SUFFIXES and not out_p.is_dir():
        raise DeblurInputError(
            f"-o {out}: deblur writes .png, .jpg, .tif or .ome.zarr images, not {out_p.suffix}; for a folder of "
            "results give a name without an image suffix"
        )
    names_a_file = out_p.suffix.lower() in WRITE_SUFFIXES and not (out_p.is_dir() and image_format(out_p) is None)
    if names_a_file:
        if not one_file:
            raise DeblurInputError(
                f"-o {out} names a file, but there are {len(inputs)} images: give a folder for several images"
            )
        out_fmt = WRITE_SUFFIXES[out_p.suffix.lower()]
        if fmt and fmt != out_fmt:
            raise DeblurInputError(f"--format {fmt} does not match the output name {out_p.name}")
        outputs = [out_p]
    else:
        if out_p.exists() and not out_p.is_dir():
            raise DeblurInputError(f"-o {out} is an existing file; give a folder (or an output image name)")
        outputs = []
        for src in inputs:
            ext = suffix_of(fmt or result_format(src))
            outputs.append(out_p / f"{stem(src)}_deblurred{ext}")
    seen: dict = {}
    for src, dst in zip(inputs, outputs):
        if os.path.realpath(dst) == os.path.realpath(src):
            raise DeblurInputError(f"{dst} would overwrite its input")
        if dst in seen:
            raise DeblurInputError(f"{seen[dst]} and {src} would both be written to {dst}; use separate -o folders")
        seen[dst] = src
    return outputs


def _deblur_normalize(text: str):
    from .errors import DeblurInputError

    if "," in text:
        try:
            lo, hi = (float(v) for v in text.split(","))
        except ValueError as e:
            raise DeblurInputError(f"--normalize {text}: give LO,HI as two numbers") from e
        return (lo, hi)
    return text


def _deblur_client(address: str):
    try:
        from distributed import Client
    except ImportError as e:
        raise LFDeblurError(
            "--scheduler runs on a dask.distributed cluster, which is not installed: pip install distributed"
        ) from e
    try:
        return Client(address, set_as_default=False, timeout="20s")
    except (OSError, TimeoutError, ValueError) as e:
        raise LFDeblurError(f"cannot connect to the dask scheduler at {address}: {e}") from e


def _deblur_bar(desc: str, unit: str):
    """A tqdm bar and a ``progress(done, total)`` callback driving it."""
    bar = _bar(total=0, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def progress(done: int, total: int):
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    return bar, progress


def _deblur_one(src, dst, model, args, normalize, client) -> str:
    import time

    from .inference.deblur import deblur
    from .inference.models import precision_of
    from .io import check_writable, open_image_info, save_image_streaming

    t0 = time.perf_counter()
    arr, info = open_image_info(src, lazy=True if (client is not None or args.lazy) else None)
    check_writable(arr.shape, arr.dtype, dst, rgb=info.rgb)
    opts = dict(model=model, tile=args.tile, overlap=args.overlap, batch=args.batch, device=args.device,
                dtype=args.dtype, normalize=normalize, rgb=info.rgb)
    if info.lazy:
        out = deblur(arr, chunk=args.chunk, **opts)
        bar, progress = _deblur_bar(src.name, "chunk")
        with bar:
            save_image_streaming(out, dst, rgb=info.rgb, progress=progress, client=client, axes=info.axes)
    else:
        bar, progress = _deblur_bar(src.name, "tile")
        with bar:
            out = deblur(arr, progress=progress, **opts)
        save_image_streaming(out, dst, rgb=info.rgb, axes=info.axes)
    shape = "x".join(str(n) for n in arr.shape)
    how = "chunk by chunk" + (" on the cluster" if client is not None else "") if info.lazy else "in memory"
    return (f"{src} -> {dst}  ({shape} {arr.dtype}, {how}, network in {precision_of(model)}, "
            f"{time.perf_counter() - t0:.1f} s)")


def cmd_deblur(args) -> int:
    from .inference.models import get_model
    from .inference.runners import picklable_model
    from .io import check_writable_file

    inputs, one_file = _deblur_inputs(args.inputs)
    outputs = _deblur_outputs(inputs, one_file, args.out, args.format)
    normalize = _deblur_normalize(args.normalize)
    client = _deblur_client(args.scheduler) if args.scheduler else None
    failed = 0
    try:
        # load the network once, now: a wrong --model fails before any work; on a cluster it
        # travels to the workers as its checkpoint path
        model = (picklable_model(args.model, args.device, args.dtype) if client is not None
                 else get_model(args.model, args.device, args.dtype))
        # a read-only or full disk, or a file where the output folder should be: said now, not after the work
        for dst in dict.fromkeys(outputs):
            check_writable_file(dst, folder_ok=True)
        for src, dst in zip(inputs, outputs):
            try:
                print(_deblur_one(src, dst, model, args, normalize, client))
            except LFDeblurError as e:
                if len(inputs) == 1:
                    raise
                failed += 1
                print(f"lfdeblur deblur: error: {src}: {e}", file=sys.stderr)
    finally:
        if client is not None:
            client.close()
    if failed:
        print(f"lfdeblur deblur: error: {failed} of {len(inputs)} images failed", file=sys.stderr)
        return 2
    return 0


def _add_dtype_option(p) -> None:
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="precision of deblurring: auto = bfloat16 on CPUs that compute it natively (AVX512-BF16/AMX; "
                        "about twice as fast, outputs within a level or two of 255 of float32), float32 elsewhere; "
                        "float16 and bfloat16 also on GPUs (default auto)")


def cmd_eval(args) -> int:
    """``lfdeblur eval``: the public evaluate() with a progress bar, a table and an optional CSV."""
    from .evaluation import evaluate

    from .io import check_writable_file

    lpips = {"auto": "auto", "on": True, "off": False}[args.lpips]
    # a --csv that cannot be written fails now, not after scoring; a failure at the end (a full disk) comes after
    # the table, so the scores are never lost
    csv_path = check_writable_file(args.csv, "the CSV") if args.csv else None
    bar = _bar(total=0, desc="eval", unit="img", leave=False)

    def progress(done, total):
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = evaluate(args.pairs, model=args.model, outputs=args.outputs, device=args.device, dtype=args.dtype,
                          tile=args.tile, limit=args.limit, lpips=lpips, progress=progress)
    finally:
        bar.close()
    n = len(result.rows)
    print(f"{n} pair{'s' if n != 1 else ''} from {args.pairs}, {result.source}; 'in' = the blurry input")
    print(result.table())
    if csv_path is not None and not result.cancelled:
        print(f"CSV: {result.write_csv(csv_path)}")
    return 0


def read_photos(folder) -> list:
    """The images of a folder (PNG, JPEG, TIFF, BMP, WebP), for ``--photos``; a clear error when there are none."""
    from .io import image_files, read_image

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LFDeblurError(f"--photos: {folder} is not a folder; give a folder of sharp images")
    files = image_files(folder)
    if not files:
        raise LFDeblurError(f"--photos: no PNG, JPEG, TIFF, BMP or WebP images in {folder}")
    return [read_image(f) for f in files]


def cmd_train(args) -> int:
    """``lfdeblur train`` / ``lfdeblur finetune``: the public train()/finetune() with a progress bar."""
    import warnings

    from .training import finetune, open_pairs, train
    from .training.config import FINETUNE_PHASE, TrainConfig

    finetuning = args.command == "finetune"
    if getattr(args, "paper_arch", False) and args.model:
        raise LFDeblurError("--paper-arch builds a new network; --model starts from a checkpoint, which brings its "
                            "own architecture: give one of the two")
    config = TrainConfig(  # the options are checked here, before any data is read
        phase=FINETUNE_PHASE if finetuning else args.phase, loss=args.loss, steps=args.steps, batch=args.batch,
        patch=args.patch, lr=args.lr, schedule=args.schedule, device=args.device, amp=args.amp, seed=args.seed,
        val_every=args.val_every, out=args.out, num_workers=args.workers, threads=args.threads,
        resume=True if args.resume else None,
    )
    data = [("synthetic" if d in ("synthetic", "procedural") else d) for d in args.data]
    if args.photos:
        if "synthetic" not in data:
            raise LFDeblurError("--photos textures the procedural light fields: add 'synthetic' to the data")
        scenes = open_pairs("synthetic", patch=args.patch, images=read_photos(args.photos))
        data = [scenes if d == "synthetic" else d for d in data]
    if args.match_exposure:
        data = open_pairs(data, patch=args.patch, match_exposure=True)
    val = args.val
    if val is not None:
        try:
            val = float(val)
        except ValueError:
            pass  # a path of validation pairs
    bar = _bar(total=args.steps, desc=args.command, unit="step")

    def on_event(event):
        if event.kind == "started":
            bar.reset(total=event.total)
            bar.update(event.step)
            bar.write(f"{args.command}: {event.model.get('base', '?')}-wide DRBNet on {event.runs_on}, "
                      f"{event.phase} phase, data: {event.data}")
            if args.resume and not event.resumed_from:
                bar.write(f"--resume: {args.out} holds no checkpoint to resume from (no resume.pt): starting from "
                          "step 1")
        elif event.kind == "step":
            bar.update(event.step - bar.n)
            bar.set_postfix(loss=f"{event.loss:.4f}", lr=f"{event.lr:.1e}")
        elif event.kind == "validation":
            bar.write(f"step {event.step}: validation PSNR {event.psnr:.2f} dB / SSIM {event.ssim:.3f} "
                      f"(blurry input {event.input_psnr:.2f} dB / {event.input_ssim:.3f})")
        elif event.kind == "checkpointsaved" and event.which == "best":
            bar.write(f"best checkpoint: {event.path}")
        elif event.kind == "cancelled" and event.checkpoint:
            bar.write(f"stopped after step {event.step}; saved {event.checkpoint}. To continue, run the same "
                      "command with --resume")

    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="resume: ", category=RuntimeWarning)  # said on 'started'
            if finetuning:
                result = finetune(data if len(data) > 1 else data[0], model=args.model, val=val, config=config,
                                  callback=on_event)
            else:
                model = args.model if args.model else {"base": args.base, "input_detail": not args.paper_arch}
                result = train(data if len(data) > 1 else data[0], model=model, val=val, config=config,
                               callback=on_event)
    finally:
        bar.close()
    state = "stopped" if result.cancelled else "finished"
    print(f"{args.command} {state} at step {result.steps}/{result.total}; last: {result.last}; best: {result.best}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="lfdeblur",
        description="Light-field generated defocus deblurring: read light fields, make pairs, train, deblur.",
    )
    parser.add_argument("--version", action="version", version=f"napari-lfdeblur {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="describe a light field: grid, present views, view size, dtype, disparity")
    p.add_argument("path", help="light-field folder or file")
    p.add_argument("--json", action="store_true", help="print JSON")
    _add_lightfield_arguments(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("refocus", help="synthetic-aperture refocusing of a light field")
    p.add_argument("lightfield", help="light-field folder or file")
    p.add_argument("--disparity", "-d", type=float, nargs="+", required=True,
                   help="focus plane(s) in pixels per view step; several make several images")
    p.add_argument("--aperture", "-a", type=float, default=1.0, help="fraction of the view grid's radius, (0, 1]")
    p.add_argument("--shape", default="disk", choices=["disk", "square"], help="aperture shape")
    p.add_argument("--device", default=None, help="cpu, cuda, mps or auto")
    p.add_argument("-o", "--out", required=True, help="output image (.png 8-bit, .tif 16-bit); '{d}' is replaced")
    _add_lightfield_arguments(p)
    p.set_defaults(func=cmd_refocus)

    p = sub.add_parser("pairs", help="make (blurred, sharp) training pairs from light fields")
    p.add_argument("lightfields", nargs="+", help="light-field folders/files (or, with --each, folders of them)")
    p.add_argument("-o", "--out", required=True, help="data-set folder (blur/, sharp/, manifest); appended to")
    p.add_argument("--apertures", type=_apertures_type, default="0.33,0.66,1.0",
                   help="comma-separated apertures in (0, 1] (default 3 sizes)")
    p.add_argument("--focus", type=_positive_int, default=5, help="focus planes per aperture (default 5, at most 256)")
    p.add_argument("--crop", default="auto", help="border to crop: auto, none or pixels")
    p.add_argument("--each", action="store_true", help="treat each entry of the given folders as a light field")
    p.add_argument("--image-format", default="png", choices=["png", "tiff16"], help="8-bit PNG or 16-bit TIFF")
    _add_lightfield_arguments(p)
    p.set_defaults(func=cmd_pairs)

    p = sub.add_parser(
        "deblur",
        help="deblur images (files, folders, globs, TIFF stacks, zarr/OME-Zarr); big ones chunk by chunk",
        description="Deblur images with a DRBNet network.  Small images are deblurred in memory tile by tile; big "
                    "TIFFs and zarr stores (or every input with --lazy or --scheduler) chunk by chunk, written "
                    "as they are computed, so memory stays flat.  Outputs appear only when complete.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN",
                   help="images (png, jpg, tif, bmp, webp, ppm/pgm, gif, .zarr/.ome.zarr), folders of them, or globs "
                        "('data/*.tif')")
    p.add_argument("-o", "--out", required=True,
                   help="output image for one input (its suffix sets the format), else a folder: "
                        "<input name>_deblurred.<format>")
    p.add_argument("--format", choices=["png", "jpg", "tif", "ome.zarr"],
                   help="output format in a folder (default: the input's; png for bmp, webp and gif inputs, tif "
                        "for ppm/pgm; ome.zarr for zarr inputs)")
    p.add_argument("--model", default="default",
                   help="'default', 'authors' (the authors' published weights, AGPL-3.0, downloaded once) "
                        "or a checkpoint path (.pt/.pth)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    _add_dtype_option(p)
    p.add_argument("--tile", type=_positive_int, default=None, help="tile size in pixels (default 512)")
    p.add_argument("--overlap", type=_non_negative_int, default=None,
                   help="context pixels around each tile (default 48)")
    p.add_argument("--batch", type=_positive_int, default=None,
                   help="tiles per network call (default 1 on CPU, 4 on GPU)")
    p.add_argument("--normalize", default="auto",
                   help="intensity mapping: auto, percentile, dtype, none or LO,HI (default auto)")
    p.add_argument("--chunk", type=_positive_int, default=None,
                   help="chunk size in pixels for chunk-by-chunk processing (default: the input's, else 1024)")
    p.add_argument("--lazy", action="store_true", help="process every input chunk by chunk, even small ones")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="compute the chunks on a running dask.distributed cluster (e.g. tcp://10.0.0.1:8786); "
                        "the workers must see the input and checkpoint paths")
    p.set_defaults(func=cmd_deblur)

    p = sub.add_parser(
        "eval",
        help="score a model, or a folder of deblurred images, on a pair folder: PSNR, SSIM, MAE (LPIPS)",
        description="Score deblurring on a pair folder against its sharp images, next to the blurry input "
                    "itself: PSNR, SSIM and MAE on RGB in [0, 1], and LPIPS when the lpips package and its "
                    "AlexNet weights are on this machine (never downloaded).  Prints a table per image with "
                    "the mean and the PSNR gain; --csv writes it (no CSV by default).",
    )
    p.add_argument("pairs", help="pair folder: blur/ + sharp/ (or source/ + target/), write_pairs or LFDOF layout")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="deblur the blurred images with this model: 'default' or a checkpoint path")
    what.add_argument("--outputs", metavar="DIR",
                      help="score these images instead: NAME.png or NAME_deblurred.png per pair, full size")
    p.add_argument("--csv", metavar="FILE", help="write the scores per image and their mean to this CSV file")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    _add_dtype_option(p)
    p.add_argument("--tile", type=_positive_int, default=None,
                   help="tile size in pixels when deblurring (default 512)")
    p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="score only the first N pairs")
    p.add_argument("--lpips", choices=["auto", "on", "off"], default="auto",
                   help="LPIPS: when available (auto, default), required (on) or never (off)")
    p.set_defaults(func=cmd_eval)

    # train and finetune: the defaults, the choices and their words come from the training config (no torch)
    from .training.config import (
        AMP_CHOICES,
        DEFAULT_LR,
        FINETUNE_PHASE,
        NEW_NETWORK_BASE,
        PHASES,
        SCHEDULES,
        SUGGESTED_VAL_FRACTION,
        TrainConfig,
        amp_choice,
    )

    cfg = TrainConfig()
    for name, helptext in (
        ("train", "train a network (phase 1: light-field pairs, pixel loss)"),
        ("finetune", "fine-tune a trained network (phase 2: real pairs, misalignment-tolerant loss)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("data", nargs="+",
                       help="pair folders, light fields, or 'synthetic' (procedural light fields on the fly)")
        p.add_argument("-o", "--out", required=True, help="run folder: checkpoints (last.pt, best.pt), log.csv")
        if name == "train":
            p.add_argument("--base", type=_positive_int, default=NEW_NETWORK_BASE,
                           help="network width: 32 = the paper's DRBNet (default %(default)s, at most 256)")
            p.add_argument("--paper-arch", action="store_true",
                           help="a new network with the paper's exact estimate path; by default a new network "
                                "starts as the identity (input_detail), which a short training only improves")
            p.add_argument("--phase", choices=PHASES, default=cfg.phase,
                           help="phase 1 (pixel loss) or phase 2 (feature loss) of the paper (default %(default)s)")
            p.add_argument("--model", help="start from this checkpoint instead of a new network")
        else:
            p.add_argument("--model", required=True, help="checkpoint to start from (e.g. a phase-1 best.pt)")
        p.add_argument("--loss", help="l1, charbonnier, shift_l1, vgg, or sums like 'vgg+0.1*shift_l1'")
        p.add_argument("--photos", metavar="FOLDER",
                       help="texture the 'synthetic' light fields with the sharp images in FOLDER (e.g. from your "
                            "camera or microscope): pairs with your images' own detail, noise and colours")
        p.add_argument("--match-exposure", action="store_true",
                       help="real two-shot pair folders: map each sharp shot onto its blurry shot's exposure "
                            "(the two shots differ in exposure too; scripts/train_default.py does this)")
        p.add_argument("--steps", type=_positive_int, default=cfg.steps,
                       help="optimisation steps (default %(default)s)")
        p.add_argument("--batch", type=_positive_int, default=cfg.batch, help="pairs per step (default %(default)s)")
        p.add_argument("--patch", type=_positive_int, default=cfg.patch,
                       help="crop size, a multiple of 8 (default %(default)s)")
        lr_default = (", ".join(f"{DEFAULT_LR[k]:g} in the {k} phase" for k in PHASES) if name == "train"
                      else f"{DEFAULT_LR[FINETUNE_PHASE]:g}")
        p.add_argument("--lr", type=float, default=cfg.lr, help=f"initial learning rate (default {lr_default})")
        p.add_argument("--schedule", choices=SCHEDULES, default=cfg.schedule,
                       help="learning-rate schedule (default %(default)s)")
        p.add_argument("--val", default=None,
                       help=f"validation: a fraction of the scenes ({SUGGESTED_VAL_FRACTION:g}; data of a single "
                            "scene hold out a band of their images that training never reads), or a pair folder "
                            "(default: no validation)")
        p.add_argument("--val-every", type=_positive_int, default=cfg.val_every,
                       help="steps between validations (default a tenth of the run)")
        p.add_argument("--device", default=cfg.device, help="auto, cpu, cuda, cuda:1, mps (default %(default)s)")
        p.add_argument("--amp", choices=AMP_CHOICES, default=amp_choice(cfg.amp),
                       help="mixed precision: auto = float16 on CUDA, bfloat16 on CPUs that compute it natively "
                            "(AVX512-BF16/AMX: 1.2-1.7x faster steps), float32 elsewhere; off = float32")
        p.add_argument("--threads", type=_positive_int, default=cfg.threads, help="torch CPU threads")
        p.add_argument("--workers", type=int, default=cfg.num_workers, metavar="N",
                       help="data-loader processes that prepare the next pairs while the network trains (pairs "
                            "refocused from light fields on the fly are CPU work: on a GPU, give a few; the run is "
                            "the same for any N; default %(default)s = in the training process)")
        p.add_argument("--seed", type=int, default=cfg.seed, help="of everything random (default %(default)s)")
        p.add_argument("--resume", action="store_true", help="continue the run in --out if there is one")
        p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "demo",
        help="the whole story on the shipped data: light fields, focal range, pairs, deblurring; figures in --out",
    )
    p.add_argument("--out", default="lfdeblur-demo", help="output folder (default: ./lfdeblur-demo)")
    p.add_argument("--gui", action="store_true", help="open napari with the results and the plugin's widgets")
    p.add_argument("--model", default=None,
                   help="checkpoint (.pt/.pth) to deblur with (default: the shipped model; skipped when absent)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from ._signals import Terminated, sigterm_as_interrupt

    try:
        # SIGTERM (kill, a batch system's time limit) stops like Ctrl-C: train saves its last step, writers
        # remove their half-written outputs
        with sigterm_as_interrupt():
            return int(args.func(args) or 0)
    except LFDeblurError as e:
        print(f"lfdeblur {args.command}: error: {_cli_words(args.command, str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"lfdeblur {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except OSError as e:  # a read-only or full disk, a file in the way: one line, not a traceback
        print(f"lfdeblur {args.command}: error: {_os_error_line(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
