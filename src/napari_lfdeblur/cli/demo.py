"""``lfdeblur demo``: the whole story on the shipped data (:func:`napari_lfdeblur.demo.run_demo`)."""

from __future__ import annotations


def add_commands(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the whole story on the shipped data: light fields, focal range, pairs, deblurring; figures in --out",
    )
    p.add_argument("--out", default="lfdeblur-demo", help="output folder (default: ./lfdeblur-demo)")
    p.add_argument("--gui", action="store_true", help="open napari with the results and the plugin's widgets")
    p.add_argument("--model", default=None,
                   help="checkpoint (.pt/.pth) to deblur with (default: the shipped model; skipped when absent)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from ..demo import run_demo

    run_demo(out=args.out, gui=args.gui, model=args.model)
    return 0
