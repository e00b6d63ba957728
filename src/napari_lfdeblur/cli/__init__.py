"""The ``lfdeblur`` command, thin over the public API (its modules: docs/architecture.md); here, :func:`main`: how a
command ends (its exit status)."""

from __future__ import annotations

import sys

from ..errors import LFDeblurError
from .messages import cli_words, os_error_line
from .parser import build_parser
from .training import read_photos

__all__ = ["build_parser", "main", "read_photos"]


def main(argv: list[str] | None = None) -> int:
    """Run ``lfdeblur`` with ``argv`` (default: ``sys.argv[1:]``) and return its exit status: 0 done, 1 no
    command given, 2 an error a user can cause (one line on stderr), 130 Ctrl-C, 143 SIGTERM."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    from .._sigterm import Terminated, sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():  # SIGTERM stops like Ctrl-C (docs/cli.md)
            return int(args.func(args) or 0)
    except LFDeblurError as e:
        print(f"lfdeblur {args.command}: error: {cli_words(args.command, str(e))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        terminated = isinstance(e, Terminated)
        print(f"lfdeblur {args.command}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
        return 143 if terminated else 130
    except OSError as e:  # a read-only or full disk, a file in the way: one line, not a traceback
        print(f"lfdeblur {args.command}: error: {os_error_line(e)}", file=sys.stderr)
        return 2
