"""Use the ahead-of-time compiled build of authz_server's hot modules when it is fresh.

`python -m authz_server.compiled.build` (run by `make setup`) writes the compiled modules
under build/compiled/ with a manifest of the sha256 of each source it was built from.
`install()`, run once when the `authz_server` package is first imported, puts a finder in
front of the normal import system for exactly those modules, and only when every source
still has its recorded hash: a build can never shadow an edited .py (a .so beside the
.py would, since Python prefers extensions). Otherwise, or with PORTCULLIS_COMPILED=off,
nothing is installed and the pure-Python modules run, with the same behaviour.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Sequence

ROOT = Path(__file__).resolve().parents[2]
BUILD_DIR = ROOT / "build" / "compiled"
MANIFEST_NAME = "manifest.json"
SWITCH = "PORTCULLIS_COMPILED"   # "off": always the pure-Python modules


@dataclass(frozen=True, slots=True)
class Status:
    """Whether the compiled build is in use, and why not when it is not."""

    active: bool
    reason: str
    modules: tuple[str, ...] = ()


def source_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_manifest(build_dir: Path, root: Path = ROOT) -> tuple[Status, dict[str, Path]]:
    """The build's state, and each compiled module's library when it is usable."""
    manifest_path = build_dir / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        return Status(False, f"no compiled build ({manifest_path} is missing)"), {}
    except (OSError, ValueError) as exc:
        return Status(False, f"unreadable {manifest_path}: {exc}"), {}
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    if manifest.get("ext_suffix") != suffix:
        return Status(False, f"built for {manifest.get('ext_suffix')!r}, this Python loads {suffix!r}"), {}
    libraries: dict[str, Path] = {}
    try:
        for name, entry in manifest["modules"].items():
            source = root / entry["source"]
            if not source.is_file() or source_digest(source) != entry["sha256"]:
                return Status(False, f"{entry['source']} changed since the compiled build"), {}
            libraries[name] = build_dir / entry["library"]
        libraries[manifest["shared"]["name"]] = build_dir / manifest["shared"]["library"]
    except (KeyError, TypeError, AttributeError) as exc:
        return Status(False, f"malformed {manifest_path}: {type(exc).__name__} {exc}"), {}
    missing = [str(path) for path in libraries.values() if not path.is_file()]
    if missing:
        return Status(False, f"compiled library missing: {missing[0]}"), {}
    compiled = tuple(sorted(name for name in libraries if name != manifest["shared"]["name"]))
    return Status(True, f"compiled build in use for {len(compiled)} modules", compiled), libraries


class _CompiledFinder:
    """A meta path finder that answers only for the modules of one fresh build."""

    def __init__(self, libraries: dict[str, Path]) -> None:
        self._libraries = libraries

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        library = self._libraries.get(fullname)
        if library is None:
            return None
        return importlib.util.spec_from_file_location(fullname, library)


_status = Status(False, "not checked yet")


def install(build_dir: Path = BUILD_DIR) -> Status:
    """Put the compiled build in front of the pure-Python modules if it is fresh."""
    global _status
    if os.environ.get(SWITCH, "").strip().lower() == "off":
        _status = Status(False, f"{SWITCH}=off")
        return _status
    _status, libraries = check_manifest(build_dir)
    if _status.active and not any(isinstance(finder, _CompiledFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _CompiledFinder(libraries))
    return _status


def status() -> Status:
    """What install() found: logged at start-up and exported as a metric."""
    return _status
