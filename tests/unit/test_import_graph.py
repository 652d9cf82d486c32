"""No import cycle anywhere in the source: bottle_core and every plugin package.

Every import counts, also one inside a function (that only hides a cycle from
Python, not from a reader); ``if TYPE_CHECKING:`` blocks do not, they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def package_roots() -> list[Path]:
    return [ROOT / "bottle_core", *sorted(p for p in (ROOT / "plugins").glob("*/bottle_*") if p.is_dir())]


def modules() -> dict[str, Path]:
    found = {}
    for root in package_roots():
        for path in root.rglob("*.py"):
            if "image" in path.relative_to(root).parts:  # build contexts: they run in an image, not in bottle
                continue
            found[".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")] = path
    return found


def _runtime_nodes(tree: ast.AST):
    for node in ast.walk(tree):  # first drop what only a type checker reads, then walk what runs
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    yield from ast.walk(tree)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` depends on mod (pkg is its parent, loaded anyway); `from mod import name` on mod.
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known
            targets.update(submodules or {base})
    return {t for t in targets if t in known and t != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_source_has_no_import_cycle():
    found = modules()
    graph = {name: imports_of(name, path, set(found)) for name, path in found.items()}
    assert "bottle_docker.launch" in graph and "bottle_core.session" in graph  # the walk saw the packages
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_check_sees_a_cycle_hidden_in_a_function():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    tree_a = "def f():\n    from . import b\n"
    assert {"p.b"} == _imports_from_source("p.a", tree_a, {"p.a", "p.b"})


def _imports_from_source(name: str, source: str, known: set[str]) -> set[str]:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.py"
        path.write_text(source)
        return imports_of(name, path, known)
