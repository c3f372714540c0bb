"""The time a running attempt has left, from what it measures: seconds per optimizer step
and seconds per evaluation (with its image grids and the checkpoint after it).

    left = (total - step) * step_s + evals_left * eval_s

``step_s`` is a moving average over the intervals between two logged steps with no
evaluation in between; ``eval_s`` the mean of the evaluations measured so far (their start
is placed where the measured step time puts the evaluation step). Until an evaluation has
been measured, ``eval_s`` is unknown and counted as 0 (``eval_measured`` says so). The
forecast is stored as ``finish_at`` (unix seconds), so the API's ETA keeps counting down
during an evaluation, when the worker logs nothing.
"""

from __future__ import annotations

import time
from typing import Any

SMOOTHING = 0.3  # weight of the newest interval in the step-time average


class EtaClock:
    def __init__(self, clock: Any = time.time):
        self.clock = clock
        self.total = 0
        self.step_s: float | None = None
        self.eval_times: list[float] = []
        self.plan: list[int] = []
        self.evaluated: set[int] = set()
        self._mark: tuple[int, float] | None = None  # (step, time) of the last observation

    def start(self, total_steps: int, start_step: int) -> None:
        self.total = total_steps
        self._mark = (start_step, self.clock())

    def planned(self, eval_steps: list[int]) -> None:
        self.plan = sorted(eval_steps)

    def stepped(self, step: int) -> None:
        """A training step was logged."""
        now = self.clock()
        if self._mark is not None and step > self._mark[0]:
            sample = (now - self._mark[1]) / (step - self._mark[0])
            self.step_s = sample if self.step_s is None else \
                (1 - SMOOTHING) * self.step_s + SMOOTHING * sample
        self._mark = (step, now)

    def evaluated_at(self, step: int) -> None:
        """The evaluation after ``step`` has ended."""
        now = self.clock()
        if self._mark is not None:
            began = self._mark[1] + (step - self._mark[0]) * (self.step_s or 0.0)
            self.eval_times.append(max(0.0, now - began))
        self.evaluated.add(step)
        self._mark = (step, now)

    def evals_left(self, step: int) -> int:
        return sum(1 for s in self.plan if s > step or (s == step and s not in self.evaluated))

    @property
    def eval_s(self) -> float | None:
        return sum(self.eval_times) / len(self.eval_times) if self.eval_times else None

    def snapshot(self, step: int) -> dict[str, Any] | None:
        """The stored forecast, or None before a step time has been measured."""
        if self.step_s is None:
            return None
        now = self.clock()
        since = now - self._mark[1] if self._mark else 0.0
        steps_left = max(0, self.total - step)
        left = steps_left * self.step_s + self.evals_left(step) * (self.eval_s or 0.0)
        # time already spent since the last observation counts towards what is left
        left = max(0.0, left - since)
        return {"step_s": self.step_s, "eval_s": self.eval_s,
                "eval_measured": self.eval_s is not None,
                "evals_left": self.evals_left(step), "finish_at": now + left,
                "measured_at": now}
