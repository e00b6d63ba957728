"""The ``lfdeblur`` argument parser: the top level, and the sub-commands of each group in the order of the flow
(light fields, deblurring, training, the demo).  Building it loads no torch; the documentation's command-line
reference is rendered from it (``docs/cli.md``)."""

from __future__ import annotations

import argparse

from . import deblurring, demo, lightfields, training


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="lfdeblur",
        description="Light-field generated defocus deblurring: read light fields, make pairs, train, deblur.",
    )
    parser.add_argument("--version", action="version", version=f"napari-lfdeblur {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (lightfields, deblurring, training, demo):
        group.add_commands(sub)
    return parser
