"""The compiled build of authz_server's hot modules is used only while it matches its
sources, and `make setup` makes it wherever a C compiler is present."""

from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from authz_server import compiled
from authz_server.compiled import build as builder
from authz_server.compiled.modules import COMPILED_MODULES

SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def fake_build(tmp_path: Path, sources: dict[str, bytes]) -> Path:
    """A build folder for modules `pkg.<name>` of sources under tmp_path/src."""
    root = tmp_path / "src"
    build_dir = tmp_path / "build"
    (build_dir / "lib").mkdir(parents=True)
    modules = {}
    for name, text in sources.items():
        source = root / "pkg" / f"{name}.py"
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(text)
        (build_dir / "lib" / f"{name}{SUFFIX}").write_bytes(b"\x7fELF")
        modules[f"pkg.{name}"] = {"source": f"pkg/{name}.py", "sha256": compiled.source_digest(source),
                                  "library": f"lib/{name}{SUFFIX}"}
    (build_dir / "lib" / f"group__mypyc{SUFFIX}").write_bytes(b"\x7fELF")
    manifest = {"ext_suffix": SUFFIX, "python": "3.11",
                "shared": {"name": "group__mypyc", "library": f"lib/group__mypyc{SUFFIX}"},
                "modules": modules}
    (build_dir / compiled.MANIFEST_NAME).write_text(json.dumps(manifest))
    return build_dir


def test_a_build_matching_its_sources_is_used(tmp_path):
    build_dir = fake_build(tmp_path, {"a": b"x = 1\n", "b": b"y = 2\n"})
    status, libraries = compiled.check_manifest(build_dir, root=tmp_path / "src")
    assert status.active, status.reason
    assert status.modules == ("pkg.a", "pkg.b")
    assert libraries["pkg.a"] == build_dir / "lib" / f"a{SUFFIX}"
    assert libraries["group__mypyc"] == build_dir / "lib" / f"group__mypyc{SUFFIX}"


def test_one_edited_source_turns_the_whole_build_off(tmp_path):
    build_dir = fake_build(tmp_path, {"a": b"x = 1\n", "b": b"y = 2\n"})
    (tmp_path / "src" / "pkg" / "b.py").write_bytes(b"y = 3\n")
    status, libraries = compiled.check_manifest(build_dir, root=tmp_path / "src")
    assert not status.active
    assert status.reason == "pkg/b.py changed since the compiled build"
    assert libraries == {}


@pytest.mark.parametrize("spoil, reason", [
    (lambda d: (d / compiled.MANIFEST_NAME).unlink(), "no compiled build"),
    (lambda d: (d / compiled.MANIFEST_NAME).write_text("{not json"), "unreadable"),
    (lambda d: (d / compiled.MANIFEST_NAME).write_text('{"ext_suffix": "%s"}' % SUFFIX), "malformed"),
    (lambda d: (d / "lib" / f"a{SUFFIX}").unlink(), "compiled library missing"),
    (lambda d: (d / "lib" / f"group__mypyc{SUFFIX}").unlink(), "compiled library missing"),
    (lambda d: (d / compiled.MANIFEST_NAME).write_text(
        (d / compiled.MANIFEST_NAME).read_text().replace(SUFFIX, ".cpython-312-x86_64-linux-gnu.so")),
     "built for"),
])
def test_a_build_that_cannot_be_trusted_is_not_used(tmp_path, spoil, reason):
    build_dir = fake_build(tmp_path, {"a": b"x = 1\n"})
    spoil(build_dir)
    status, libraries = compiled.check_manifest(build_dir, root=tmp_path / "src")
    assert not status.active
    assert status.reason.startswith(reason), status.reason
    assert libraries == {}


def test_the_finder_answers_only_for_its_modules(tmp_path):
    library = tmp_path / f"a{SUFFIX}"
    finder = compiled._CompiledFinder({"pkg.a": library})
    spec = finder.find_spec("pkg.a", None)
    assert spec is not None and spec.origin == str(library)
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)
    assert finder.find_spec("pkg.b", None) is None
    assert finder.find_spec("authz_server.pipeline.decide", None) is None


def run_python(code: str, **env: str) -> str:
    environment = {name: value for name, value in os.environ.items() if name != compiled.SWITCH} | env
    return subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True,
                          check=True, timeout=60).stdout


IMPORT_ALL = ("import importlib, authz_server.compiled as c\n"
              f"files = [importlib.import_module(name).__file__ for name in {list(COMPILED_MODULES)!r}]\n"
              "print(c.status().active, *files)\n")


def test_switched_off_every_module_is_the_pure_python_one():
    active, *files = run_python(IMPORT_ALL, PORTCULLIS_COMPILED="off").split()
    assert active == "False"
    assert all(file.endswith(".py") for file in files), files


@pytest.mark.skipif(builder.compiler_missing() is not None, reason="no C compiler: pure Python only")
def test_where_a_compiler_is_present_the_tests_run_the_compiled_build():
    """`make setup` builds it, so `make test` exercises the modules users run."""
    status, _ = compiled.check_manifest(compiled.BUILD_DIR)
    assert status.active, f"{status.reason}: run `python -m authz_server.compiled.build`"
    active, *files = run_python(IMPORT_ALL).split()
    assert active == "True"
    assert all(file.startswith(str(compiled.BUILD_DIR)) and file.endswith(SUFFIX) for file in files), files


def test_an_attribute_that_would_be_a_c_keyword_is_named_before_compiling(tmp_path):
    assert builder.keyword_attributes([builder.module_source(name) for name in COMPILED_MODULES]) == []
    clash = tmp_path / "clash.py"
    clash.write_text("class A:\n    def __init__(self):\n        self._thread = None\n        self._threads = 1\n")
    assert builder.keyword_attributes_in(clash) == [(3, "_thread")]
