"""``lfdeblur deblur`` and ``eval``: images deblurred, and deblurring scored on a pair folder."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from ..errors import LFDeblurError
from .argtypes import non_negative_int, positive_int
from .progress import terminal_bar


def _add_device_options(p: argparse.ArgumentParser) -> None:
    """``--device`` and ``--dtype``: where and in which precision the network runs."""
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                   help="precision of deblurring: auto = bfloat16 on CPUs that compute it natively (AVX512-BF16/AMX; "
                        "about twice as fast, outputs within a level or two of 255 of float32), float32 elsewhere; "
                        "float16 and bfloat16 also on GPUs (default auto)")


def add_commands(sub) -> None:
    _add_deblur(sub)
    _add_eval(sub)


def _add_deblur(sub) -> None:
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
    _add_device_options(p)
    p.add_argument("--tile", type=positive_int, default=None,
                   help="tile size in pixels, more than twice the overlap (default: on the CPU the largest tiles "
                        "that fit $LFDEBLUR_TILE_MEMORY_MB, 512 MiB, the whole image when it fits; 512 on a GPU)")
    p.add_argument("--backend", choices=["auto", "torch", "openvino"], default="auto",
                   help="what runs the network: auto (OpenVINO on a CPU with AMX when installed, where it "
                        "was measured faster; else PyTorch), torch or openvino (default auto)")
    p.add_argument("--overlap", type=non_negative_int, default=None,
                   help="context pixels around each tile, cropped away (default 64)")
    p.add_argument("--batch", type=positive_int, default=None,
                   help="tiles per network call (default 1 on CPU, 4 on GPU)")
    p.add_argument("--normalize", default="auto",
                   help="intensity mapping: auto, percentile, dtype, none or LO,HI (default auto)")
    p.add_argument("--chunk", type=positive_int, default=None,
                   help="chunk size in pixels for chunk-by-chunk processing (default: the input's, else 1024)")
    p.add_argument("--lazy", action="store_true", help="process every input chunk by chunk, even small ones")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="compute the chunks on a running dask.distributed cluster (e.g. tcp://10.0.0.1:8786); "
                        "the workers must see the input and checkpoint paths")
    p.set_defaults(func=cmd_deblur)


def _add_eval(sub) -> None:
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
    _add_device_options(p)
    p.add_argument("--tile", type=positive_int, default=None,
                   help="tile size in pixels when deblurring (default: as in lfdeblur deblur)")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N", help="score only the first N pairs")
    p.add_argument("--lpips", choices=["auto", "on", "off"], default="auto",
                   help="LPIPS: when available (auto, default), required (on) or never (off)")
    p.set_defaults(func=cmd_eval)


def _deblur_inputs(items: list[str]):
    """Expand folders (their images, as io.image_files lists them) and globs; returns (paths, whether one file
    was named)."""
    import glob
    from pathlib import Path

    from ..errors import DeblurInputError
    from ..io import describe_formats, image_files, image_format, is_image_path

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

    from ..errors import DeblurInputError
    from ..io import NOT_WRITTEN_SUFFIXES, WRITE_SUFFIXES, image_format, result_format, stem, suffix_of

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
    from ..errors import DeblurInputError

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
    # made in two steps to hold the client even when connecting fails: a client whose address cannot be parsed
    # stays half-open, and its __del__ at exit then waits 40 s for a loop that is gone; closed here, it is not
    client = Client.__new__(Client)
    try:
        client.__init__(address, set_as_default=False, timeout="20s")  # type: ignore[misc]
    except BaseException as e:
        with contextlib.suppress(Exception):
            client.close(timeout=5)
        if isinstance(e, (OSError, TimeoutError, ValueError)):
            raise LFDeblurError(f"cannot connect to the dask scheduler at {address}: {e}") from e
        raise
    return client


def _progress_bar(desc: str, unit: str):
    """A tqdm bar and a ``progress(done, total)`` callback driving it."""
    bar = terminal_bar(total=0, desc=desc, unit=unit, leave=False, dynamic_ncols=True)

    def progress(done: int, total: int):
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    return bar, progress


def _deblur_one(src, dst, runtime, args, normalize, client) -> str:
    import time

    from ..inference.deblur import deblur
    from ..io import check_writable, open_image_info, save_image_streaming

    t0 = time.perf_counter()
    arr, info = open_image_info(src, lazy=True if (client is not None or args.lazy) else None)
    check_writable(arr.shape, arr.dtype, dst, rgb=info.rgb)
    # the model by name or path: the network is cached, and on a cluster it travels as its path
    opts = dict(model=args.model, tile=args.tile, overlap=args.overlap, batch=args.batch, device=args.device,
                dtype=args.dtype, normalize=normalize, rgb=info.rgb, backend=args.backend)
    if info.lazy:
        out = deblur(arr, chunk=args.chunk, **opts)
        bar, progress = _progress_bar(src.name, "chunk")
        with bar:
            save_image_streaming(out, dst, rgb=info.rgb, progress=progress, client=client, axes=info.axes)
    else:
        bar, progress = _progress_bar(src.name, "tile")
        with bar:
            out = deblur(arr, progress=progress, **opts)
        save_image_streaming(out, dst, rgb=info.rgb, axes=info.axes)
    shape = "x".join(str(n) for n in arr.shape)
    how = "chunk by chunk" + (" on the cluster" if client is not None else "") if info.lazy else "in memory"
    through = " through OpenVINO" if runtime.backend == "openvino" else ""
    return (f"{src} -> {dst}  ({shape} {arr.dtype}, {how}, network in {runtime.precision}{through}, "
            f"{time.perf_counter() - t0:.1f} s)")


def cmd_deblur(args) -> int:
    from ..inference.runtime import resolve_runtime
    from ..io import check_writable_file

    inputs, one_file = _deblur_inputs(args.inputs)
    outputs = _deblur_outputs(inputs, one_file, args.out, args.format)
    normalize = _deblur_normalize(args.normalize)
    client = _deblur_client(args.scheduler) if args.scheduler else None
    failed = 0
    try:
        # the network loaded once, now: a wrong --model, --backend or --tile fails before any work
        runtime = resolve_runtime(args.model, args.device, args.dtype, args.backend, args.tile, args.overlap,
                                  args.batch)
        # a read-only or full disk, or a file where the output folder should be: said now, not after the work
        for dst in dict.fromkeys(outputs):
            check_writable_file(dst, folder_ok=True)
        for src, dst in zip(inputs, outputs):
            try:
                print(_deblur_one(src, dst, runtime, args, normalize, client))
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


def cmd_eval(args) -> int:
    """``lfdeblur eval``: the public evaluate() with a progress bar, a table and an optional CSV."""
    from ..evaluation import evaluate
    from ..io import check_writable_file

    # a --csv that cannot be written fails now, not after scoring; a failure at the end (a full disk) comes after
    # the table, so the scores are never lost
    csv_path = check_writable_file(args.csv, "the CSV") if args.csv else None
    bar, progress = _progress_bar("eval", "img")
    with bar:
        result = evaluate(args.pairs, model=args.model, outputs=args.outputs, device=args.device, dtype=args.dtype,
                          tile=args.tile, limit=args.limit, lpips=args.lpips, progress=progress)
    n = len(result.rows)
    print(f"{n} pair{'s' if n != 1 else ''} from {args.pairs}, {result.source}; 'in' = the blurry input")
    print(result.table())
    if csv_path is not None and not result.cancelled:
        print(f"CSV: {result.write_csv(csv_path)}")
    return 0

