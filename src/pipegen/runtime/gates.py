"""Data gates: check that a partition exists, is fresh, or that a database query says go.

Every target (Airflow task, KFP component, Step Functions' Lambda) calls these two functions with
the gate as a plain dict whose expressions are already rendered and durations already in seconds,
and gets a JSON-able dict back. boto3 and SQLAlchemy are imported only by the checks that use them:
boto3 alone costs ~0.5 s to import, which every Lambda cold start and sensor poke would pay.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from stat import S_ISDIR
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import unquote

from pipegen.durations import format_duration
from pipegen.runtime import redact

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, CursorResult

__all__ = ["check_gate", "run_gate"]

log = logging.getLogger(__name__)

CHECKS = ("partition_exists", "freshness", "row_count", "sql")
# The spec's defaults (spec.RowCountGate.min_rows, spec.Wait.interval), for callers that omit them.
DEFAULT_MIN_ROWS = 1
DEFAULT_INTERVAL_SECONDS = 300.0
# Any scheme-qualified path: recognised so that `gs://...` is an error rather than a relative path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_MAX_VALUE_CHARS = 80


def check_gate(gate: dict[str, Any]) -> dict[str, Any]:
    """Evaluate a gate once: {"passed": bool, "reason": str}."""
    return _prepare(gate).check()


def run_gate(
    gate: dict[str, Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    started_at: float | None = None,
    wall: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Evaluate a gate, polling at its wait interval until it passes or times out: {"passed", "reason", "attempts"}.

    started_at (epoch seconds) anchors the wait when the orchestrator may run this more than once (a retried
    pod): the wait then resumes with what is left of its timeout, and once the timeout has passed a retry fails
    at once instead of starting a fresh full wait.
    """
    # Parse before the first check, so a malformed gate fails at once instead of after the timeout.
    prepared = _prepare(gate)
    wait = _wait(gate)
    if wait is None:
        return {**prepared.check(), "attempts": 1}
    timeout, interval = wait

    already = 0.0 if started_at is None else max(0.0, wall() - started_at)
    if already > timeout:
        assert started_at is not None
        return {"passed": False, "reason": _deadline_passed(prepared.target, started_at, timeout), "attempts": 0}
    if already:
        log.info(
            "resuming the wait for %s: %s of %s already passed",
            prepared.target,
            *map(_format_seconds, (already, timeout)),
        )
    # Monotonic time within this attempt, shifted back by what earlier attempts already waited.
    start = clock() - already
    attempts = 0
    last: dict[str, Any] | None = None
    last_error: tuple[int, str] | None = None
    while True:
        attempts += 1
        try:
            last = prepared.check()
        # A waiting gate outlives transient trouble (database restarting, network blip): the error
        # counts as a failed check and is reported if the gate never passes. BaseException (e.g.
        # KeyboardInterrupt, the task being killed) still stops it.
        except Exception as exc:  # noqa: BLE001
            last = None
            last_error = (attempts, _describe_error(exc))
            log.warning("gate check %d on %s raised %s", attempts, prepared.target, last_error[1])
        else:
            if last["passed"]:
                return {**last, "attempts": attempts}
            log.info("gate check %d: %s", attempts, last["reason"])
        elapsed = clock() - start
        if elapsed + interval > timeout:
            break
        sleep(interval)

    waited = f"after waiting {_format_seconds(elapsed)} ({attempts} {'check' if attempts == 1 else 'checks'})"
    if last is None:
        assert last_error is not None  # the last check raised
        reason = f"could not check {prepared.target} {waited}; last error: {last_error[1]}"
    else:
        reason = f"{last['reason']} {waited}"
        if last_error is not None:
            reason += f"; last error (check {last_error[0]}): {last_error[1]}"
    return {"passed": False, "reason": reason, "attempts": attempts}


# ---- parsing the gate -------------------------------------------------------------------------


class _Prepared(NamedTuple):
    """A validated gate: what it looks at (for messages) and the check itself."""

    target: str
    check: Callable[[], dict[str, Any]]


def _prepare(gate: dict[str, Any]) -> _Prepared:
    if not isinstance(gate, dict):
        raise ValueError(f"a gate must be a mapping, not {type(gate).__name__}")
    check = gate.get("check")
    if check == "partition_exists":
        path, s3 = _path(gate), _LazyS3()
        return _Prepared(path, lambda: _partition_exists(path, s3))
    if check == "freshness":
        path, s3 = _path(gate), _LazyS3()
        max_age = _number(gate, "max_age_seconds", minimum=0)
        return _Prepared(path, lambda: _freshness(path, max_age, s3))
    if check == "row_count":
        connection = _text(gate, "connection")
        table, query = gate.get("table"), gate.get("query")
        if (table is None) == (query is None):
            raise ValueError("a row_count gate takes exactly one of 'table' and 'query'")
        min_rows = int(_number(gate, "min_rows", minimum=0, default=DEFAULT_MIN_ROWS, integer=True))
        _register_password(connection)
        shown = _mask_url(connection)
        if table is not None:
            name = _text(gate, "table")
            return _Prepared(f"table {name} on {shown}", lambda: _count_table(connection, name, min_rows))
        sql, binds = _text(gate, "query"), _binds(gate)
        return _Prepared(f"query on {shown}", lambda: _count_query(connection, sql, binds, min_rows))
    if check == "sql":
        connection = _text(gate, "connection")
        sql, binds = _text(gate, "query"), _binds(gate)
        _register_password(connection)
        return _Prepared(f"query on {_mask_url(connection)}", lambda: _sql(connection, sql, binds))
    raise ValueError(f"unknown gate check {check!r} (expected one of: {', '.join(CHECKS)})")


def _binds(gate: dict[str, Any]) -> dict[str, Any] | None:
    binds = gate.get("query_params")
    if binds is not None and not isinstance(binds, dict):
        raise ValueError("a gate's 'query_params' must be a mapping of bind names to values")
    return binds


def _wait(gate: dict[str, Any]) -> tuple[float, float] | None:
    wait = gate.get("wait")
    if wait is None:
        return None
    if not isinstance(wait, dict):
        raise ValueError(f"gate 'wait' must be a mapping with timeout_seconds and interval_seconds, not {wait!r}")
    timeout = _number(wait, "timeout_seconds", minimum=0)
    # A zero interval would poll as fast as the backend answers, for hours.
    interval = _number(wait, "interval_seconds", minimum=0, default=DEFAULT_INTERVAL_SECONDS)
    if interval <= 0:
        raise ValueError(f"gate wait interval_seconds must be positive, got {interval!r}")
    return timeout, interval


def _text(gate: dict[str, Any], key: str) -> str:
    value = gate.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{gate.get('check', 'gate')} gate needs '{key}' as a non-empty string, got {value!r}")
    return value


def _number(
    gate: dict[str, Any], key: str, *, minimum: float, default: float | None = None, integer: bool = False
) -> float:
    value = gate.get(key, default)
    # bool is an int in Python, but `true` is never a meaningful count or duration.
    wanted = int if integer else int | float
    if isinstance(value, wanted) and not isinstance(value, bool) and value >= minimum:
        return float(value)
    kind = "an integer" if integer else "a number"
    raise ValueError(f"gate '{key}' must be {kind} >= {minimum:g}, got {value!r}")


def _path(gate: dict[str, Any]) -> str:
    path = _text(gate, "path")
    _location(path)  # validates the scheme now rather than at the first check
    return path


# ---- paths: S3 and the local filesystem -------------------------------------------------------


class _S3(NamedTuple):
    bucket: str
    key: str


def _location(path: str) -> _S3 | str:
    """Where a path points: an S3 bucket and key, or a local filesystem path."""
    match = _SCHEME.match(path)
    if match is None:
        return path  # a plain path, absolute or relative to the current directory
    scheme = match.group(1).lower()
    rest = path[match.end() :]
    if scheme == "s3":
        bucket, _, key = rest.partition("/")
        if not bucket:
            raise ValueError(f"S3 path '{path}' has no bucket (expected s3://bucket/key)")
        return _S3(bucket, key)
    if scheme == "file":
        host, slash, local = rest.partition("/")
        if host not in ("", "localhost") or not slash:
            raise ValueError(f"file URL '{path}' must be absolute: file:///absolute/path")
        # File URLs are percent-encoded (RFC 8089), as pathlib's as_uri() writes them.
        return unquote("/" + local)
    raise ValueError(f"unsupported path scheme '{scheme}://' in '{path}' (expected s3://, file:// or a local path)")


def _is_prefix(path: str, where: _S3 | str) -> bool:
    # `s3://bucket` names the whole bucket, which can only be a prefix.
    return path.endswith("/") or (isinstance(where, _S3) and not where.key)


def _partition_exists(path: str, s3: _LazyS3) -> dict[str, Any]:
    where = _location(path)
    prefix = _is_prefix(path, where)
    if isinstance(where, _S3):
        found = _s3_prefix_has_objects(s3, where) if prefix else _s3_head(s3, where) is not None
    elif prefix:
        found = _dir_has_entries(where)
    else:
        found = _local_stat(where) is not None
    if found:
        return _result(True, f"{path} is not empty" if prefix else f"{path} exists")
    return _result(False, _missing(path, prefix))


def _freshness(path: str, max_age: float, s3: _LazyS3) -> dict[str, Any]:
    where = _location(path)
    prefix = _is_prefix(path, where)
    newest: float | None  # POSIX timestamp of the newest object/file
    if isinstance(where, _S3):
        if prefix:
            newest = max(_s3_modified_times(s3, where), default=None)
        else:
            head = _s3_head(s3, where)
            newest = None if head is None else head["LastModified"].timestamp()
        subject = f"newest object under {path}" if prefix else path
    else:
        stat = _local_stat(where)
        if stat is None:
            newest = None
        elif S_ISDIR(stat.st_mode):
            # A directory given without the trailing '/' still means its contents: a directory's
            # own mtime changes when entries are added or removed, not when data is rewritten.
            prefix = True
            newest = max(_file_modified_times(where), default=None)
        else:
            newest = stat.st_mtime
        subject = f"newest file under {path}" if prefix else path
    if newest is None:
        return _result(False, _missing(path, prefix))
    # POSIX timestamps are UTC-based, so local and S3 times compare without timezone handling.
    age = time.time() - newest
    at = datetime.fromtimestamp(newest, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    when = f"{subject} was modified {_format_seconds(max(age, 0.0))} ago ({at})"
    if age <= max_age:
        return _result(True, f"{when}, within the maximum age {_format_seconds(max_age)}")
    return _result(False, f"{when}, older than the maximum age {_format_seconds(max_age)}")


def _missing(path: str, prefix: bool) -> str:
    return f"{path} is empty or missing" if prefix else f"{path} does not exist"


# Local filesystem. Only "not there" counts as missing data; permission errors and the like raise,
# because waiting will not fix them and a false "missing" would send people looking for data.


def _local_stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _dir_has_entries(path: str) -> bool:
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is not None  # hidden files and markers such as _SUCCESS count
    except (FileNotFoundError, NotADirectoryError):
        return False


def _file_modified_times(root: str) -> Iterator[float]:
    def on_error(exc: OSError) -> None:
        # A subdirectory removed while walking (a partition being rewritten) is not an error.
        if not isinstance(exc, FileNotFoundError):
            raise exc

    for directory, _, files in os.walk(root, onerror=on_error):
        for name in files:
            try:
                yield os.stat(os.path.join(directory, name)).st_mtime
            except FileNotFoundError:
                continue  # removed while walking, or a dangling symlink: not data


# S3. A 404 means missing; any other error (403, throttling, network) raises.


def _s3_client() -> Any:
    # No stubs in the runtime's environment; the ignore stays harmless where boto3-stubs is installed.
    import boto3  # type: ignore[import-untyped,unused-ignore]

    # boto3 reads AWS_ENDPOINT_URL(_S3), AWS_DEFAULT_REGION and the profile by itself. AWS_REGION,
    # which the Lambda runtime and newer SDKs use, it does not; without any region boto3 refuses
    # some calls, so fall back to us-east-1 as the AWS CLI does for S3.
    session = boto3.session.Session()
    region = os.environ.get("AWS_REGION") or session.region_name or "us-east-1"
    return session.client("s3", region_name=region)


class _LazyS3:
    """One S3 client per gate, made at its first S3 call.

    Making a client costs ~0.15 s (boto3 loads the service model); a waiting gate may check dozens
    of times. Per gate rather than per process, so the environment is read when the gate runs.
    """

    def __init__(self) -> None:
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            self._client = _s3_client()
        return self._client


def _is_not_found(exc: Exception) -> bool:
    from botocore.exceptions import ClientError  # type: ignore[import-untyped,unused-ignore]

    if not isinstance(exc, ClientError):
        return False
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return bool(status == 404 or exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NoSuchBucket"))


def _s3_head(s3: _LazyS3, where: _S3) -> dict[str, Any] | None:
    try:
        head: dict[str, Any] = s3.client().head_object(Bucket=where.bucket, Key=where.key)
    except Exception as exc:
        if _is_not_found(exc):
            return None
        raise
    return head


def _s3_list_args(where: _S3) -> dict[str, Any]:
    args: dict[str, Any] = {"Bucket": where.bucket, "Prefix": where.key}
    if where.key:
        # Skip a "folder" marker (a zero-byte key equal to the prefix, as the S3 console and some
        # tools create): like an empty local directory, it says nothing about the data being there.
        args["StartAfter"] = where.key
    return args


def _s3_prefix_has_objects(s3: _LazyS3, where: _S3) -> bool:
    try:
        page = s3.client().list_objects_v2(**_s3_list_args(where), MaxKeys=1)
    except Exception as exc:
        if _is_not_found(exc):  # NoSuchBucket: nothing there yet
            return False
        raise
    return bool(page.get("Contents"))


def _s3_modified_times(s3: _LazyS3, where: _S3) -> Iterator[float]:
    pages = s3.client().get_paginator("list_objects_v2").paginate(**_s3_list_args(where))
    try:
        for page in pages:
            for obj in page.get("Contents", ()):
                yield obj["LastModified"].timestamp()
    except Exception as exc:
        if not _is_not_found(exc):
            raise


# ---- SQL --------------------------------------------------------------------------------------


def _count_table(connection: str, table: str, min_rows: int) -> dict[str, Any]:
    from sqlalchemy import func, select
    from sqlalchemy import table as table_clause

    # `schema.table`: the last dot separates the table, so MSSQL's `database.schema.table` also works.
    schema, _, name = table.rpartition(".")
    # SQLAlchemy quotes each part with the dialect's identifier preparer (reserved words, spaces,
    # mixed case), so the table name never reaches the SQL text unquoted.
    statement = select(func.count()).select_from(table_clause(name, schema=schema or None))
    with _connect(connection) as conn:
        count = int(conn.execute(statement).scalar_one())
    return _count_result(f"table {table} on {_mask_url(connection)}", count, min_rows)


def _count_query(connection: str, query: str, binds: dict[str, Any] | None, min_rows: int) -> dict[str, Any]:
    with _connect(connection) as conn:
        # Oracle rejects AS before a table alias; every other dialect accepts it.
        alias = "pipegen_q" if conn.dialect.name == "oracle" else "AS pipegen_q"
        count = int(_raw_scalar(conn, f"SELECT COUNT(*) FROM ({_strip_sql(query)}) {alias}", "a count", binds))
    return _count_result(f"query on {_mask_url(connection)}", count, min_rows)


def _sql(connection: str, query: str, binds: dict[str, Any] | None) -> dict[str, Any]:
    with _connect(connection) as conn:
        row = _raw(conn, _strip_sql(query), binds).first()
    where = f"query on {_mask_url(connection)}"
    if row is None:
        return _result(False, f"{where} returned no rows")
    value = row[0]
    shown = _shown(value)
    if value:
        return _result(True, f"{where} returned {shown}")
    return _result(False, f"{where} returned {shown}, which is not true")


def _shown(value: Any) -> str:
    """What a gate's reason may echo of the database: booleans, numbers and NULL, never text or bytes.

    The reason lands in task logs and Step Functions' execution history; a query that selects a column
    of text could otherwise copy data (or a secret) there. Text is described by its length only.
    """
    if value is None or isinstance(value, bool | int | float | Decimal):
        shown = repr(value) if not isinstance(value, Decimal) else str(value)
        return shown if len(shown) <= _MAX_VALUE_CHARS else shown[: _MAX_VALUE_CHARS - 3] + "..."
    if isinstance(value, str | bytes | bytearray | memoryview):
        kind = "text" if isinstance(value, str) else "bytes"
        return (
            f"{'empty ' if not len(value) else ''}{kind} ({len(value)} {'characters' if kind == 'text' else 'bytes'})"
        )
    return f"a {type(value).__name__} value"


def _count_result(where: str, count: int, min_rows: int) -> dict[str, Any]:
    rows = f"{count} {'row' if count == 1 else 'rows'}"
    if count >= min_rows:
        return _result(True, f"{where} has {rows} (minimum {min_rows})")
    return _result(False, f"{where} has {rows}, fewer than the minimum {min_rows}")


@contextmanager
def _connect(connection: str) -> Iterator[Connection]:
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    # One connection per check and no pool: a waiting gate checks every few minutes, and an idle
    # pooled connection would only be dropped by the server in between.
    engine = create_engine(connection, poolclass=NullPool)
    try:
        # Leaving the block without commit rolls back: a gate never changes the database.
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


def _raw(conn: Connection, sql: str, binds: dict[str, Any] | None = None) -> CursorResult[Any]:
    if binds:
        # The query held references: runtime.sqlparams made them bind parameters and escaped every
        # literal colon, so text() binds exactly those and SQLAlchemy writes them in the driver's style.
        from sqlalchemy import text

        return conn.execute(text(sql), binds)
    # Without references the user's SQL goes to the driver as written: through text() a literal such as
    # ':30' or '%' would be taken for a bind parameter. no_parameters stops drivers with %-style
    # paramstyles (psycopg, pymysql) from interpreting '%' when no parameters are passed.
    return conn.execution_options(no_parameters=True).exec_driver_sql(sql)


def _raw_scalar(conn: Connection, sql: str, what: str, binds: dict[str, Any] | None = None) -> Any:
    row = _raw(conn, sql, binds).first()
    if row is None:
        raise RuntimeError(f"expected {what}, the query returned no rows")
    return row[0]


def _strip_sql(query: str) -> str:
    # A trailing ';' is harmless on its own but breaks the query once wrapped in a subquery.
    return query.strip().rstrip(";").rstrip()


# ---- messages ---------------------------------------------------------------------------------


def _mask_url(url: str) -> str:
    """A connection URL fit for logs: the password (and a token in its query) replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return redact.redact(make_url(url).render_as_string(hide_password=True))
    except Exception:  # noqa: BLE001 - an unparseable URL is reported by the check itself; mask what we can
        return redact.redact(url)


def _register_password(url: str) -> None:
    """A connection's password is a secret wherever it came from (Airflow renders Variables itself)."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:  # noqa: BLE001 - unparseable: the redactor still masks it inside any URL
        return
    if password:
        # Registered in every form it may take in a message: as typed, percent-encoded, escaped.
        redact.register(str(password))


def _describe_error(exc: BaseException) -> str:
    text = redact.redact(str(exc))
    # SQLAlchemy appends a "Background on this error" link and the failing SQL on extra lines.
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return f"{type(exc).__name__}: {first_line}" if first_line else type(exc).__name__


def _format_seconds(seconds: float) -> str:
    if seconds < 10 and seconds != int(seconds):
        return f"{seconds:.1f}s"
    return format_duration(int(seconds))


def _deadline_passed(target: str, started_at: float, timeout: float) -> str:
    def when(t: float) -> str:
        return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    return (
        f"deadline passed: the wait for {target} started at {when(started_at)} and its timeout of "
        f"{_format_seconds(timeout)} ended at {when(started_at + timeout)}; a retry does not start the wait over"
    )


def _result(passed: bool, reason: str) -> dict[str, Any]:
    return {"passed": passed, "reason": reason}
