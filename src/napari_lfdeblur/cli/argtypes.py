"""The argparse types of the ``lfdeblur`` options: a wrong value is refused before any work starts."""

from __future__ import annotations

import argparse
import re


def _int_at_least(minimum: int, wording: str):

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text} must be {wording}")
        return value

    return parse


positive_int = _int_at_least(1, "a whole number of at least 1")
non_negative_int = _int_at_least(0, "0 or more")


def apertures_type(text: str) -> tuple[float, ...]:
    """``0.33,0.66,1`` -> (0.33, 0.66, 1.0): aperture sizes in (0, 1]."""
    try:
        values = tuple(float(a) for a in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give aperture sizes in (0, 1] separated by commas, e.g. 0.33,0.66,1") from None
    bad = [a for a in values if not 0 < a <= 1]
    if bad:
        raise argparse.ArgumentTypeError(f"{text!r}: aperture sizes must lie in (0, 1], not {bad[0]:g}")
    return values


def views_type(text: str) -> tuple[int, int]:
    """``14x14`` (or ``14``) -> (V, U): views per macro-pixel."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[xX*,]\s*(\d+)\s*)?", text)
    if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
        raise argparse.ArgumentTypeError(f"{text!r}: give views per macro-pixel as VxU (e.g. 14x14) or one number")
    v = int(m.group(1))
    return (v, int(m.group(2)) if m.group(2) is not None else v)
