"""``lfdeblur info``, ``refocus`` and ``pairs``: light fields read, refocused and made into training pairs."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import LFDeblurError
from .argtypes import apertures_type, positive_int, views_type
from .messages import cli_words, os_error_line
from .progress import terminal_bar


def _add_lightfield_arguments(p: argparse.ArgumentParser):
    p.add_argument("--format", choices=["hci", "grid", "eslf", "lenslet", "array"], help="override format detection")
    p.add_argument("--pattern", help="file pattern of a grid folder, e.g. 'view_{row}_{col}.png'")
    p.add_argument("--views", type=views_type, help="views per macro-pixel for eslf/lenslet, e.g. 14x14")
    p.add_argument("--centers", help="microlens-centre table for raw lenslet images (.mat/.npy/.csv)")
    p.add_argument("--axes", help="axis order of an array file, e.g. VUYXC")
    p.add_argument("--key", help="dataset key inside .h5/.zarr files")


def _lightfield_options(args) -> dict:
    """The options of :func:`_add_lightfield_arguments` that were given, as read_lightfield's arguments."""
    names = ("format", "pattern", "views", "centers", "axes", "key")
    return {name: getattr(args, name) for name in names if getattr(args, name, None)}


def add_commands(sub) -> None:
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
    p.add_argument("--apertures", type=apertures_type, default="0.33,0.66,1.0",
                   help="comma-separated apertures in (0, 1] (default 3 sizes)")
    p.add_argument("--focus", type=positive_int, default=5, help="focus planes per aperture (default 5, at most 256)")
    p.add_argument("--crop", default="auto", help="border to crop: auto, none or pixels")
    p.add_argument("--each", action="store_true", help="treat each entry of the given folders as a light field")
    p.add_argument("--image-format", default="png", choices=["png", "tiff16"], help="8-bit PNG or 16-bit TIFF")
    _add_lightfield_arguments(p)
    p.set_defaults(func=cmd_pairs)


def cmd_info(args) -> int:
    from ..lightfield.readers import read_lightfield

    lf = read_lightfield(args.path, **_lightfield_options(args))
    summary = lf.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        width = max(len(k) for k in summary)
        for k, v in summary.items():
            print(f"{k:<{width}}  {v}")
        if lf.view_mask is not None and lf.n_views < lf.grid[0] * lf.grid[1]:
            print("present views (v down, u across; # = present, . = missing):")
            for row in lf.view_mask:
                print("  " + "".join("#" if m else "." for m in row))
    return 0


def cmd_refocus(args) -> int:
    import numpy as np

    from ..io import check_writable_file, save_image
    from ..lightfield.readers import read_lightfield
    from ..lightfield.refocus import refocus

    lf = read_lightfield(args.lightfield, **_lightfield_options(args)).compute()
    disparities = args.disparity
    out = args.out
    if len(disparities) > 1 and "{" not in out:
        from pathlib import Path

        p = Path(out)
        out = str(p.with_name(p.stem + "_d{d:+.2f}" + (p.suffix or ".png")))
    paths = [out.format(d=d) if "{" in out else out for d in disparities]
    for path in paths:  # before any refocusing
        check_writable_file(path)
    with terminal_bar(total=len(disparities), desc="refocus", unit="img") as bar:
        for d, path in zip(disparities, paths):
            img = refocus(lf, d, aperture=args.aperture, aperture_shape=args.shape, device=args.device)
            save_image(path, img)
            bar.update(1)
            bar.write(f"d={d:+.3f} px/view, aperture {args.aperture}: {path}  (mean {float(np.mean(img)):.3f})")
    return 0


def cmd_pairs(args) -> int:
    from pathlib import Path

    from ..io import check_writable_file
    from ..lightfield.batch import lightfield_entries, pairs_from_lightfields
    from ..lightfield.readers import read_lightfield

    sources: list[Path] = []
    for item in args.lightfields:
        p = Path(item)
        sources.extend(lightfield_entries(p) if p.is_dir() and args.each else [p])
    check_writable_file(Path(args.out) / "manifest.csv", "the pair folder")  # before any refocusing
    crop = None if args.crop.lower() == "none" else int(args.crop) if args.crop.isdigit() else args.crop

    def read(path):
        try:  # read in full here: a view that cannot be decoded skips this light field, not the batch
            return read_lightfield(path, **_lightfield_options(args)).compute()
        except LFDeblurError as e:  # a reader's format= is this command's --format (--image-format is the pairs')
            raise LFDeblurError(cli_words("info", str(e))) from e

    with terminal_bar(total=len(sources) * len(args.apertures) * args.focus, desc="pairs", unit="img") as bar:
        batch = pairs_from_lightfields(
            sources, args.out, apertures=args.apertures, focus=args.focus, crop=crop, format=args.image_format,
            read=read, keep=False, progress=lambda done, _total: bar.update(max(done - bar.n, 0)),
            on_skip=lambda name, _e: bar.write(f"lfdeblur pairs: skipping {name} (the reason is listed at the end)",
                                               file=sys.stderr))
    return _report_pairs(batch, args.out)


def _report_pairs(batch, out) -> int:
    """What ``lfdeblur pairs`` made and skipped; raises when nothing was written or the folder took no more."""
    if batch.error is not None:
        if batch.made:  # say what the folder holds before the error's line
            print(f"lfdeblur pairs: {batch.made} pairs from {batch.used} light field(s) were written to {out} "
                  "before this error", file=sys.stderr)
        raise batch.error
    n = batch.n_sources
    if batch.skipped:
        print(f"lfdeblur pairs: skipped {len(batch.skipped)} of {n} light fields:", file=sys.stderr)
        for name, e in batch.skipped:
            why = cli_words("pairs", str(e) if isinstance(e, LFDeblurError) else os_error_line(e))
            print(f"  {name}: {why}", file=sys.stderr)
        if not batch.used:
            raise LFDeblurError(f"no pairs were written: all {n} light fields were skipped (listed above)")
    print(f"{batch.made} pairs from {batch.used} of {n} light field(s) in {out}"
          + (f"; {len(batch.skipped)} skipped (listed on stderr)" if batch.skipped else ""))
    return 0
