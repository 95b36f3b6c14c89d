"""The layers import only downward, and no module imports itself round a cycle.

Every import of every module under service/ counts, at any depth (an import inside a function is
still an import: that is how cycles used to be dodged). The layers, from the bottom:

    version, config            no service imports (config is read by gunicorn.conf.py before anything)
    core                       the pure NumPy engine: numpy and scipy only, never Flask, marshmallow,
                               the output layer, the API or the CLI
    output                     the report and the artifacts: core
    document                   the boundary (marshmallow): core, output
    limits                     core, output, config
    fetch                      the fetch client: output (the formats registry)
    api, cli, openapi          the entry points: anything below
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SERVICE = ROOT / "service"

#: layer of a module (by its first component under ``service``) -> the layers it may import.
LAYERS = {
    "version": set(),
    "config": set(),
    "core": {"core", "version"},
    "output": {"output", "core", "version"},
    "document": {"document", "core", "output", "version"},
    "limits": {"core", "output", "config"},
    "fetch": {"fetch", "output", "version"},
    "api": {"api", "core", "output", "document", "limits", "config", "version"},
    "cli": {"cli", "core", "output", "document", "fetch", "config", "version"},
    "openapi": {"openapi", "api", "core", "output", "document", "limits", "config", "version"},
    "__main__": {"cli"},
}
#: third-party packages each layer may use (the standard library is always allowed).
THIRD_PARTY = {
    "core": {"numpy", "scipy"},
    "output": {"numpy", "orjson"},
    "document": {"marshmallow"},
    "api": {"flask", "werkzeug", "orjson", "numpy", "yaml", "flask_swagger_ui", "marshmallow", "prometheus_client",
            "gunicorn"},
    "cli": {"orjson", "numpy"},
    "fetch": {"numpy"},
    "openapi": {"yaml", "orjson"},
}
KNOWN_THIRD_PARTY = {"numpy", "scipy", "orjson", "flask", "werkzeug", "marshmallow", "yaml", "flask_swagger_ui",
                     "gunicorn", "requests", "prometheus_client"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SERVICE.rglob("*.py")}


def imports(name: str) -> tuple[set[str], set[str]]:
    """(service modules, third-party top-level packages) a module imports, anywhere in it."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours if alias.name.startswith("service") else theirs).add(alias.name if alias.name.startswith(
                    "service") else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("service"):
                theirs.add(target.split(".")[0])
                continue
            for alias in node.names:  # `from . import x` imports the submodule x when there is one
                sub = f"{target}.{alias.name}"
                ours.add(sub if sub in MODULES else target)
    ours = {m for m in ours if m != "service"}  # the root package (its version re-export) is no layer
    return ours, {t for t in theirs if t in KNOWN_THIRD_PARTY}


def layer(name: str) -> str:
    return name.split(".")[1] if name.count(".") else "__init__"


GRAPH = {name: imports(name)[0] for name in MODULES}


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n != "service"))
def test_a_module_imports_only_downward(name):
    allowed = LAYERS[layer(name)]
    ours, theirs = imports(name)
    upward = sorted(m for m in ours if layer(m) not in allowed)
    assert not upward, f"{name} ({layer(name)}) imports {upward}, outside {sorted(allowed)}"
    foreign = sorted(theirs - THIRD_PARTY.get(layer(name), set()))
    assert not foreign, f"{name} ({layer(name)}) imports {foreign}"


def test_no_import_cycles():
    """Tarjan's strongly connected components over the module graph: each must be one module."""
    index, low, stack, on, cycles = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in GRAPH.get(v, ()):
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_only_deferred_import_of_the_service_is_the_app_factory():
    """``import service.core`` must not pull Flask in: ``service.create_app`` imports the API when called.
    Every other import of the service's own modules is at the top of its module, where a reader looks
    for it (deferred imports of heavy third-party modules, scipy's, are fine)."""
    deferred = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for node in ast.walk(fn):
                    if (isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("service"))
                            or isinstance(node, ast.Import) and any(a.name.startswith("service") for a in node.names)):
                        deferred.append(f"{name}.{fn.name}")
    assert sorted(set(deferred)) == ["service.create_app"]
