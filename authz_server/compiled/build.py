"""Build the compiled modules with mypyc: `python -m authz_server.compiled.build`.

Run by `make setup`. Up to date (every source's hash as recorded): nothing is done.
Without mypyc or a C compiler: a warning, and the pure-Python modules are used (exit 0;
--strict makes it an error). A type error in a compiled module fails the build: mypyc
compiles the annotations into run-time checks, so an annotation that lies is a bug.
"""

from __future__ import annotations

import argparse
import importlib.machinery
import json
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from pathlib import Path

from authz_server.compiled import BUILD_DIR, MANIFEST_NAME, ROOT, check_manifest, source_digest
from authz_server.compiled.modules import COMPILED_MODULES, GROUP


def module_source(name: str, root: Path = ROOT) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def library_path(name: str) -> str:
    """Where build_ext puts a module's library, relative to the build's lib folder."""
    return "/".join(name.split(".")) + importlib.machinery.EXTENSION_SUFFIXES[0]


# mypyc names a native class's C field after its attribute with one more "_" in front, so
# `self._thread` becomes the field `__thread`, a GCC keyword, and the C does not compile.
_C_KEYWORD_ATTRIBUTE = re.compile(
    r"\bself\.(_thread|_inline|_restrict|_const|_volatile|_signed|_asm|_typeof|_real|_imag|_alignof|_auto_type)\b")


def keyword_attributes_in(path: Path) -> list[tuple[int, str]]:
    """(line, attribute) for each attribute of `path` a compiled class could not have."""
    return [(number, match.group(1)) for number, line in enumerate(path.read_text().splitlines(), 1)
            for match in [_C_KEYWORD_ATTRIBUTE.search(line)] if match]


def keyword_attributes(sources: list[Path]) -> list[str]:
    """`path:line: self._thread` for each of them in `sources`."""
    return [f"{path.relative_to(ROOT)}:{number}: self.{name}"
            for path in sources for number, name in keyword_attributes_in(path)]


def up_to_date(build_dir: Path) -> bool:
    status, _ = check_manifest(build_dir)
    return status.active and set(status.modules) == set(COMPILED_MODULES)


def compiler_missing() -> str | None:
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler}) on PATH"
    include = Path(sysconfig.get_paths()["include"], "Python.h")
    if not include.is_file():
        return f"no Python headers ({include})"
    return None


def build(build_dir: Path, verbose: bool = False) -> None:
    """Compile every module of COMPILED_MODULES into build_dir/lib and write the manifest
    last, so an interrupted build is never used."""
    from mypyc.build import mypycify   # only the build needs mypy
    from setuptools import Distribution

    (build_dir / MANIFEST_NAME).unlink(missing_ok=True)
    sources = [module_source(name) for name in COMPILED_MODULES]
    digests = {name: source_digest(path) for name, path in zip(COMPILED_MODULES, sources)}
    work = Path(tempfile.mkdtemp(prefix="compiled-", dir=build_dir.parent if build_dir.parent.exists() else None))
    lib = build_dir / "lib"
    shutil.rmtree(lib, ignore_errors=True)
    cwd = os.getcwd()
    os.chdir(ROOT)   # mypyc names modules from paths relative to the working folder
    try:
        # The generated protobuf modules and grpc have no stubs (their values are Any);
        # errors in modules that are not compiled are not this build's to report.
        options = ["--ignore-missing-imports", "--follow-imports=silent"]
        extensions = mypycify(options + [str(path.relative_to(ROOT)) for path in sources], opt_level="3",
                              group_name=GROUP, target_dir=str(build_dir / "c"), verbose=verbose)
        distribution = Distribution({"name": "portcullis-compiled", "ext_modules": extensions})
        command = distribution.get_command_obj("build_ext")
        command.build_lib = str(lib)
        command.build_temp = str(work / "tmp")
        distribution.run_command("build_ext")
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
    shared = f"{GROUP}__mypyc"
    manifest = {
        "ext_suffix": importlib.machinery.EXTENSION_SUFFIXES[0],
        "python": sys.version.split()[0],
        "shared": {"name": shared, "library": "lib/" + library_path(shared)},
        "modules": {name: {"source": str(module_source(name).relative_to(ROOT)),
                           "sha256": digests[name], "library": "lib/" + library_path(name)}
                    for name in COMPILED_MODULES},
    }
    (build_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strict", action="store_true", help="fail when the build cannot be made")
    parser.add_argument("--force", action="store_true", help="build even when up to date")
    parser.add_argument("--clean", action="store_true", help="remove the build and stop")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.clean:
        shutil.rmtree(BUILD_DIR, ignore_errors=True)
        print(f"removed {BUILD_DIR}")
        return 0
    if not args.force and up_to_date(BUILD_DIR):
        print(f"compiled build up to date ({len(COMPILED_MODULES)} modules)")
        return 0
    missing = compiler_missing()
    try:
        import mypyc  # noqa: F401
    except ImportError:
        missing = missing or "mypyc is not installed (the `compiled` extra)"
    if missing:
        (BUILD_DIR / MANIFEST_NAME).unlink(missing_ok=True)
        print(f"compiled build skipped: {missing}; authz_server runs its pure-Python modules",
              file=sys.stderr)
        return 1 if args.strict else 0
    clashes = keyword_attributes([module_source(name) for name in COMPILED_MODULES])
    if clashes:
        (BUILD_DIR / MANIFEST_NAME).unlink(missing_ok=True)
        print("compiled build failed: attributes whose C field would be a GCC keyword (rename them):\n  "
              + "\n  ".join(clashes), file=sys.stderr)
        return 1
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    try:
        build(BUILD_DIR, verbose=args.verbose)
    except SystemExit as exc:   # mypyc exits on type errors, already printed
        print(f"compiled build failed (mypyc exit {exc.code}): fix the errors above", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - a compiler failure of any kind
        (BUILD_DIR / MANIFEST_NAME).unlink(missing_ok=True)
        print(f"compiled build failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1 if args.strict else 0
    print(f"compiled build made: {len(COMPILED_MODULES)} modules in {BUILD_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
