"""Progress of the ``lfdeblur`` commands on stderr: tqdm bars on terminals, plain lines every so often in a log;
a training run's steady-state rate and ETA (also shown by the Train dock)."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable

from ..errors import LFDeblurError

#: seconds between two progress lines where no bar is drawn; ``$LFDEBLUR_LOG_INTERVAL_S`` overrides it
LOG_INTERVAL_S = 30.0
LOG_INTERVAL_ENV = "LFDEBLUR_LOG_INTERVAL_S"


def terminal_bar(**options):
    """A tqdm bar on stderr, shown on terminals only; 80 x 24 where a terminal reports 0 x 0 (a container's or CI
    runner's pseudo-terminal, ``script``), on which tqdm would draw nothing at all."""
    from tqdm import tqdm

    options.setdefault("disable", None)
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        size = None
    if size is not None and (size.columns <= 0 or size.lines <= 0):
        options["ncols"], options["nrows"], options["dynamic_ncols"] = 80, 24, False
    return tqdm(**options)


def log_interval() -> float:
    """The seconds between plain progress lines: ``$LFDEBLUR_LOG_INTERVAL_S`` when set, else 30."""
    raw = os.environ.get(LOG_INTERVAL_ENV, "").strip()
    if not raw:
        return LOG_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise LFDeblurError(f"${LOG_INTERVAL_ENV} is {raw!r}: give the seconds between progress lines, a number "
                            f">= 0 (0: a line per step), or unset it for the default {LOG_INTERVAL_S:g}")
    return value


def fmt_seconds(s: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    s = int(max(s, 0))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class StepClock:
    """The steady-state speed of a training run and its time left, from the moments its steps end.

    The first steps carry the run's start-up (data loaders started, kernels warmed up), so the clock starts at the
    end of the ``warmup``-th step; validations and checkpoints count (they are part of the wait); there is no rate
    until ``min_steps`` steps were timed so.
    """

    def __init__(self, first_step: int, total: int, *, warmup: int = 2, min_steps: int = 3,
                 clock: Callable[[], float] = time.monotonic):
        self.total = int(total)
        self.warmup, self.min_steps = max(int(warmup), 0), max(int(min_steps), 1)
        self._clock = clock
        self._first = int(first_step)  # a resumed run starts at its step, and warms up again
        self._origin: tuple[int, float] | None = (self._first, clock()) if self.warmup == 0 else None
        self._last: tuple[int, float] | None = None

    def step(self, step: int) -> None:
        """Step ``step`` has just ended."""
        now = self._clock()
        if self._origin is None:
            if step - self._first >= self.warmup:
                self._origin = (step, now)
            return
        self._last = (step, now)

    @property
    def seconds_per_step(self) -> float | None:
        """Seconds per step in the steady state; None while the run warms up."""
        if self._origin is None or self._last is None or self._last[0] - self._origin[0] < self.min_steps:
            return None
        return (self._last[1] - self._origin[1]) / (self._last[0] - self._origin[0])

    @property
    def eta(self) -> float | None:
        """Seconds left after the last step timed; None while the run warms up."""
        spp, last = self.seconds_per_step, self._last
        return None if spp is None or last is None else spp * max(self.total - last[0], 0)

    def describe(self) -> str:
        """``'2.31 steps/s, ETA 4:12'``, or ``'ETA …'`` while the run warms up."""
        spp, eta = self.seconds_per_step, self.eta
        if spp is None or eta is None:
            return "ETA …"
        rate = f"{1 / spp:.2f} steps/s" if spp > 0 and 1 / spp >= 1 else f"{spp:.2f} s/step"
        return f"{rate}, ETA {fmt_seconds(eta)}"


class ProgressLog:
    """Plain progress lines on stderr where no bar is drawn (stderr is a file or a pipe): the first call, then
    at most one every ``interval`` seconds, so that a log shows a long command alive without a line per step."""

    def __init__(self, interval: float | None = None, *, clock: Callable[[], float] = time.monotonic, file=None):
        self.interval = log_interval() if interval is None else float(interval)
        self._clock = clock
        self._file = file
        self._next: float | None = None

    def __call__(self, line: str, *, force: bool = False) -> bool:
        """Print ``line`` if it is due (or ``force``); returns whether it was printed."""
        now = self._clock()
        if not force and self._next is not None and now < self._next:
            return False
        self._next = now + self.interval
        print(line, file=self._file or sys.stderr, flush=True)
        return True
