"""`pipegen run` for ray steps: a job submitted to the backend's address, or to a Ray head started here.

`address: local` means a Ray that `pipegen run` starts: one head per run, its job server (the dashboard) on
127.0.0.1, free ports, a temporary directory of its own, token authentication set explicitly (off; Ray would
otherwise turn it on whenever a ~/.ray/auth_token exists), stopped when the run ends. Ray itself turns a node
address of 127.0.0.1 into the machine's own address, and its GCS listens on every interface: a head for a
single run, gone when the run ends, not a cluster to expose. It is started as
`ray start --head --block` in a process group of its own and stopped by ending that group: `ray stop` would
stop every Ray on the machine, other users' and other runs' too.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from pipegen.localrun.outcome import StepFailed, Stop
from pipegen.resolve import ResolvedStep
from pipegen.runtime.errors import RuntimeFailure
from pipegen.runtime.redacted_output import end_group
from pipegen.runtime.templating import Values
from pipegen.spec import RayBackend

LOCAL = "local"
# Ray's head takes ~14 s to serve jobs on an idle machine; a busy one (CI, several heads) takes longer.
START_TIMEOUT = 180.0
START_ATTEMPTS = 3
# Ports every head opens: each local head takes free ones, so it never collides with another Ray here.
_PORT_FLAGS = (
    "--port",
    "--dashboard-port",
    "--ray-client-server-port",
    "--node-manager-port",
    "--object-manager-port",
    "--dashboard-agent-listen-port",
    "--dashboard-agent-grpc-port",
    "--runtime-env-agent-port",
    "--metrics-export-port",
)


def free_ports(count: int) -> list[int]:
    """count distinct ports free on 127.0.0.1 now (the head binds them a moment later)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def ray_executable() -> str:
    """`ray` beside this interpreter, else on PATH; RuntimeFailure when Ray is not installed."""
    beside = Path(sys.executable).parent / "ray"
    if beside.is_file():
        return str(beside)
    found = shutil.which("ray")
    if found is None:
        raise RuntimeFailure("`address: local` needs Ray here: install ray[default] (pipegen's [ray] extra)")
    return found


class _ExitedEarly(Exception):
    """The head's `ray start` ended before its job server answered."""


class LocalRayHead:
    """A Ray head on 127.0.0.1 in a directory of its own; start() returns the job server's address."""

    def __init__(self, num_cpus: int | None = None, env: Mapping[str, str] | None = None) -> None:
        self.num_cpus = num_cpus
        self.env = dict(env or {})
        self.address = ""
        self.root: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT, attempts: int = START_ATTEMPTS) -> str:
        """Start the head and wait until its job server answers; RuntimeFailure (with its log's end) if it does not.

        A head that exits while starting is started again, up to attempts times: Ray gives its raylet a fixed 30 s
        to register, which a busy machine (a CI runner, several test sessions) sometimes overruns.
        """
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout)
            except _ExitedEarly as exc:
                if attempt == attempts:
                    raise RuntimeFailure(f"the local Ray head did not start ({attempts} tries): {exc}") from None
        raise AssertionError("unreachable")

    def _start_once(self, timeout: float) -> str:
        # A short path: Ray's unix sockets live under it, and their paths may not exceed 107 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="pgray-", dir="/tmp" if Path("/tmp").is_dir() else None))
        ports = dict(zip(_PORT_FLAGS, free_ports(len(_PORT_FLAGS)), strict=True))
        argv = [ray_executable(), "start", "--head", "--block", "--node-ip-address", "127.0.0.1"]
        argv += ["--dashboard-host", "127.0.0.1", "--include-dashboard", "true", "--disable-usage-stats"]
        argv += ["--temp-dir", str(self.root / "ray")]
        for flag, port in ports.items():
            argv += [flag, str(port)]
        if self.num_cpus is not None:
            argv += ["--num-cpus", str(self.num_cpus)]
        env = dict(os.environ)
        # Jobs run `python` as the user's commands do: the interpreter (and virtualenv) pipegen runs in.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env |= {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"} | self.env
        with (self.root / "head.log").open("wb") as head_log:
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdout=head_log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.address = f"http://127.0.0.1:{ports['--dashboard-port']}"
        deadline = time.monotonic() + timeout
        # Ready once `ray start` says the node is up (its raylet registered: the dashboard answers before that,
        # and dies with the head if registration times out) and the job server answers.
        while not (self._started() and self._serving()):
            exited = self.proc.poll() is not None
            if exited or time.monotonic() > deadline:
                said = self.log_tail() or "no output"
                self.stop()
                if exited:
                    raise _ExitedEarly(said)
                raise RuntimeFailure(f"the local Ray head did not serve jobs within {timeout:g}s: {said}")
            time.sleep(0.5)
        return self.address

    def _started(self) -> bool:
        assert self.root is not None
        try:
            return "Ray runtime started" in (self.root / "head.log").read_text(errors="replace")
        except OSError:
            return False

    def _serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address}/api/jobs/", timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log_tail(self) -> str:
        """The last line the head printed (why it failed to start)."""
        if self.root is None or not (self.root / "head.log").exists():
            return ""
        lines = [line for line in (self.root / "head.log").read_text(errors="replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else ""

    def stop(self, grace: float = 20.0, keep_logs: Path | None = None) -> None:
        """End the head's process group (SIGTERM, then SIGKILL after grace) and remove its directory.

        keep_logs: a directory to copy Ray's logs (and the head's own output) to first, for a post-mortem.
        """
        proc, self.proc = self.proc, None
        if proc is not None:
            end_group(proc, grace)
        if self.root is not None and keep_logs is not None:
            with contextlib.suppress(OSError):
                shutil.copytree(
                    self.root,
                    keep_logs,
                    dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("sockets", "*.sock"),
                    symlinks=True,
                )
        if self.root is not None:
            # Ray's workers leave the head's process group (each takes a session of its own): end every
            # process that runs from this head's directory, which no other Ray on the machine uses.
            deadline = time.monotonic() + 15
            while _kill_users_of(str(self.root)) and time.monotonic() < deadline:
                time.sleep(0.2)  # a killed process may still be writing its last log lines into the directory
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def _kill_users_of(root: str) -> int:
    """SIGKILL the processes whose command line names root (Linux /proc; elsewhere none); how many there were."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return 0
    found = 0
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if root in cmdline:
            found += 1
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)
    return found


_lock = threading.Lock()
_head: LocalRayHead | None = None


def local_head_address() -> str:
    """The address of this process's local Ray head, starting it on first use (stopped at exit)."""
    global _head
    with _lock:
        if _head is None:
            head = LocalRayHead()
            head.start()
            _head = head
            # `pipegen run` is one process per run: the head lives as long as the run, through an
            # interrupt too (Ctrl-C and SIGTERM end the run as an exception, so exit handlers run).
            atexit.register(stop_local_head)
        return _head.address


def stop_local_head() -> None:
    """Stop the local Ray head, if this process started one."""
    global _head
    with _lock:
        head, _head = _head, None
    if head is not None:
        head.stop()


def ray_step(
    step: ResolvedStep,
    values: Values,
    extra_env: Mapping[str, str],
    log_path: Path,
    stop: Stop,
    job_name: str,
) -> str:
    """Run a ray step's command as a Ray job and wait for it; the detail the summary shows. StepFailed when it fails."""
    from pipegen.runtime.ray_jobs import ray_job

    backend = step.backend
    assert isinstance(backend, RayBackend) and backend.address is not None  # setup refuses ray.cluster
    body = step.body
    env = {k: values.string(v) for k, v in sorted(body.env.items())}
    env.update(extra_env)
    resources = backend.entrypoint_resources.model_dump(exclude_none=True) if backend.entrypoint_resources else None
    log_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        address = values.string(backend.address)
        if address == LOCAL:
            address = local_head_address()
        with log_path.open("ab") as log:
            result = ray_job(
                address=address,
                entrypoint=[values.string(arg) for arg in body.command],
                job_name=job_name,
                run_id=values.run_id,
                runtime_env=backend.runtime_env,
                entrypoint_resources=resources,
                environment=env,
                timeout_seconds=step.policy.timeout,
                output=log,
                sleep=stop.sleep,
            )
    except RuntimeFailure as exc:  # the job failed, was stopped, outlived the timeout, or Ray was unreachable
        raise StepFailed(f"{exc} (log: {log_path})") from None
    return f"Ray job {result['submission_id']} succeeded (log: {log_path})"
