"""The progress the ``lfdeblur`` commands and the Train dock show: a training run's steady-state rate and ETA, and
the plain lines written where no bar is drawn, on a fake clock."""

from __future__ import annotations

import io

import pytest

from napari_lfdeblur.cli.progress import LOG_INTERVAL_ENV, ProgressLog, StepClock, fmt_seconds, log_interval
from napari_lfdeblur.errors import LFDeblurError


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_eta_leaves_out_the_start_up_of_the_first_steps():
    # a 300-step run: the first step takes 60 s (network built, first batches, torch warming up), then 1 s each
    clock = FakeClock()
    eta = StepClock(0, 300, clock=clock)
    seen = []
    for step in range(1, 301):
        clock.now += 60.0 if step == 1 else 1.0
        eta.step(step)
        seen.append((eta.seconds_per_step, eta.eta))
    assert all(s is None and e is None for s, e in seen[:4])  # no guess while the run warms up
    assert eta.describe() == "1.00 steps/s, ETA 0:00"
    for step, (spp, left) in enumerate(seen[4:], start=5):
        assert spp == pytest.approx(1.0) and left == pytest.approx(300 - step)
    # extrapolated from the first step, the time left would have been an hour (299 x 60 s)


def test_the_eta_includes_the_pauses_of_the_run_and_resumes_from_its_step():
    clock = FakeClock()
    eta = StepClock(100, 200, clock=clock)  # a run resumed at step 100 warms up again
    for step in range(101, 121):
        clock.now += 5.0 if step == 101 else (2.0 if step % 10 == 0 else 0.5)  # a validation every 10 steps
        eta.step(step)
    # from the end of step 102 to the end of step 120: 18 steps, 2 of them with a validation
    assert eta.seconds_per_step == pytest.approx((16 * 0.5 + 2 * 2.0) / 18)
    assert eta.eta == pytest.approx(80 * (16 * 0.5 + 2 * 2.0) / 18)
    assert eta.describe() == f"{18 / 12:.2f} steps/s, ETA {fmt_seconds(80 * 12 / 18)}"


def test_a_slow_run_says_seconds_per_step_and_hours():
    clock = FakeClock()
    eta = StepClock(0, 5000, clock=clock)
    for step in range(1, 7):
        clock.now += 4.0
        eta.step(step)
    assert eta.describe() == "4.00 s/step, ETA 5:32:56"  # 4994 steps x 4 s


def test_progress_lines_come_at_the_first_call_then_once_an_interval():
    clock, out = FakeClock(), io.StringIO()
    log = ProgressLog(30.0, clock=clock, file=out)
    printed = []
    for t in range(0, 100, 5):
        clock.now = float(t)
        printed.append(log(f"t={t}"))
    assert out.getvalue().splitlines() == ["t=0", "t=30", "t=60", "t=90"]
    clock.now = 91.0
    assert log("last", force=True) and out.getvalue().splitlines()[-1] == "last"


@pytest.mark.parametrize("value, seconds", [("", 30.0), ("5", 5.0), (" 0.5 ", 0.5), ("0", 0.0)])
def test_the_log_interval_comes_from_the_environment(monkeypatch, value, seconds):
    monkeypatch.setenv(LOG_INTERVAL_ENV, value)
    assert log_interval() == seconds


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_a_log_interval_that_cannot_be_used_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv(LOG_INTERVAL_ENV, value)
    with pytest.raises(LFDeblurError, match=rf"\$LFDEBLUR_LOG_INTERVAL_S is '{value}': give the seconds"):
        log_interval()
