"""The ``lfdeblur`` command: thin over the public API.

Each sub-command parses its arguments, calls the same function a script would
call, and prints what happened.  Errors a user can cause are printed as one
line (exit status 2) instead of a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import LFDeblurError


def _lightfield_options(args) -> dict:
    opts = {}
    if getattr(args, "format", None):
        opts["format"] = args.format
    if getattr(args, "pattern", None):
        opts["pattern"] = args.pattern
    if getattr(args, "views", None):
        v = [int(x) for x in args.views.lower().split("x")]
        opts["views"] = (v[0], v[0]) if len(v) == 1 else (v[0], v[1])
    if getattr(args, "centers", None):
        opts["centers"] = args.centers
    if getattr(args, "axes", None):
        opts["axes"] = args.axes
    if getattr(args, "key", None):
        opts["key"] = args.key
    return opts


def _add_lightfield_arguments(p: argparse.ArgumentParser):
    p.add_argument("--format", choices=["hci", "grid", "eslf", "lenslet", "array"], help="override format detection")
    p.add_argument("--pattern", help="file pattern of a grid folder, e.g. 'view_{row}_{col}.png'")
    p.add_argument("--views", help="views per macro-pixel for eslf/lenslet, e.g. 14x14")
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


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(out=args.out, gui=args.gui)
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

    p = sub.add_parser("demo", help="run the whole story on the shipped sample data and write a figure")
    p.add_argument("--out", default="lfdeblur-demo", help="output folder (default: ./lfdeblur-demo)")
    p.add_argument("--gui", action="store_true", help="open napari with the results and the plugin's widgets")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except LFDeblurError as e:
        print(f"lfdeblur {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"lfdeblur {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
