"""Errors in the command line's own words: the API's messages name Python arguments (``pattern=...``); on the
command line the user typed flags (``--pattern ...``)."""

from __future__ import annotations

import errno
import re

_FLAGS = {"resume": "--resume", "pattern": "--pattern", "axes": "--axes", "key": "--key", "views": "--views",
          "centers": "--centers", "limit": "--limit", "focus": "--focus", "apertures": "--apertures",
          "threads": "--threads", "patch": "--patch", "steps": "--steps", "batch": "--batch", "amp": "--amp",
          "model": "--model", "out": "-o", "tile": "--tile", "overlap": "--overlap", "normalize": "--normalize",
          "num_workers": "--workers", "crop": "--crop", "val": "--val", "csv": "--csv", "loss": "--loss",
          "format": "--format"}
_COMMAND_FLAGS = {("pairs", "format"): "--image-format"}
_ARG_RE = re.compile(r"(?<![\w./\\-])([a-z_]+)=('[^']*'|\"[^\"]*\"|\([^)]*\)|[^\s,;:)]*)")


def cli_words(command: str, message: str) -> str:
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


def os_error_line(e: OSError) -> str:
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
