"""The code's shape, checked from its syntax trees (no imports): short functions, imports at module level,
nothing importing the package root. `make lint` checks the layers and cycles (import-linter) and the
complexity limits (ruff); this test keeps the two rules those tools cannot state."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src" / "evlaunch"
MAX_FUNCTION_LINES = 80

# Imports that may stay inside a function outside cli/: optional, heavy, and needed by one code path
# only. Import times measured with `python -X importtime` after `import evlaunch.runs.runner` (so numpy,
# scipy, pandas are already loaded) on the project's 2-core build machine.
LAZY_IMPORTS: dict[tuple[str, str], str] = {
    ("analysis/discovery.py", "ema_workbench"): "about 4 s to import; only scenario discovery (PRIM) needs it",
    ("studies/backtest.py", "scoringrules"): "about 9 s to import (it loads its array backends); only CRPS scoring",
    ("runs/execution.py", "distributed"): "about 1.3 s to import; only runs on a dask cluster or several workers",
    ("runs/execution.py", "dask"): "about 0.7 s to import; only runs on a dask cluster or several workers",
    ("runs/execution.py", "fcntl"): "POSIX only: the lock falls back where the module does not exist",
    ("runs/draw_table.py", "duckdb"): "about 0.45 s to import; only the out-of-core sort beyond the memory budget",
    ("runs/store.py", "duckdb"): "about 0.45 s to import; only when the run store is opened",
}


def _modules() -> list[Path]:
    return sorted(p for p in SOURCE.rglob("*.py") if "templates" not in p.relative_to(SOURCE).parts)


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names (relative imports resolved to their text)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    return ["." * node.level + (node.module or "")]


def long_functions(path: Path, root: Path = SOURCE, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`file:function (N lines)` for each function or method whose span, decorators included, exceeds `limit`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in _functions(tree):
        first = min([node.lineno] + [d.lineno for d in node.decorator_list])
        length = node.end_lineno - first + 1
        if length > limit:
            found.append(f"{path.relative_to(root)}:{node.name} ({length} lines)")
    return found


def imports_in_functions(path: Path, root: Path = SOURCE) -> list[tuple[str, str, str]]:
    """(relative file, function, imported module) for every import statement inside a function body."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = path.relative_to(root).as_posix()
    found = []
    for function in _functions(tree):
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.extend((relative, function.name, module) for module in _imported(node))
    return sorted(set(found))


def imports_of_root(path: Path, root: Path = SOURCE) -> list[str]:
    """Imports of the `evlaunch` root module itself (the lazy public API), anywhere in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(alias.name == "evlaunch" for alias in node.names):
            found.append(f"{path.relative_to(root)}:{node.lineno} import evlaunch")
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "evlaunch":
            found.append(f"{path.relative_to(root)}:{node.lineno} from evlaunch import ...")
    return found


def test_the_checks_see_what_they_are_meant_to_see(tmp_path):
    """The checks themselves: a long function, a nested import and a root import are found, and their
    short, top-level, submodule counterparts are not."""
    package = tmp_path / "src" / "evlaunch"
    package.mkdir(parents=True)
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    sample = package / "sample.py"
    sample.write_text("import numpy\nfrom evlaunch.errors import EvlaunchError\nfrom evlaunch import run\n\n"
                      f"def long():\n{body}\n\n"
                      "def short():\n    import json\n    from .sibling import thing\n    return json, thing\n",
                      encoding="utf-8")
    assert long_functions(sample, package) == [f"sample.py:long ({MAX_FUNCTION_LINES + 1} lines)"]
    assert long_functions(sample, package, limit=MAX_FUNCTION_LINES + 1) == []
    assert imports_in_functions(sample, package) == [("sample.py", "short", ".sibling"),
                                                     ("sample.py", "short", "json")]
    assert imports_of_root(sample, package) == ["sample.py:3 from evlaunch import ..."]


def test_no_function_is_longer_than_80_lines():
    too_long = [found for path in _modules() for found in long_functions(path)]
    assert not too_long, "split these into named steps:\n" + "\n".join(too_long)


def test_imports_sit_at_module_level_outside_the_cli():
    """An import inside a function hides a dependency (often a cycle dodged); the CLI may import lazily
    for start-up time, and LAZY_IMPORTS names the few heavy optional libraries elsewhere."""
    nested = [(file, function, module) for path in _modules() if path.relative_to(SOURCE).parts[0] != "cli"
              for file, function, module in imports_in_functions(path)
              if (file, module.split(".")[0]) not in LAZY_IMPORTS]
    assert not nested, "move these imports to the top of the module:\n" + "\n".join(
        f"{file}:{function} imports {module}" for file, function, module in nested)


@pytest.mark.parametrize("key", sorted(LAZY_IMPORTS))
def test_every_allowed_lazy_import_is_still_there(key):
    """The allow-list shrinks with the code: an entry whose import has gone must be removed."""
    file, module = key
    present = {m.split(".")[0] for _, _, m in imports_in_functions(SOURCE / file)}
    assert module in present, f"{file} no longer imports {module} lazily; drop it from LAZY_IMPORTS"


def test_nothing_inside_the_package_imports_its_root():
    """`evlaunch/__init__.py` is the public API; modules import what they use from its submodules."""
    found = [f for path in _modules() if path.name != "__init__.py" or path.parent != SOURCE
             for f in imports_of_root(path)]
    assert not found, "\n".join(found)


def private_imports(path: Path, root: Path = SOURCE) -> list[str]:
    """`file:line what` for each private name a module takes from evlaunch: an imported module or name
    starting with "_" (dunders such as `__version__` aside; `evlaunch._version` is the one private module
    every layer may import), or an `_attribute` read off a module imported from evlaunch."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    relative = path.relative_to(root).as_posix()

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != "evlaunch":
                    continue
                modules.add(alias.asname or alias.name.split(".")[0])
                if alias.name != "evlaunch._version" and any(map(private, alias.name.split("."))):
                    found.append(f"{relative}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] == "evlaunch"):
            module = "." * node.level + (node.module or "")
            parts = [part for part in (node.module or "").split(".") if part]
            for alias in node.names:
                modules.add(alias.asname or alias.name)
                if (module != "evlaunch._version" and any(map(private, parts))) or private(alias.name):
                    found.append(f"{relative}:{node.lineno} from {module} import {alias.name}")
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{relative}:{node.lineno} {node.value.id}.{node.attr}")
    return sorted(set(found))


def test_the_private_import_check_sees_private_names(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from evlaunch.runs.runner import _model, load_model\nfrom evlaunch.runs import runner\n"
                      "from evlaunch._version import __version__\nimport evlaunch._secret\n"
                      "from .sibling import _helper\nfrom evlaunch.api.run import Run\n"
                      "model = runner._model('', '', '')\nfine = Run.__name__, runner.load_model\n", encoding="utf-8")
    assert private_imports(sample, tmp_path) == [
        "sample.py:1 from evlaunch.runs.runner import _model", "sample.py:4 import evlaunch._secret",
        "sample.py:5 from .sibling import _helper", "sample.py:7 runner._model"]


@pytest.mark.parametrize("layer", ["cli", "web"])
def test_cli_and_web_import_nothing_private(layer):
    """The command line and the dashboard are thin layers over the public API (issue 15): they reach no
    private name of the package (what the API lacks is added to it, typed and documented)."""
    found = [f for path in sorted((SOURCE / layer).rglob("*.py")) for f in private_imports(path)]
    assert not found, "import public names instead (add them to evlaunch.api if missing):\n" + "\n".join(found)
