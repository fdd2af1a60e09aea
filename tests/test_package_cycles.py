"""No package of admin_api or authz_server has an import cycle among its children.

Read from the source with `ast`, not by importing: within each package, every module and
subpackage directly inside it is a node, and an import anywhere in one child's files of
anything in another child is an edge (imports inside functions count: a lazy import is
still a dependency). Imports under `if TYPE_CHECKING:` are left out, as they never run.
A cycle means two parts of a package each need the other: one of them must move down.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ("admin_api", "authz_server")


@dataclass(frozen=True)
class Import:
    importer: str   # dotted module name
    target: str     # dotted module (or package) name
    where: str      # path:line, for the failure message


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(dotted: str) -> bool:
    return (ROOT.joinpath(*dotted.split(".")) / "__init__.py").is_file()


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or is_package(dotted)


def type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skipped.update(id(inner) for inner in ast.walk(child))
    return skipped


def imports_of(path: Path) -> list[Import]:
    importer = module_name(path)
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = type_checking_nodes(tree)
    found: list[Import] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found.extend(Import(importer, alias.name, where) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append(Import(importer, submodule if is_module(submodule) else base, where))
    return found


def packages() -> list[str]:
    found = []
    for top in CHECKED:
        found.extend(module_name(init.parent / "__init__.py") for init in sorted((ROOT / top).rglob("__init__.py")))
    return sorted(found)


def child_of(package: str, dotted: str) -> str | None:
    """The child of `package` that `dotted` lies in (`__init__` for the package itself)."""
    if dotted == package:
        return "__init__"
    if not dotted.startswith(package + "."):
        return None
    return dotted[len(package) + 1:].split(".")[0]


def edges_within(package: str) -> dict[tuple[str, str], Import]:
    """(importing child, imported child) -> one import that makes that edge."""
    edges: dict[tuple[str, str], Import] = {}
    for path in sorted(ROOT.joinpath(*package.split(".")).rglob("*.py")):
        for found in imports_of(path):
            source, target = child_of(package, found.importer), child_of(package, found.target)
            if source and target and source != target:
                edges.setdefault((source, target), found)
    return edges


def cycles(edges: dict[tuple[str, str], Import]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan)."""
    graph: dict[str, list[str]] = {}
    for source, target in edges:
        graph.setdefault(source, []).append(target)
        graph.setdefault(target, [])
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def describe(package: str, component: list[str], edges: dict[tuple[str, str], Import]) -> str:
    members = set(component)
    lines = [f"{package}: {' <-> '.join(component)}"]
    for (source, target), found in sorted(edges.items()):
        if source in members and target in members:
            lines.append(f"  {source} -> {target}  ({found.where}: {found.target})")
    return "\n".join(lines)


@pytest.mark.parametrize("package", packages())
def test_no_import_cycle_among_the_children_of(package: str) -> None:
    edges = edges_within(package)
    found = cycles(edges)
    assert not found, "import cycles:\n" + "\n".join(describe(package, c, edges) for c in found)


def test_the_checker_finds_a_cycle_and_ignores_type_only_imports(tmp_path: Path) -> None:
    # The same reading on a made-up package: a -> b at run time, b -> a at run time is a
    # cycle; c -> a only under TYPE_CHECKING is not.
    sample = {("a", "b"): Import("p.a", "p.b", "a.py:1"), ("b", "a"): Import("p.b", "p.a", "b.py:1")}
    assert cycles(sample) == [["a", "b"]]
    assert cycles({("a", "b"): sample[("a", "b")]}) == []
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import os\nimport sys\n"
    tree = ast.parse(source)
    skipped = type_checking_nodes(tree)
    kept = [n for n in ast.walk(tree) if isinstance(n, ast.Import) and id(n) not in skipped]
    assert [alias.name for node in kept for alias in node.names] == ["sys"]
