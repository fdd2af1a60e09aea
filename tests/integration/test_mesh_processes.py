"""The process library the launcher and the integration tests share (fast: plain Python
children, no mesh). Not integration-marked."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from mesh.processes import Component, ComponentExited, ComponentNotReady
from mesh.readiness import Probe, files_exist
from mesh.runner import Mesh, MeshError
from portcullis_shared.settings import MeshSettings


def _python(tmp_path: Path, name: str, code: str, probe: Probe, **options: float) -> Component:
    return Component(
        name, [sys.executable, "-c", code], env=dict(os.environ), probe=probe, cwd=tmp_path,
        log_path=tmp_path / f"{name}.log", **options,
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_start_wait_ready_and_stop(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    component = _python(tmp_path, "sleeper", code, files_exist([ready]))
    component.start()
    component.wait_ready(timeout=10)
    assert component.running and component.is_ready()
    assert os.getpgid(component.pid) == component.pid, "each child leads its own process group"
    assert component.stop() == -signal.SIGTERM
    assert not component.running and not component.exited_unexpectedly
    assert component.stop() == -signal.SIGTERM  # stopping twice is harmless


def test_a_child_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        f"pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    )
    component = _python(tmp_path, "stubborn", code, files_exist([ready]), stop_grace=0.3)
    component.start()
    component.wait_ready(timeout=10)
    assert component.stop() == -signal.SIGKILL


def test_stop_reaches_grandchildren_in_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import pathlib, subprocess, sys, time; "
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
        # Written aside and renamed: the readiness probe sees the file only with its content.
        f"part = pathlib.Path({str(pid_file) + '.part'!r}); part.write_text(str(child.pid)); "
        f"part.rename({str(pid_file)!r}); time.sleep(60)"
    )
    component = _python(tmp_path, "parent", code, files_exist([pid_file]))
    component.start()
    component.wait_ready(timeout=10)
    grandchild = int(pid_file.read_text())
    component.stop()
    deadline = time.monotonic() + 5
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild)


def test_a_child_that_exits_before_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    code = "import sys; print('cannot open the database', file=sys.stderr); sys.exit(3)"
    component = _python(tmp_path, "crasher", code, Probe("never", lambda: False))
    component.start()
    with pytest.raises(ComponentExited, match="crasher exited with code 3") as raised:
        component.wait_ready(timeout=10)
    assert "cannot open the database" in str(raised.value)
    assert component.exited_unexpectedly


def test_a_child_that_never_gets_ready_times_out(tmp_path: Path) -> None:
    component = _python(tmp_path, "slow", "import time; time.sleep(60)", Probe("the moon is blue", lambda: False))
    component.start()
    try:
        with pytest.raises(ComponentNotReady, match="the moon is blue"):
            component.wait_ready(timeout=0.3)
    finally:
        component.stop()


def test_a_child_that_dies_later_counts_as_exited_unexpectedly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = f"import pathlib, time; pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"
    component = _python(tmp_path, "victim", code, files_exist([ready]))
    component.start()
    component.wait_ready(timeout=10)
    os.kill(component.pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while not component.exited_unexpectedly and time.monotonic() < deadline:
        time.sleep(0.05)
    assert component.exited_unexpectedly
    assert component.returncode == -signal.SIGKILL
    component.restart()
    assert component.running and not component.exited_unexpectedly
    component.stop()


def test_the_mesh_names_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = dataclasses.replace(MeshSettings(), data_dir=tmp_path, admin_rest_port=port)
        mesh = Mesh(settings, base_env={}, log_dir=tmp_path / "logs")
        with pytest.raises(MeshError, match=f"admin_api REST \\({port}\\)"):
            mesh.start()
    assert all(component.pid is None for component in mesh), "nothing may start when a port is taken"
