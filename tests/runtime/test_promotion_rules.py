"""What decides a promotion: full-precision metrics, NaN and infinities, exact-delta ties, and racing promoters.

Against a real `mlflow server`: one version per run whatever the interleaving of retries, and the alias on
the best contender by the metric as logged, every round.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import mlflow
import pytest

try:
    from pipegen.runtime.champion import meets_delta
except ImportError:
    meets_delta = None
from pipegen.runtime.evaluate import evaluate
from pipegen.runtime.promote import promote
from pipegen.thresholds import parse_threshold
from tests.runtime.test_mlflow_runtime import trained
from tests.support_mlflow import MlflowServer

pytestmark = pytest.mark.xdist_group("mlflow")

ROUNDS = 20
RACERS = 8


def champion(name: str, metric: str = "auc", mode: str = "max", min_delta: float = 0.0) -> dict[str, Any]:
    return {"metric": metric, "mode": mode, "min_delta": min_delta, "model": name, "alias": "champion"}


def alias_holder(server: MlflowServer, model: str) -> str | None:
    client = mlflow.MlflowClient(server.uri)
    try:
        return str(client.get_model_version_by_alias(model, "champion").version)
    except mlflow.exceptions.MlflowException:
        return None


def race(calls: list[Callable[[], dict[str, Any]]]) -> list[dict[str, Any]]:
    """Start every call at the same moment in its own thread; re-raise the first failure."""
    barrier = threading.Barrier(len(calls))
    results: list[dict[str, Any] | BaseException] = [RuntimeError("not run")] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test thread
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return results  # type: ignore[return-value]


# ---- thresholds and deltas (no server) -------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("text", ["loss != 0", "rmse < 1", "auc > 0.5", "auc >= 0", "auc <= 1", "auc == 1"])
def test_nan_and_infinities_meet_no_threshold(text: str, value: float) -> None:
    assert not parse_threshold(text).holds(value)


def test_a_gain_equal_to_min_delta_up_to_rounding_meets_it() -> None:
    assert 0.3 - 0.1 < 0.2  # 0.19999999999999998
    assert meets_delta(0.3 - 0.1, 0.2)
    assert meets_delta(0.25, 0.2) and not meets_delta(0.15, 0.2)
    # With no min_delta a tie is not better: the alias does not move between equal models.
    assert not meets_delta(0.0, 0.0) and not meets_delta(-1e-15, 0.0) and meets_delta(1e-15, 0.0)


# ---- against a real server -----------------------------------------------------------------------


def test_champion_is_compared_at_full_precision(mlflow_server: MlflowServer, name: str) -> None:
    """Rounded to 6 digits both read 0.123456: the challenger is worse and must not move the alias."""
    holder_run = trained(mlflow_server, name, {"auc": 0.12345649}, "a")
    promote(run_id=holder_run, model=name, champion=champion(name), tracking_uri=mlflow_server.uri)
    worse = trained(mlflow_server, name, {"auc": 0.12345641}, "b")
    result = evaluate(run_id=worse, thresholds=[], champion=champion(name), tracking_uri=mlflow_server.uri)
    assert not result["passed"], result["reasons"]
    promote(run_id=worse, model=name, champion=champion(name), tracking_uri=mlflow_server.uri)
    assert alias_holder(mlflow_server, name) == "1"
    version = mlflow.MlflowClient(mlflow_server.uri).get_model_version(name, "1")
    assert float(version.tags["pipegen.metric.auc"]) == 0.12345649  # the tag reads back exactly


def test_nan_never_wins_and_never_blocks(mlflow_server: MlflowServer, name: str) -> None:
    nan_run = trained(mlflow_server, name, {"auc": math.nan}, "nan")
    # A NaN challenger fails the comparison, and promoting it anyway does not hand it the alias.
    assert (
        not evaluate(run_id=nan_run, thresholds=[], champion=champion(name), tracking_uri=mlflow_server.uri)["passed"]
        or alias_holder(mlflow_server, name) is None
    )
    promote(run_id=nan_run, model=name, champion=champion(name), tracking_uri=mlflow_server.uri)
    assert alias_holder(mlflow_server, name) is None
    # Force a NaN champion (as another tool might): any real value beats it.
    mlflow.MlflowClient(mlflow_server.uri).set_registered_model_alias(name, "champion", "1")
    real = trained(mlflow_server, name, {"auc": 0.5}, "real")
    result = evaluate(run_id=real, thresholds=[], champion=champion(name), tracking_uri=mlflow_server.uri)
    assert result["passed"], result["reasons"]
    promote(run_id=real, model=name, champion=champion(name), tracking_uri=mlflow_server.uri)
    assert alias_holder(mlflow_server, name) == "2"


def test_concurrent_retries_of_one_promotion_make_one_version(mlflow_server: MlflowServer, name: str) -> None:
    client = mlflow.MlflowClient(mlflow_server.uri)
    for round_ in range(ROUNDS):
        model = f"{name}-r{round_}"
        run_id = trained(mlflow_server, model, {"auc": 0.9}, "once")
        results = race(
            [
                lambda run_id=run_id, model=model: promote(
                    run_id=run_id, model=model, champion=champion(model), tracking_uri=mlflow_server.uri
                )
                for _ in range(RACERS)
            ]
        )
        versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{model}'"))
        assert len(versions) == 1, f"round {round_}: versions {versions} for one run"
        assert {r["version"] for r in results} == {str(versions[0])}, f"round {round_}: {results}"
        assert alias_holder(mlflow_server, model) == str(versions[0])


def test_concurrent_promotions_settle_on_the_best(mlflow_server: MlflowServer, name: str) -> None:
    client = mlflow.MlflowClient(mlflow_server.uri)
    for round_ in range(ROUNDS):
        model = f"{name}-r{round_}"
        # Metrics that differ only past the 6th significant digit; the best is a different racer each round.
        best = round_ % RACERS
        runs = [
            trained(mlflow_server, model, {"auc": 0.9 + (1e-8 if i == best else -1e-9 * i)}, f"k{i}")
            for i in range(RACERS)
        ]
        race(
            [
                (
                    lambda r=r, model=model: promote(
                        run_id=r, model=model, champion=champion(model), tracking_uri=mlflow_server.uri
                    )
                )
                for r in runs
            ]
        )
        holder = client.get_model_version_by_alias(model, "champion")
        assert holder.run_id == runs[best], f"round {round_}: alias on {holder.version}"
        per_run = [v.run_id for v in client.search_model_versions(f"name = '{model}'")]
        assert sorted(per_run) == sorted(runs), f"round {round_}: one version per run"
