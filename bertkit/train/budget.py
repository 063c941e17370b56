"""Training to a wall-clock budget: the step count is re-planned from the measured step time.

A schedule that decays to 0 over a fixed step count fits one machine: on a faster CPU the run
ends early with budget left, on a slower one the time limit cuts it before the lr has decayed.
With a budget (Cramming's idea), the loop keeps the warmup as given and, after every step once a
few have been timed, moves the schedule's last step to where the remaining time says it will
be: steps so far + remaining seconds / seconds per step. The rate is the average over this
process's steps after the first few (which include one-off start-up costs), evaluations and
checkpoints included, so periodic evaluations are paid for; the last evaluation's duration is
held back for the final one. The run therefore ends at the budget with the lr at 0 on any CPU.

Processes of a multi-process run agree on rank 0's plan.
"""

from __future__ import annotations

import time

from bertkit.train.distributed import DistEnv
from bertkit.train.optim import replan_schedule

WARM_STEPS = 3  # not timed: first-call allocation and kernel selection
MIN_TIMED_STEPS = 5  # then plan from this many timed steps on


class BudgetPlanner:
    """Re-plan the step count so that the schedule completes when `seconds` have elapsed."""

    def __init__(self, seconds: float, max_steps: int, env: DistEnv):
        self.seconds = float(seconds)
        self.max_steps = int(max_steps)
        self.env = env
        self.reserve = 0.0  # held back for the final evaluation
        self._mark: tuple[int, float] | None = None
        self._steps_seen = 0

    def eval_took(self, seconds: float) -> None:
        self.reserve = seconds

    def plan(self, step: int, elapsed: float, scheduler: object) -> int | None:
        """After an optimizer step: the new total step count, or None before enough steps are timed.

        `elapsed` is the run's wall time so far (earlier processes of a resumed run included).
        """
        self._steps_seen += 1
        now = time.perf_counter()
        if self._steps_seen == WARM_STEPS:
            self._mark = (step, now)
        if self._mark is None or step - self._mark[0] < MIN_TIMED_STEPS:
            return None
        per_step = (now - self._mark[1]) / (step - self._mark[0])
        remaining = self.seconds - elapsed - self.reserve
        total = step + max(0, int(remaining / per_step)) if per_step > 0 else self.max_steps
        total = min(max(total, step), self.max_steps)
        if self.env.distributed:  # rank 0's plan for everyone
            total = int(self.env.all_reduce([float(total) if self.env.is_main else 0.0])[0])
        replan_schedule(scheduler, total)
        return total
