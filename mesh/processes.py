"""One child process of the mesh: how to start it, when it is ready, how to stop it.

Every child runs in its own session (so its own process group, whose id is its PID):
Ctrl-C in the terminal reaches only the launcher, which then stops each child in order,
and a stop signal reaches whatever the child itself spawned. Children are signalled by
that PID only, never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import IO, Callable, Mapping, Sequence

from mesh.readiness import Probe

POLL_INTERVAL_SECONDS = 0.05
LOG_TAIL_LINES = 25


class ComponentError(RuntimeError):
    """A component could not be started or did not become ready."""


class ComponentExited(ComponentError):
    def __init__(self, name: str, returncode: int, log_tail: str) -> None:
        detail = f"\n--- last lines of its log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{name} exited with code {returncode} before it was ready{detail}")
        self.name = name
        self.returncode = returncode


class ComponentNotReady(ComponentError):
    def __init__(self, name: str, probe: Probe, timeout: float, log_tail: str) -> None:
        detail = f"\n--- last lines of its log ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{name} not ready after {timeout:g}s ({probe.description}){detail}")
        self.name = name


class Component:
    """A process of the mesh. Not thread-safe: one owner starts and stops it."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        probe: Probe,
        cwd: Path,
        log_path: Path | None = None,
        ready_timeout: float = 30.0,
        stop_grace: float = 5.0,
        prepare: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.probe = probe
        self.cwd = cwd
        self.log_path = log_path  # None: share the launcher's stdout and stderr
        self.ready_timeout = ready_timeout
        self.stop_grace = stop_grace
        # Runs before every start: e.g. Envoy's bootstrap needs the gateway token, which
        # exists only once admin_api (an earlier stage) has started.
        self.prepare = prepare
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False  # stopped on purpose, as opposed to having died

    def __repr__(self) -> str:
        return f"Component({self.name!r}, pid={self.pid})"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exited_unexpectedly(self) -> bool:
        """Started, not stopped on purpose, and gone."""
        return self._process is not None and not self._stopped and self._process.poll() is not None

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def start(self) -> None:
        if self.running:
            raise ComponentError(f"{self.name} is already running (pid {self.pid})")
        self._stopped = False
        if self.prepare is not None:
            try:
                self.prepare()
            except (OSError, ValueError) as error:
                raise ComponentError(f"cannot prepare {self.name}: {error}") from error
        log: IO[bytes] | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(self.log_path, "ab")  # append: restarts keep the history
        try:
            self._process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,
            )
        except OSError as error:
            raise ComponentError(f"cannot start {self.name} ({self.argv[0]}): {error}") from error
        finally:
            if log is not None:
                log.close()  # the child has its own descriptor; ours is not needed

    def wait_ready(self, timeout: float | None = None) -> None:
        """Returns once the probe says ready; raises if the process exits or time runs out."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if self._process is None:
                raise ComponentError(f"{self.name} was never started")
            returncode = self._process.poll()
            if returncode is not None:
                raise ComponentExited(self.name, returncode, self.log_tail())
            if self.probe():
                return
            if time.monotonic() >= deadline:
                raise ComponentNotReady(self.name, self.probe, timeout, self.log_tail())
            time.sleep(POLL_INTERVAL_SECONDS)

    def is_ready(self) -> bool:
        return self.running and self.probe()

    def stop(self) -> int | None:
        """SIGTERM to the process group, SIGKILL after the grace period; returns the exit
        code (None when it was never started). Stopping a stopped component is a no-op."""
        process = self._process
        if process is None:
            return None
        self._stopped = True
        if process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                process.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                process.wait()
        return process.returncode

    def kill(self) -> int | None:
        """SIGKILL to the process group at once (a crash: no clean shutdown, no flush);
        returns the exit code. `start()` brings it back."""
        process = self._process
        if process is None:
            return None
        self._stopped = True
        if process.poll() is None:
            self._signal_group(signal.SIGKILL)
            process.wait()
        return process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        with open(self.log_path, "rb") as log:
            tail = deque(log, maxlen=lines)
        return b"".join(tail).decode("utf-8", "replace").rstrip()

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self._process is not None
        try:
            # The child leads its own group (start_new_session), so its pgid is its PID.
            os.killpg(self._process.pid, signum)
        except ProcessLookupError:
            pass  # already gone
