"""No import cycle anywhere in idbench/: every module's imports (at any depth, lazy ones too)
form a graph without cycles, so each module can be read, and imported, on its own."""

import ast
from pathlib import Path

import idbench

ROOT = Path(idbench.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """idbench module -> the idbench modules it imports (``from P import m`` counts as P.m when
    m is a module, else as P)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1]
                                    + ([base] if base else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_the_imports():
    graph = import_graph()
    assert "idbench.store" in graph["idbench.cell"]
    assert "idbench.methods.fpd" in graph["idbench.methods"]


def test_no_import_cycle_in_idbench():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_is_long_without_saying_why():
    """Functions stay readable: one over 60 lines must say why in its docstring ("long because")."""
    long = []
    for path in sorted(ROOT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                doc = ast.get_docstring(node) or ""
                if lines > 60 and "long because" not in doc:
                    long.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} {node.name} ({lines})")
    assert not long, "split these, or say in the docstring why they are long: " + ", ".join(long)


def test_executors_say_what_the_measurement_needs():
    from idbench.executors import Executor, LocalExecutor

    local = LocalExecutor()
    assert isinstance(local, Executor) and local.in_process and local.slots == 1
    assert local.map(lambda x: x * 2, [3, 1, 2]) == [6, 2, 4]
    source = (ROOT / "dask_executor.py").read_text(encoding="utf-8")
    assert "in_process = False" in source  # its runs train on the workers
