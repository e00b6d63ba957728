"""The ``lfdeblur`` argument parser.  Building it loads no torch; ``docs/cli.md`` is rendered from it."""

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
