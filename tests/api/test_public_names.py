"""The public surface: every name in `evlaunch.__all__` resolves, is documented, and `import evlaunch` is light."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import evlaunch

ROOT = Path(__file__).resolve().parents[2]


def test_every_public_name_resolves():
    for name in evlaunch.__all__:
        assert getattr(evlaunch, name) is not None, name
    assert set(dir(evlaunch)) >= set(evlaunch.__all__)


def test_unknown_names_raise_attribute_error():
    try:
        evlaunch.Simulate  # noqa: B018
    except AttributeError as error:
        assert "Simulate" in str(error)
    else:
        raise AssertionError("evlaunch.Simulate should not exist")


def test_every_public_name_is_in_the_api_reference():
    reference = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)[`(.]", reference))
    missing = [name for name in evlaunch.__all__ if name not in documented]
    assert not missing, f"docs/api.md does not describe {missing}"


def test_errors_are_the_projects():
    from evlaunch import errors

    for name in ("EvlaunchError", "ScenarioError", "DataError", "RunError"):
        assert getattr(evlaunch, name) is getattr(errors, name)


def test_import_is_light():
    code = "import sys, evlaunch; print(sorted(m for m in ('pandas', 'numpy', 'duckdb', 'evlaunch.api') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_layers_around_the_api():
    """Nothing inside the package imports the package root (the public API) but `_version`; the API is a
    top layer beside cli and web and imports neither."""
    package = ROOT / "src" / "evlaunch"
    for path in package.rglob("*.py"):
        if path == package / "__init__.py":
            continue
        assert "evlaunch" not in _imports(path), f"{path.relative_to(ROOT)} imports the package root"
    for path in (package / "api").glob("*.py"):
        assert not any(name.startswith(("evlaunch.cli", "evlaunch.web")) for name in _imports(path)), path
