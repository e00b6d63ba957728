"""Progress bars of the ``lfdeblur`` commands: tqdm on stderr, on terminals only."""

from __future__ import annotations

import os
import sys


def terminal_bar(**options):
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
