"""Many specs on the engines at once: each engine runs the specs one after another in a lane of its own.

run_spec runs one spec's engines side by side and waits for the slowest before the next spec starts: kfp.local
runs a pipeline's tasks one at a time, each a process importing kfp and mlflow, so on most specs it ran alone
for minutes with the other core idle. In lanes, an engine that is done with a spec starts the next while
the slower ones finish, so the cores stay busy until the last lane ends. An engine still runs one spec at a
time (the webhook receiver and the Batch job records are per engine), and each spec's state is read from the
engine the moment its run ends, so what is compared is exactly run_spec's.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.differential.expected import Expected
from tests.differential.harness import (
    ENGINES,
    ONE_TASK_AT_A_TIME,
    EngineRun,
    Plan,
    SpecRun,
    conclude,
    plan_spec,
    run_engine,
)
from tests.differential.services import Services

# The longest lanes are those of the engines that run a pipeline's tasks one at a time (kfp.local, dag.test():
# harness.ONE_TASK_AT_A_TIME), each task a process importing mlflow; the other engine modules and everything they
# start run at a lower priority and fill the cores around them. (With only kfp.local first, one measured run
# on a loaded machine finished 4 scenarios on KFP and 1 on Airflow in the same 18 minutes.)
BACKGROUND_NICENESS = 5


@dataclass(frozen=True)
class Scenario:
    """One spec to run: its engines, run-time parameters, scheduled instant and expected differences."""

    name: str
    spec: str
    engines: list[str]
    params: dict[str, str] = field(default_factory=dict)
    scheduled_time: str | None = None
    expect: tuple[Expected, ...] = ()


class Lanes:
    """Scenarios planned in order by one thread, run by one lane per engine; result(name) waits for one."""

    def __init__(self, services: Services, scenarios: Sequence[Scenario], workdir: Path) -> None:
        self.services = services
        self.workdir = workdir
        self.scenarios = {s.name: s for s in scenarios}
        self.planner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan")
        self.lanes = {e: ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"lane-{e}") for e in ENGINES}
        self.plans: dict[str, Future[Plan]] = {}
        self.runs: dict[str, dict[str, Future[EngineRun | None]]] = {}

    def start(self) -> None:
        """Queue every scenario: its plan (compilation, AWS resources) first, then one run per engine lane."""
        for name, scenario in self.scenarios.items():
            self.plans[name] = self.planner.submit(
                plan_spec,
                scenario.spec,
                self.services,
                scenario.engines,
                scenario.params,
                scenario.scheduled_time,
                self.workdir / name,
                None,
                scenario.expect,
            )
            self.runs[name] = {e: self.lanes[e].submit(self._run, name, e) for e in scenario.engines}

    def _run(self, name: str, engine: str) -> EngineRun | None:
        plan = self.plans[name].result()
        if engine not in plan.requests:
            return None  # the plan says why (SpecRun.skipped)
        niceness = 0 if engine in ONE_TASK_AT_A_TIME else BACKGROUND_NICENESS
        return run_engine(plan, engine, self.services, niceness=niceness)

    def result(self, name: str) -> SpecRun:
        """Wait for every engine's run of one scenario and compare them (an engine module's failure is raised)."""
        plan = self.plans[name].result()
        runs = {e: f.result() for e, f in self.runs[name].items()}
        return conclude(plan, {e: r for e, r in runs.items() if r is not None})

    def stop(self) -> None:
        """Drop what has not started; wait for what runs (an engine module ends at its own deadline)."""
        self.planner.shutdown(wait=True, cancel_futures=True)
        for lane in self.lanes.values():
            lane.shutdown(wait=True, cancel_futures=True)
