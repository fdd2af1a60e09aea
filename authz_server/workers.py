"""Worker processes: with PORTCULLIS_AUTHZ_WORKERS=N>1, `python -m authz_server` is a small
supervisor of N workers, each a whole authz_server (its own gRPC server on
authz_port + index, its own Watch, index and caches) in its own process.

Why processes: a decision holds the GIL, so one process uses one core however many
threads it has. Why one port per worker (rather than SO_REUSEPORT on one port): the
kernel hands out whole connections, and Envoy opens only one HTTP/2 connection per
worker thread and endpoint, so two or four connections could all land on one process;
with one endpoint per worker, Envoy's round robin spreads the requests themselves.

The supervisor never imports grpc (workers are exec'ed, not forked). A worker that exits
with a start-up failure (settings, port in use) ends the whole server with that code,
so the mesh sees it; a worker that dies later is restarted with back-off while the
others keep deciding (Envoy fails closed on the dead one's share until then).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from authz_server.metrics.channel import FD_VARIABLE, SupervisorEnd

log = logging.getLogger(__name__)

# Exit codes of a worker that could not start: restarting would fail the same way.
STARTUP_FAILURES = frozenset({1, 2})
WORKER_FLAG = "--worker"
POLL_SECONDS = 0.2
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class RestartBackoff:
    initial: float = 0.5
    maximum: float = 10.0
    healthy_after: float = 30.0  # a worker that lived this long restarts from `initial` again

    def delay(self, failures: int) -> float:
        return min(self.maximum, self.initial * 2 ** max(failures - 1, 0))


def worker_argv(index: int, python: str = sys.executable) -> list[str]:
    return [python, "-m", "authz_server", WORKER_FLAG, str(index)]


def parse_worker_index(argv: Sequence[str]) -> int | None:
    """The worker index from `--worker N`, or None for the supervisor / a single process."""
    if WORKER_FLAG not in argv:
        return None
    position = list(argv).index(WORKER_FLAG)
    try:
        index = int(argv[position + 1])
    except (IndexError, ValueError):
        raise SystemExit(f"{WORKER_FLAG} needs a worker index") from None
    if index < 0:
        raise SystemExit(f"{WORKER_FLAG} {index}: the index must be 0 or more")
    return index


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    metrics: SupervisorEnd | None = None   # the socket pair to ask this worker for its figures
    history: list[int] = field(default_factory=list)  # exit codes, for logs and tests


class Supervisor:
    def __init__(
        self,
        count: int,
        *,
        argv: Callable[[int], list[str]] = worker_argv,
        backoff: RestartBackoff = RestartBackoff(),
        clock: Callable[[], float] = time.monotonic,
        metrics: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        """`env`: variables the workers get on top of this process's (e.g. the shared
        throttle counter table)."""
        self._argv = argv
        self._env = dict(env or {})
        self._metrics = metrics
        self._backoff = backoff
        self._clock = clock
        self.workers = [_Worker(index) for index in range(count)]

    @property
    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process is not None and w.process.poll() is None]

    def metric_answers(self, timeout: float = 2.0) -> list[tuple[int, dict | None]]:
        """Each worker's metrics snapshot (None: it did not answer), for one scrape."""
        answers = []
        for worker in self.workers:
            link = worker.metrics
            answers.append((worker.index, link.ask(timeout) if link is not None else None))
        return answers

    def _start(self, worker: _Worker) -> None:
        if not self._metrics:
            worker.process = subprocess.Popen(self._argv(worker.index), stdin=subprocess.DEVNULL,
                                              env={**os.environ, **self._env} if self._env else None)
        else:
            if worker.metrics is not None:
                worker.metrics.close()
            worker.metrics, theirs = SupervisorEnd.pair()
            env = {**os.environ, **self._env}
            env[FD_VARIABLE] = str(theirs.fileno())
            try:
                worker.process = subprocess.Popen(self._argv(worker.index), stdin=subprocess.DEVNULL,
                                                  pass_fds=(theirs.fileno(),), env=env)
            finally:
                theirs.close()
        worker.started_at = self._clock()
        worker.restart_at = None
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)

    def run(self, stopping: threading.Event) -> int:
        """Until `stopping` is set (0) or a worker fails to start (its exit code)."""
        try:
            for worker in self.workers:
                self._start(worker)
            while not stopping.wait(POLL_SECONDS):
                code = self._tend()
                if code is not None:
                    return code
            return 0
        finally:
            self.stop()

    def _tend(self) -> int | None:
        now = self._clock()
        for worker in self.workers:
            process = worker.process
            if worker.restart_at is not None:
                if now >= worker.restart_at:
                    self._start(worker)
                continue
            if process is None or process.poll() is None:
                continue
            code = process.returncode
            worker.history.append(code)
            if code in STARTUP_FAILURES:
                log.error("worker %d (pid %d) could not start (exit code %d): stopping", worker.index, process.pid, code)
                return code
            lived = now - worker.started_at
            worker.failures = 1 if lived >= self._backoff.healthy_after else worker.failures + 1
            delay = self._backoff.delay(worker.failures)
            log.error("worker %d (pid %d) died (exit code %d) after %.1fs: restarting in %.1fs",
                      worker.index, process.pid, code, lived, delay)
            worker.restart_at = now + delay
        return None

    def stop(self) -> None:
        """SIGTERM to every worker, SIGKILL to those still there after the grace period."""
        running = [w.process for w in self.workers if w.process is not None and w.process.poll() is None]
        for process in running:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def parent_gone(original_parent: int) -> bool:
    """A worker whose supervisor died (even by SIGKILL) stops too, rather than serving on."""
    return os.getppid() != original_parent
