"""Data gates against real backends: files in tmp_path, moto's S3 server, sqlite through SQLAlchemy."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pipegen.runtime.gates import _s3_client, check_gate, run_gate
from tests.cases import REPO
from tests.runtime.conftest import isolate_aws

HOUR = 3600.0


# ---- fixtures ---------------------------------------------------------------------------------


@dataclass
class Bucket:
    """A fresh bucket on the moto server and a client to fill it."""

    client: Any
    name: str

    def put(self, key: str, body: bytes = b"x") -> None:
        self.client.put_object(Bucket=self.name, Key=key, Body=body)

    def url(self, key: str = "") -> str:
        return f"s3://{self.name}/{key}"


@pytest.fixture
def bucket(aws: str) -> Bucket:
    import boto3

    client = boto3.client("s3")
    # One bucket per test: the server lives for the session, tests must not see each other's keys.
    name = f"pipegen-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    return Bucket(client, name)


@dataclass
class FakeTime:
    """A clock that moves only when the gate sleeps, so waiting tests take no real time."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)
    on_sleep: Any = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def make_db(path: Path, tables: dict[str, int]) -> str:
    """A sqlite database with the given tables and row counts; returns its SQLAlchemy URL."""
    url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    for name, rows in tables.items():
        schema, _, table = name.rpartition(".")
        t = sa.Table(table, metadata, sa.Column("id", sa.Integer), sa.Column("label", sa.String), schema=schema or None)
        metadata.create_all(engine, tables=[t])
        if rows:
            with engine.begin() as conn:
                conn.execute(t.insert(), [{"id": i, "label": f"row {i}%"} for i in range(rows)])
    engine.dispose()
    return url


def age(path: Path, seconds: float) -> None:
    """Make a file look `seconds` old."""
    then = time.time() - seconds
    os.utime(path, (then, then))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- partition_exists: local ------------------------------------------------------------------


def test_local_prefix_with_a_file_passes(tmp_path: Path) -> None:
    (tmp_path / "dt=1").mkdir()
    (tmp_path / "dt=1" / "part-0.parquet").write_bytes(b"x")
    result = check_gate({"check": "partition_exists", "path": f"{tmp_path}/dt=1/"})
    assert result == {"passed": True, "reason": f"{tmp_path}/dt=1/ is not empty"}


def test_local_prefix_counts_hidden_markers(tmp_path: Path) -> None:
    (tmp_path / "dt=1").mkdir()
    (tmp_path / "dt=1" / "_SUCCESS").touch()
    assert check_gate({"check": "partition_exists", "path": f"{tmp_path}/dt=1/"})["passed"]


def test_local_empty_directory_fails(tmp_path: Path) -> None:
    (tmp_path / "dt=1").mkdir()
    result = check_gate({"check": "partition_exists", "path": f"{tmp_path}/dt=1/"})
    assert result == {"passed": False, "reason": f"{tmp_path}/dt=1/ is empty or missing"}


def test_local_missing_directory_fails(tmp_path: Path) -> None:
    result = check_gate({"check": "partition_exists", "path": f"{tmp_path}/nope/"})
    assert result == {"passed": False, "reason": f"{tmp_path}/nope/ is empty or missing"}


def test_local_file_present_and_missing(tmp_path: Path) -> None:
    (tmp_path / "_SUCCESS").touch()
    assert check_gate({"check": "partition_exists", "path": str(tmp_path / "_SUCCESS")}) == {
        "passed": True,
        "reason": f"{tmp_path}/_SUCCESS exists",
    }
    assert check_gate({"check": "partition_exists", "path": str(tmp_path / "_FAILURE")}) == {
        "passed": False,
        "reason": f"{tmp_path}/_FAILURE does not exist",
    }


def test_local_path_without_slash_may_be_a_directory(tmp_path: Path) -> None:
    (tmp_path / "dt=1").mkdir()
    assert check_gate({"check": "partition_exists", "path": str(tmp_path / "dt=1")})["passed"]


def test_file_urls(tmp_path: Path) -> None:
    (tmp_path / "dt=2026-01-01").mkdir()
    (tmp_path / "dt=2026-01-01" / "a b.csv").write_text("x")
    prefix = (tmp_path / "dt=2026-01-01").as_uri() + "/"
    assert check_gate({"check": "partition_exists", "path": prefix})["passed"]
    # as_uri() percent-encodes the space; the gate decodes it back.
    assert check_gate({"check": "partition_exists", "path": (tmp_path / "dt=2026-01-01" / "a b.csv").as_uri()})[
        "passed"
    ]
    assert check_gate({"check": "partition_exists", "path": f"file://localhost{tmp_path}/dt=2026-01-01/"})["passed"]
    missing = check_gate({"check": "partition_exists", "path": f"file://{tmp_path}/dt=2026-01-02/"})
    assert missing == {"passed": False, "reason": f"file://{tmp_path}/dt=2026-01-02/ is empty or missing"}


def test_relative_plain_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("data/dt=1").mkdir(parents=True)
    assert not check_gate({"check": "partition_exists", "path": "data/dt=1/"})["passed"]
    Path("data/dt=1/part-0").touch()
    assert check_gate({"check": "partition_exists", "path": "data/dt=1/"}) == {
        "passed": True,
        "reason": "data/dt=1/ is not empty",
    }


def test_trailing_slash_on_a_file_is_not_a_partition(tmp_path: Path) -> None:
    (tmp_path / "f").touch()
    assert not check_gate({"check": "partition_exists", "path": f"{tmp_path}/f/"})["passed"]


def test_bad_paths_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unsupported path scheme 'gs://'"):
        check_gate({"check": "partition_exists", "path": "gs://bucket/x/"})
    with pytest.raises(ValueError, match="must be absolute"):
        check_gate({"check": "partition_exists", "path": "file://otherhost/x/"})
    with pytest.raises(ValueError, match="no bucket"):
        check_gate({"check": "partition_exists", "path": "s3:///x/"})
    with pytest.raises(ValueError, match="'path' as a non-empty string"):
        check_gate({"check": "partition_exists"})


# ---- partition_exists: S3 ---------------------------------------------------------------------


def test_s3_prefix_present(bucket: Bucket) -> None:
    bucket.put("logs/dt=2026-01-01/part-0.json")
    result = check_gate({"check": "partition_exists", "path": bucket.url("logs/dt=2026-01-01/")})
    assert result == {"passed": True, "reason": f"{bucket.url('logs/dt=2026-01-01/')} is not empty"}


def test_s3_prefix_empty(bucket: Bucket) -> None:
    bucket.put("logs/dt=2026-01-02/part-0.json")  # a neighbour partition must not count
    result = check_gate({"check": "partition_exists", "path": bucket.url("logs/dt=2026-01-01/")})
    assert result == {"passed": False, "reason": f"{bucket.url('logs/dt=2026-01-01/')} is empty or missing"}


def test_s3_folder_marker_alone_is_empty(bucket: Bucket) -> None:
    bucket.put("logs/dt=2026-01-01/", b"")
    gate = {"check": "partition_exists", "path": bucket.url("logs/dt=2026-01-01/")}
    assert not check_gate(gate)["passed"]
    bucket.put("logs/dt=2026-01-01/_SUCCESS", b"")
    assert check_gate(gate)["passed"]


def test_s3_missing_bucket_is_missing_data(aws: str) -> None:
    result = check_gate({"check": "partition_exists", "path": "s3://pipegen-no-such-bucket/logs/"})
    assert result == {"passed": False, "reason": "s3://pipegen-no-such-bucket/logs/ is empty or missing"}


def test_s3_whole_bucket(bucket: Bucket) -> None:
    assert not check_gate({"check": "partition_exists", "path": f"s3://{bucket.name}"})["passed"]
    bucket.put("anything")
    assert check_gate({"check": "partition_exists", "path": f"s3://{bucket.name}"})["passed"]
    assert check_gate({"check": "partition_exists", "path": f"s3://{bucket.name}/"})["passed"]


def test_s3_object_present_and_missing(bucket: Bucket) -> None:
    bucket.put("logs/dt=2026-01-01/_SUCCESS")
    assert check_gate({"check": "partition_exists", "path": bucket.url("logs/dt=2026-01-01/_SUCCESS")}) == {
        "passed": True,
        "reason": f"{bucket.url('logs/dt=2026-01-01/_SUCCESS')} exists",
    }
    # Without the trailing slash the path names one object, and a prefix is not an object.
    assert check_gate({"check": "partition_exists", "path": bucket.url("logs/dt=2026-01-01")}) == {
        "passed": False,
        "reason": f"{bucket.url('logs/dt=2026-01-01')} does not exist",
    }


def test_s3_unreachable_endpoint_raises(bucket: Bucket, monkeypatch: pytest.MonkeyPatch) -> None:
    """A network error is not missing data: it raises instead of failing the gate quietly."""
    from botocore.exceptions import EndpointConnectionError

    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(EndpointConnectionError):
        check_gate({"check": "partition_exists", "path": bucket.url("logs/")})
    with pytest.raises(EndpointConnectionError):
        check_gate({"check": "partition_exists", "path": bucket.url("logs/_SUCCESS")})


def test_s3_client_region(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, moto_endpoint: str) -> None:
    isolate_aws(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    client = _s3_client()
    assert client.meta.region_name == "us-east-1"
    assert client.meta.endpoint_url == moto_endpoint
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    assert _s3_client().meta.region_name == "eu-west-1"
    # AWS_REGION (set by the Lambda runtime) wins, as in the AWS CLI.
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert _s3_client().meta.region_name == "eu-central-1"


# ---- freshness --------------------------------------------------------------------------------


def test_local_freshness_fresh_and_stale_file(tmp_path: Path) -> None:
    target = tmp_path / "model.csv"
    target.write_text("x")
    fresh = check_gate({"check": "freshness", "path": str(target), "max_age_seconds": HOUR})
    assert fresh["passed"]
    assert fresh["reason"].startswith(f"{target} was modified ")
    assert fresh["reason"].endswith("within the maximum age 1h")
    age(target, 2 * HOUR + 5)
    stale = check_gate({"check": "freshness", "path": str(target), "max_age_seconds": HOUR})
    assert not stale["passed"]
    assert stale["reason"].startswith(f"{target} was modified 2h")
    assert stale["reason"].endswith("older than the maximum age 1h")


def test_local_freshness_looks_at_the_newest_file_recursively(tmp_path: Path) -> None:
    root = tmp_path / "table"
    (root / "dt=1" / "deep").mkdir(parents=True)
    old, newer = root / "dt=1" / "old.parquet", root / "dt=1" / "deep" / "new.parquet"
    old.touch()
    newer.touch()
    age(old, 10 * HOUR)
    age(newer, 3 * HOUR)
    gate: dict[str, Any] = {"check": "freshness", "path": f"{root}/", "max_age_seconds": 4 * HOUR}
    result = check_gate(gate)
    assert result["passed"]
    assert result["reason"].startswith(f"newest file under {root}/ was modified 3h")
    age(newer, 5 * HOUR)
    assert not check_gate(gate)["passed"]
    # The directory without a trailing slash still means its contents, through file:// too.
    assert not check_gate({**gate, "path": root.as_uri()})["passed"]
    assert check_gate({**gate, "path": root.as_uri(), "max_age_seconds": 6 * HOUR})["passed"]


def test_local_freshness_missing(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)  # directories alone are not data
    assert check_gate({"check": "freshness", "path": f"{tmp_path}/empty/", "max_age_seconds": HOUR}) == {
        "passed": False,
        "reason": f"{tmp_path}/empty/ is empty or missing",
    }
    assert check_gate({"check": "freshness", "path": f"{tmp_path}/none.csv", "max_age_seconds": HOUR}) == {
        "passed": False,
        "reason": f"{tmp_path}/none.csv does not exist",
    }


def test_s3_freshness_fresh_stale_and_missing(bucket: Bucket) -> None:
    bucket.put("features/dt=1/part-0")
    bucket.put("features/dt=1/sub/part-1")
    prefix = {"check": "freshness", "path": bucket.url("features/dt=1/"), "max_age_seconds": HOUR}
    obj = {"check": "freshness", "path": bucket.url("features/dt=1/part-0"), "max_age_seconds": HOUR}
    fresh = check_gate(prefix)
    assert fresh["passed"], fresh
    assert fresh["reason"].startswith(f"newest object under {bucket.url('features/dt=1/')} was modified ")
    assert check_gate(obj)["passed"]
    # S3 cannot backdate an object, so let one age for real: moto's LastModified has whole-second
    # precision (truncated), so after 1.1 s the age is over 1 s whatever the sub-second phase.
    time.sleep(1.1)
    stale = check_gate({**prefix, "max_age_seconds": 1})
    assert not stale["passed"], stale
    assert stale["reason"].endswith("older than the maximum age 1s")
    assert not check_gate({**obj, "max_age_seconds": 1})["passed"]
    assert check_gate({**prefix, "path": bucket.url("features/dt=2/")}) == {
        "passed": False,
        "reason": f"{bucket.url('features/dt=2/')} is empty or missing",
    }
    assert check_gate({**obj, "path": bucket.url("features/dt=1/part-9")}) == {
        "passed": False,
        "reason": f"{bucket.url('features/dt=1/part-9')} does not exist",
    }
    assert not check_gate({**prefix, "path": "s3://pipegen-no-such-bucket/x/"})["passed"]


# ---- row_count and sql ------------------------------------------------------------------------


def test_row_count_table_pass_and_fail(tmp_path: Path) -> None:
    url = make_db(tmp_path / "w.db", {"events": 12})
    gate: dict[str, Any] = {"check": "row_count", "connection": url, "table": "events", "min_rows": 10}
    assert check_gate(gate) == {"passed": True, "reason": f"table events on {url} has 12 rows (minimum 10)"}
    assert check_gate({**gate, "min_rows": 13}) == {
        "passed": False,
        "reason": f"table events on {url} has 12 rows, fewer than the minimum 13",
    }


def test_row_count_default_minimum_is_one_row(tmp_path: Path) -> None:
    url = make_db(tmp_path / "w.db", {"empty": 0, "one": 1})
    assert not check_gate({"check": "row_count", "connection": url, "table": "empty"})["passed"]
    assert check_gate({"check": "row_count", "connection": url, "table": "one"})["reason"].endswith(
        "has 1 row (minimum 1)"
    )


@pytest.mark.parametrize("name", ["order", "my table", 'we"ird', "Mixed Case", "main.select", "main.my table"])
def test_row_count_quotes_table_names(tmp_path: Path, name: str) -> None:
    url = make_db(tmp_path / "w.db", {name: 3})
    result = check_gate({"check": "row_count", "connection": url, "table": name, "min_rows": 3})
    assert result == {"passed": True, "reason": f"table {name} on {url} has 3 rows (minimum 3)"}


def test_row_count_missing_table_raises(tmp_path: Path) -> None:
    url = make_db(tmp_path / "w.db", {"events": 1})
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        check_gate({"check": "row_count", "connection": url, "table": "evnets"})


def test_row_count_query_pass_and_fail(tmp_path: Path) -> None:
    url = make_db(tmp_path / "w.db", {"events": 12})
    gate: dict[str, Any] = {
        "check": "row_count",
        "connection": url,
        # Literals that text() would mistake for bind parameters, and a trailing semicolon.
        "query": "SELECT id FROM events WHERE id >= 2 AND label LIKE '%' AND label != ':name';",
        "min_rows": 10,
    }
    assert check_gate(gate) == {"passed": True, "reason": f"query on {url} has 10 rows (minimum 10)"}
    assert check_gate({**gate, "min_rows": 11}) == {
        "passed": False,
        "reason": f"query on {url} has 10 rows, fewer than the minimum 11",
    }


@pytest.mark.parametrize(
    ("query", "passed", "shown"),
    [
        ("SELECT 1", True, "returned 1"),
        ("SELECT COUNT(*) > 5 FROM events", True, "returned 1"),
        ("SELECT 'ready'", True, "returned text (5 characters)"),
        ("SELECT ''", False, "returned empty text (0 characters), which is not true"),
        ("SELECT 2.5", True, "returned 2.5"),
        ("SELECT 0", False, "returned 0, which is not true"),
        ("SELECT NULL", False, "returned None, which is not true"),
        ("SELECT COUNT(*) > 50 FROM events", False, "returned 0, which is not true"),
        ("SELECT id FROM events WHERE id < 0", False, "returned no rows"),
    ],
)
def test_sql_gate(tmp_path: Path, query: str, passed: bool, shown: str) -> None:
    url = make_db(tmp_path / "w.db", {"events": 12})
    assert check_gate({"check": "sql", "connection": url, "query": query}) == {
        "passed": passed,
        "reason": f"query on {url} {shown}",
    }


def test_gates_never_write(tmp_path: Path) -> None:
    url = make_db(tmp_path / "w.db", {"events": 1})
    check_gate({"check": "sql", "connection": url, "query": "INSERT INTO events (id) VALUES (99) RETURNING 1"})
    assert check_gate({"check": "row_count", "connection": url, "table": "events", "min_rows": 2})["passed"] is False


def test_row_count_needs_exactly_one_of_table_and_query(tmp_path: Path) -> None:
    url = make_db(tmp_path / "w.db", {"events": 1})
    with pytest.raises(ValueError, match="exactly one of 'table' and 'query'"):
        check_gate({"check": "row_count", "connection": url, "table": "events", "query": "SELECT 1"})
    with pytest.raises(ValueError, match="exactly one of 'table' and 'query'"):
        check_gate({"check": "row_count", "connection": url})
    with pytest.raises(ValueError, match="'min_rows' must be an integer >= 0"):
        check_gate({"check": "row_count", "connection": url, "table": "events", "min_rows": True})


# ---- run_gate: once and waiting ---------------------------------------------------------------


def test_run_gate_without_wait_checks_once(tmp_path: Path) -> None:
    fake = FakeTime()
    result = run_gate({"check": "partition_exists", "path": f"{tmp_path}/"}, sleep=fake.sleep, clock=fake.clock)
    assert result == {"passed": False, "reason": f"{tmp_path}/ is empty or missing", "attempts": 1}
    assert fake.sleeps == []
    assert json.loads(json.dumps(result)) == result


def test_run_gate_without_wait_lets_errors_raise(tmp_path: Path) -> None:
    gate = {"check": "sql", "connection": f"sqlite:///{tmp_path}/no-dir/w.db", "query": "SELECT 1"}
    with pytest.raises(sa.exc.OperationalError, match="unable to open database file"):
        run_gate(gate)


def test_wait_passes_on_the_third_check(tmp_path: Path) -> None:
    partition = tmp_path / "dt=1"
    partition.mkdir()

    def arrive(sleeps: int) -> None:
        if sleeps == 2:
            (partition / "part-0").touch()

    fake = FakeTime(on_sleep=arrive)
    gate = {
        "check": "partition_exists",
        "path": f"{partition}/",
        "wait": {"timeout_seconds": 6 * HOUR, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert result == {"passed": True, "reason": f"{partition}/ is not empty", "attempts": 3}
    assert fake.sleeps == [600, 600]


def test_wait_times_out(bucket: Bucket) -> None:
    fake = FakeTime()
    path = bucket.url("dt=2026-01-01/")
    gate = {"check": "partition_exists", "path": path, "wait": {"timeout_seconds": 6 * HOUR, "interval_seconds": 600}}
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    # Checks at 0, 10m, ..., 6h: another sleep would pass the timeout.
    assert result == {
        "passed": False,
        "reason": f"{path} is empty or missing after waiting 6h (37 checks)",
        "attempts": 37,
    }
    assert fake.sleeps == [600] * 36


def test_a_retried_wait_resumes_from_its_anchor(tmp_path: Path) -> None:
    """A retry (a new pod) given the first attempt's start waits only what is left of the timeout."""
    fake = FakeTime(now=100 * HOUR)
    gate = {
        "check": "partition_exists",
        "path": f"{tmp_path}/x/",
        "wait": {"timeout_seconds": 6 * HOUR, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock, wall=fake.clock, started_at=fake.now - 3 * HOUR)
    # Checks at 3h, 3h10m, ..., 6h after the anchor: 19, not the 37 of a fresh 6 h wait.
    assert result["attempts"] == 19
    assert fake.sleeps == [600] * 18
    assert result["reason"].endswith("after waiting 6h (19 checks)")


def test_a_retry_after_the_deadline_fails_at_once(tmp_path: Path) -> None:
    fake = FakeTime(now=1_780_000_000.0)
    gate = {
        "check": "partition_exists",
        "path": f"{tmp_path}/x/",
        "wait": {"timeout_seconds": 6 * HOUR, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock, wall=fake.clock, started_at=fake.now - 6 * HOUR - 301)
    assert fake.sleeps == []
    assert result == {
        "passed": False,
        "reason": f"deadline passed: the wait for {tmp_path}/x/ started at 2026-05-28 14:21:39 UTC and its timeout "
        "of 6h ended at 2026-05-28 20:21:39 UTC; a retry does not start the wait over",
        "attempts": 0,
    }


def test_wait_stops_before_sleeping_past_the_timeout(tmp_path: Path) -> None:
    fake = FakeTime()
    gate = {
        "check": "partition_exists",
        "path": f"{tmp_path}/x/",
        "wait": {"timeout_seconds": 1500, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert result["attempts"] == 3
    assert result["reason"] == f"{tmp_path}/x/ is empty or missing after waiting 20m (3 checks)"


def test_wait_with_zero_timeout_checks_once(tmp_path: Path) -> None:
    fake = FakeTime()
    gate = {"check": "partition_exists", "path": f"{tmp_path}/x/", "wait": {"timeout_seconds": 0}}
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert result == {
        "passed": False,
        "reason": f"{tmp_path}/x/ is empty or missing after waiting 0s (1 check)",
        "attempts": 1,
    }


def test_waiting_gate_keeps_polling_an_unreachable_database(tmp_path: Path) -> None:
    fake = FakeTime()
    url = f"sqlite:///{tmp_path}/no-dir/w.db"
    gate = {
        "check": "row_count",
        "connection": url,
        "table": "events",
        "wait": {"timeout_seconds": HOUR, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert result == {
        "passed": False,
        "reason": (
            f"could not check table events on {url} after waiting 1h (7 checks); "
            "last error: OperationalError: (sqlite3.OperationalError) unable to open database file"
        ),
        "attempts": 7,
    }


def test_waiting_gate_recovers_when_the_database_comes_up(tmp_path: Path) -> None:
    def database_up(sleeps: int) -> None:
        if sleeps == 2:
            (tmp_path / "db").mkdir()
            make_db(tmp_path / "db" / "w.db", {"events": 5})

    fake = FakeTime(on_sleep=database_up)
    url = f"sqlite:///{tmp_path}/db/w.db"
    gate = {
        "check": "row_count",
        "connection": url,
        "table": "events",
        "min_rows": 5,
        "wait": {"timeout_seconds": HOUR, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert result == {"passed": True, "reason": f"table events on {url} has 5 rows (minimum 5)", "attempts": 3}


def test_timeout_reason_keeps_an_earlier_error(tmp_path: Path) -> None:
    """Errors on early checks, clean failures later: the final reason shows both."""
    url = f"sqlite:///{tmp_path}/db/w.db"

    def database_up(sleeps: int) -> None:
        if sleeps == 1:
            (tmp_path / "db").mkdir()
            make_db(tmp_path / "db" / "w.db", {"events": 2})

    fake = FakeTime(on_sleep=database_up)
    gate = {
        "check": "row_count",
        "connection": url,
        "table": "events",
        "min_rows": 5,
        "wait": {"timeout_seconds": 1200, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert result == {
        "passed": False,
        "reason": (
            f"table events on {url} has 2 rows, fewer than the minimum 5 after waiting 20m (3 checks); "
            "last error (check 1): OperationalError: (sqlite3.OperationalError) unable to open database file"
        ),
        "attempts": 3,
    }


def test_passwords_are_masked_in_reasons(tmp_path: Path) -> None:
    # Port 1 on localhost refuses connections; whether the postgres driver is installed or not,
    # every check fails and the reason names the connection.
    fake = FakeTime()
    gate = {
        "check": "row_count",
        "connection": "postgresql+psycopg://reader:s3cr%40t-pw@127.0.0.1:1/warehouse",
        "table": "events",
        "wait": {"timeout_seconds": 1200, "interval_seconds": 600},
    }
    result = run_gate(gate, sleep=fake.sleep, clock=fake.clock)
    assert not result["passed"]
    assert result["reason"].startswith(
        "could not check table events on postgresql+psycopg://reader:***@127.0.0.1:1/warehouse after waiting 20m"
    )
    assert "s3cr" not in result["reason"]
    # A URL SQLAlchemy cannot parse is still masked.
    bad = {
        "check": "sql",
        "connection": "post gres://reader:s3cr%40t-pw@h/db",
        "query": "SELECT 1",
        "wait": gate["wait"],
    }
    result = run_gate(bad, sleep=fake.sleep, clock=fake.clock)
    assert result["reason"].startswith("could not check query on post gres://reader:***@h/db after waiting")
    assert "s3cr" not in result["reason"]


def test_unknown_check() -> None:
    with pytest.raises(ValueError, match=r"unknown gate check 'table_exists' \(expected one of: partition_exists, "):
        check_gate({"check": "table_exists", "path": "/tmp/x/"})
    fake = FakeTime()
    with pytest.raises(ValueError, match="unknown gate check"):
        run_gate({"check": "nope", "wait": {"timeout_seconds": 60, "interval_seconds": 10}}, sleep=fake.sleep)
    assert fake.sleeps == []  # a malformed gate fails at once, not after the timeout


def test_bad_wait_is_rejected(tmp_path: Path) -> None:
    gate: dict[str, Any] = {"check": "partition_exists", "path": f"{tmp_path}/"}
    with pytest.raises(ValueError, match="interval_seconds must be positive"):
        run_gate({**gate, "wait": {"timeout_seconds": 60, "interval_seconds": 0}})
    with pytest.raises(ValueError, match="'timeout_seconds' must be a number"):
        run_gate({**gate, "wait": {"interval_seconds": 10}})


def test_module_imports_no_backend_library() -> None:
    """The gate module loads in every task and Lambda; boto3 and SQLAlchemy load only when used."""
    probe = (
        "import sys, pipegen.runtime.gates\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'sqlalchemy'}))"
    )
    out = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
