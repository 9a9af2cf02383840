"""Layers: an import only ever points down, so no module imports one that (through others) imports it back.

Every import statement counts, at any depth of a file (a function's lazy import too), except those under
``if TYPE_CHECKING:``, which never run. envs/ and agents/ are read as rlkit.envs and rlkit.agents, as
pyproject.toml installs them.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"rlkit": "rlkit", "envs": "rlkit.envs", "agents": "rlkit.agents", "hydra_plugins": "hydra_plugins"}


def module_name(path: Path) -> str:
    top, *rest = path.relative_to(ROOT).with_suffix("").parts
    parts = [*PACKAGES[top].split("."), *rest]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each module of the project -> the project's modules it imports."""
    files = {module_name(p): p for top in PACKAGES for p in (ROOT / top).rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        tree = ast.parse(path.read_text(), str(path))
        for block in ast.walk(tree):
            if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test):
                block.body = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, level - 1 packages up
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*up, base] if base else up)
                names = [base, *(f"{base}.{a.name}" for a in node.names)]
            else:
                continue
            for name in names:
                while name and name not in files:  # a name imported from a module is that module
                    name = name.rpartition(".")[0]
                if name and name != mod:
                    graph[mod].add(name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    graph = import_graph()
    described = [
        f"circle of {len(c)} modules:\n" + "\n".join(f"  {m} -> {', '.join(sorted(graph[m] & set(c)))}" for m in c)
        for c in circles(graph)
    ]
    assert not described, "\n".join(described)


def test_only_the_console_entry_imports_the_cli():
    importers = sorted(m for m, imported in import_graph().items() if "rlkit.cli" in imported)
    assert importers == [], f"these modules import rlkit.cli, the top layer: {', '.join(importers)}"


def test_the_graph_reads_every_kind_of_import():
    graph = import_graph()
    assert "rlkit.errors" in graph["rlkit.config"]  # from rlkit.errors import ...
    assert "rlkit.optuna_sweeper" in graph["hydra_plugins.rlkit_plugins"]  # import rlkit.optuna_sweeper as ...
    assert "rlkit.envs" in graph and "rlkit.agents.base" in graph  # envs/ and agents/ under their installed names


# Bottom to top, as README.md's Development section lists them: a module may import its own layer and those below.
LAYERS = [
    ("rlkit.errors", "rlkit.files", "rlkit.callbacks", "rlkit.video", "rlkit.signals", "rlkit.ray_address"),
    ("rlkit.envs", "rlkit.env_schemas"),
    ("rlkit.agents",),
    ("rlkit.factory", "rlkit.config", "rlkit.manual"),
    ("rlkit.resume", "rlkit.runs"),
    ("rlkit.evaluate", "rlkit.trainer", "rlkit.verify", "rlkit.exporter"),
    ("rlkit.multirun", "rlkit.plot", "rlkit.optuna_sweeper", "rlkit.ray_launcher", "hydra_plugins"),
    ("rlkit.cli", "rlkit.api"),
]


def layer_of(module: str) -> int | None:
    for level, names in enumerate(LAYERS):
        if any(module == n or module.startswith(f"{n}.") for n in names):
            return level
    return None


def test_every_import_points_down_the_layers():
    graph = import_graph()
    unplaced = sorted(m for m in graph if layer_of(m) is None and m not in ("rlkit", "rlkit.agents"))
    assert not unplaced, f"modules in no layer (add them to LAYERS and the README): {', '.join(unplaced)}"
    upward = [f"{m} (layer {layer_of(m)}) imports {i} (layer {layer_of(i)})"
              for m, imported in sorted(graph.items()) for i in sorted(imported)
              if layer_of(m) is not None and layer_of(i) is not None and layer_of(i) > layer_of(m)]
    assert not upward, "imports that point up:\n" + "\n".join(upward)
