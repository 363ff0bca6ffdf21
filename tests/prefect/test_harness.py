"""The harness itself: a hand-written flow runs in Prefect's engine and its states are recorded by the API server."""

from __future__ import annotations

import pytest


def test_a_flow_retries_a_task_and_its_run_is_recorded(prefect_harness: None) -> None:
    from prefect import flow, get_client, task
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    calls: list[int] = []

    @task(retries=1, retry_delay_seconds=0)
    def flaky(n: int) -> int:
        calls.append(n)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        return n * 2

    @flow(name="harness-check")
    def check(n: int = 3) -> int:
        return flaky(n)

    state = check(return_state=True)
    assert state.is_completed(), state
    assert state.result() == 6
    assert calls == [3, 3]
    # The run went through the harness's API server, not only this process.
    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    assert run.state is not None and run.state.is_completed()


def test_a_failing_flow_is_failed(prefect_harness: None) -> None:
    from prefect import flow

    @flow(name="harness-fail")
    def fails() -> None:
        raise ValueError("no")

    state = fails(return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="no"):
        state.result()
