"""The ETA from measured step and evaluation times (worker/eta.py) on a fake clock: a run of
100 steps at 0.1 s each with an 5 s evaluation after steps 50 and 100."""

from __future__ import annotations

import pytest

from worker.eta import EtaClock


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _left(eta: EtaClock, clock: FakeClock, step: int) -> float:
    return eta.snapshot(step)["finish_at"] - clock.t


def test_eta_counts_steps_and_evaluations_and_counts_down_during_one() -> None:
    clock = FakeClock()
    eta = EtaClock(clock)
    eta.start(100, 0)
    eta.planned([50, 100])
    assert eta.snapshot(0) is None  # nothing measured yet
    for step in range(10, 51, 10):
        clock.t += 1.0
        eta.stepped(step)
    snap = eta.snapshot(50)
    assert snap["step_s"] == pytest.approx(0.1) and snap["eval_measured"] is False
    assert _left(eta, clock, 50) == pytest.approx(5.0)  # steps only: no evaluation timed
    clock.t += 5.0  # the evaluation after step 50
    eta.evaluated_at(50)
    # 50 steps and one more 5 s evaluation
    assert _left(eta, clock, 50) == pytest.approx(10.0)
    for step in range(60, 101, 10):
        clock.t += 1.0
        eta.stepped(step)
    assert eta.step_s == pytest.approx(0.1)  # the evaluation is not mistaken for steps
    assert _left(eta, clock, 100) == pytest.approx(5.0)  # the final evaluation is left
    finish_at = eta.snapshot(100)["finish_at"]
    clock.t += 3.0  # during the final evaluation the forecast stands: 2 s left, not 0
    assert finish_at - clock.t == pytest.approx(2.0)
    assert _left(eta, clock, 100) == pytest.approx(2.0)
    clock.t += 2.0
    eta.evaluated_at(100)
    assert _left(eta, clock, 100) == pytest.approx(0.0)


def test_a_resumed_attempt_plans_only_the_evaluations_after_it() -> None:
    clock = FakeClock()
    eta = EtaClock(clock)
    eta.start(100, 60)
    eta.planned([100])
    clock.t += 2.0
    eta.stepped(80)
    assert eta.evals_left(80) == 1 and _left(eta, clock, 80) == pytest.approx(2.0)
