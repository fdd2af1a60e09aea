"""The worker supervisor: start-up failures end it, later deaths are restarted."""

from __future__ import annotations

import sys
import threading

import pytest

from authz_server.workers import RestartBackoff, Supervisor, parse_worker_index, worker_argv


def _python(code: str):
    return lambda index: [sys.executable, "-c", code.replace("INDEX", str(index))]


def test_worker_argv_round_trips_the_index():
    argv = worker_argv(3)
    assert argv[1:] == ["-m", "authz_server", "--worker", "3"] and parse_worker_index(argv[1:]) == 3
    assert parse_worker_index(["--worker", "3"]) == 3
    assert parse_worker_index([]) is None


@pytest.mark.parametrize("argv", [["--worker"], ["--worker", "x"], ["--worker", "-1"]], ids=["missing", "text", "negative"])
def test_a_bad_worker_index_is_refused(argv):
    with pytest.raises(SystemExit):
        parse_worker_index(argv)


def test_a_worker_that_cannot_start_stops_the_supervisor_with_its_code():
    supervisor = Supervisor(2, argv=_python("import sys, time; sys.exit(2) if INDEX == 1 else time.sleep(30)"))
    assert supervisor.run(threading.Event()) == 2
    assert supervisor.pids == []  # the healthy worker was stopped too


def test_a_worker_that_dies_later_is_restarted(tmp_path):
    marker = tmp_path / "started"
    # Each start appends a line; the first life crashes (exit 3), later ones stay up.
    code = (f"import os, sys, time; p = {str(marker)!r}; open(p, 'a').write('x\\n'); "
            "n = len(open(p).read().split()); sys.exit(3) if n == 1 else time.sleep(30)")
    supervisor = Supervisor(1, argv=_python(code), backoff=RestartBackoff(initial=0.05, maximum=0.1))
    stopping = threading.Event()
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(supervisor.run(stopping)))
    thread.start()
    try:
        for _ in range(100):
            if marker.exists() and len(marker.read_text().split()) >= 2:
                break
            threading.Event().wait(0.05)
    finally:
        stopping.set()
        thread.join(10)
    assert len(marker.read_text().split()) == 2
    assert supervisor.workers[0].history[0] == 3
    assert result == [0]


def test_the_supervisor_loads_neither_grpc_nor_the_index():
    """It only starts and watches workers: each worker's memory is what serving costs."""
    import subprocess
    import sys

    probe = ("import sys; import authz_server.__main__; "
             "loaded = [m for m in ('grpc', 'authz_server.index', 'authz_server.frontends', 'httpx') if m in sys.modules]; "
             "print(loaded)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
