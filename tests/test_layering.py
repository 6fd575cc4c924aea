"""The package's floor plan: imports flow one way through the layers, no cycles, one job per module.

Walks every module's imports with `ast` (those inside functions too) and fails on an import
cycle, on an import from a lower layer to a higher one, on a module no layer names, on a module
without a first docstring line stating its job, and on a module over the size limit that is not
one cohesive algorithm.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import comptrust_plugin

PACKAGE = "comptrust_plugin"
ROOT = Path(comptrust_plugin.__file__).parent

# Low to high. A module may import from its own layer (without a cycle) and from lower ones.
# A name ending in ".*" covers a package and everything in it; the most specific entry wins.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("comptrust_plugin", "errors", "shared_cache", "storage", "schemas", "data.files", "devices", "distribution"),
    ("spec", "models.*"),
    ("compress.*", "engine.*", "scorers.*"),
    ("dimensions.*",),
    ("decodingtrust.*", "data", "data.probes"),
    ("paired", "multiplicity", "capability"),
    ("gate", "baseline", "answers", "report", "plot", "results_csv", "compare", "lm_eval_results", "merge"),
    ("shards",),
    ("flags", "options", "preflight", "handles", "session", "exporting"),
    ("plugin", "cli", "pytest_support", "collection"),
)
MAX_LINES = 400
# Modules allowed past MAX_LINES, each one cohesive algorithm (say why).
COHESIVE: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([PACKAGE, *parts])] = path
    return found


MODULES = _modules()


def _layer(module: str) -> int:
    name = module.removeprefix(PACKAGE + ".") if module != PACKAGE else PACKAGE
    best: tuple[int, int] | None = None  # (specificity, layer)
    for index, entries in enumerate(LAYERS):
        for entry in entries:
            if entry.endswith(".*"):
                base = entry[:-2]
                if name == base or name.startswith(base + "."):
                    candidate = (len(base), index)
                    best = candidate if best is None or candidate[0] > best[0] else best
            elif name == entry:
                return index
    if best is None:
        raise KeyError(module)
    return best[1]


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    for _ in range(node.level - 1):
        package = package.rsplit(".", 1)[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str, path: Path) -> set[str]:
    """Project modules that `module` imports, anywhere in its code (TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, path, node)
            # `from package import submodule` imports the submodule; `from module import name` the module
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def test_every_module_has_a_layer() -> None:
    unplaced = []
    for module in MODULES:
        try:
            _layer(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"


def test_no_import_goes_up_a_layer() -> None:
    upward = [
        f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})"
        for module, targets in GRAPH.items()
        for target in sorted(targets)
        if _layer(target) > _layer(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []
    cycles: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append(" -> ".join([*stack[stack.index(target):], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_states_its_job_first(module: str) -> None:
    docstring = ast.get_docstring(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    assert docstring, f"{module}: no module docstring"
    first = docstring.splitlines()[0]
    assert first.strip() and first.rstrip().endswith((".", "?", ":", ")")), f"{module}: first line is not a statement"


def test_modules_stay_small_unless_one_algorithm() -> None:
    large = {
        module: len(path.read_text(encoding="utf-8").splitlines()) for module, path in MODULES.items()
    }
    over = {m: n for m, n in large.items() if n > MAX_LINES and m not in COHESIVE}
    assert not over, f"split these modules (or name them in COHESIVE with a reason): {over}"


def test_the_layer_walk_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The walk counts an import inside a function like one at the top (a hidden upward import fails)."""
    source = "def f():\n    from ..session import TrustSession\n    return TrustSession\n"
    tree = ast.parse(source)
    node = next(n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom))
    assert _resolve(f"{PACKAGE}.dimensions.toxicity", ROOT / "dimensions" / "toxicity.py", node) == f"{PACKAGE}.session"
    assert _layer(f"{PACKAGE}.session") > _layer(f"{PACKAGE}.dimensions.toxicity")
