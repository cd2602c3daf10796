"""The package's shape: imports go one way, ``import tinynets`` stays light, kernels stand alone."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tinynets"
HEAVY = ("matplotlib", "PIL", "sklearn", "tqdm")

pytestmark = pytest.mark.task_layers


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Set[str]:
    """Every tinynets module ``path`` imports, at any depth of the file (lazy imports too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "tinynets")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "tinynets":
                continue
            for alias in node.names:                      # `from . import nn` imports a module
                sub = f"{target}.{alias.name}"
                found.add(sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / sub.replace(".", "/")).is_dir() else target)
    return found - {name}


def _graph() -> Dict[str, Set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Every strongly connected component with more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    out: List[List[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    assert "tinynets.nn.module" in graph and "tinynets.kernels.depthwise" in graph
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_core_does_not_import_the_layers_above_it():
    above = ("tinynets.models", "tinynets.training", "tinynets.tools", "tinynets.bench",
             "tinynets.data", "tinynets.optim", "tinynets.io")
    for name, deps in _graph().items():
        if name.startswith(("tinynets.nn", "tinynets.kernels")):
            assert not [d for d in deps if d.startswith(above)], name


# Plain Python that picks and compiles kernels, with no Numba function of its own
KERNEL_POLICY = {"tinynets.kernels.tiers", "tinynets.kernels.warm"}


def test_kernel_modules_call_no_kernel_of_another_file():
    """Numba's disk cache keys a function on its own file: a kernel that inlined or called a
    function of another file would run stale code after that file changed. A kernel module
    may import only the modules that choose which build runs, which hold no kernels."""
    for path in (PACKAGE / "kernels").glob("*.py"):
        deps = {d for d in _imports(path) if d.startswith("tinynets.kernels")} - KERNEL_POLICY
        assert deps == set(), f"{path.name} imports {deps}"
    for name in KERNEL_POLICY:
        tree = ast.parse((PACKAGE.parent / (name.replace(".", "/") + ".py")).read_text("utf-8"))
        jitted = [n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
                  and any("jit" in ast.dump(d) for d in n.decorator_list)]
        assert not jitted, (name, jitted)


def _modules_after(code: str) -> List[str]:
    probe = (f"import sys\n{code}\nimport json\n"
             "print(json.dumps(sorted(m for m in sys.modules if 'bench' in m "
             f"or m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=PACKAGE.parent, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_tinynets_is_light():
    assert _modules_after("import tinynets") == []


def test_the_summary_command_imports_no_other_command():
    code = ("import contextlib, io\nfrom tinynets.tools.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['summary', 'mobilenet_v2'])")
    assert _modules_after(code) == []
