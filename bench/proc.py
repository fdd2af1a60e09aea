"""CPU time and memory of processes, from /proc (Linux): what a decision costs the server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process so far (its own threads; not its children)."""
    user, system = user_and_system_seconds(pid)
    return user + system


def user_and_system_seconds(pid: int) -> tuple[float, float]:
    """(utime, stime): the interpreter's own work, and the kernel's on its behalf (syscalls,
    and on loopback TCP most of the network stack of what it sends)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # After "pid (comm)": state is field 0, utime field 11, stime field 12.
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def rss_bytes(pid: int) -> int:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * _PAGE


def children(pid: int) -> list[int]:
    """Direct children (authz_server's worker processes under its supervisor)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    pids = [pid]
    for child in children(pid):
        pids += process_tree(child)
    return pids


@dataclass
class CpuMeter:
    """CPU seconds spent by a set of processes between start() and stop()."""

    pids: list[int]
    _start: tuple[float, float] = (0.0, 0.0)
    seconds: float = 0.0
    system_seconds: float = 0.0   # the kernel's part of `seconds`

    def _totals(self) -> tuple[float, float]:
        user = system = 0.0
        for pid in self.pids:
            try:
                each = user_and_system_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
            user, system = user + each[0], system + each[1]
        return user, system

    def start(self) -> "CpuMeter":
        self._start = self._totals()
        return self

    def stop(self) -> float:
        user, system = self._totals()
        self.system_seconds = system - self._start[1]
        self.seconds = user - self._start[0] + self.system_seconds
        return self.seconds


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (/proc/loadavg): how busy the shared machine was."""
    return [float(value) for value in Path("/proc/loadavg").read_text().split()[:3]]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return "unknown"


def profiler(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """py-spy (the bench extra) sampling one worker for the run, as a speedscope file."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", f"{max(1, int(seconds))}",
                             "--format", "speedscope", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
