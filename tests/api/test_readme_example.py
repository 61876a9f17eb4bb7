"""The README's "Python" example runs as written (from README.md if it has the section, else from
docs/python-section.md, the text waiting to go into the README)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python_example() -> str:
    for document in (ROOT / "README.md", ROOT / "docs" / "python-section.md"):
        text = document.read_text(encoding="utf-8")
        section = re.search(r"^## Python\n(.*?)(?=^## |\Z)", text, re.S | re.M)
        if section:
            block = re.search(r"```python\n(.*?)```", section.group(1), re.S)
            assert block, f"{document.name}: the Python section has no ```python block"
            return block.group(1)
    raise AssertionError("neither README.md nor docs/python-section.md has a '## Python' section")


def test_the_example_is_about_ten_lines():
    lines = [line for line in python_example().splitlines() if line.strip()]
    assert 5 <= len(lines) <= 12


@pytest.mark.slow
def test_the_example_runs_as_written(tmp_path):
    shutil.copytree(ROOT / "scenarios", tmp_path / "scenarios")  # as in a checkout: scenarios/ beside you
    result = subprocess.run([sys.executable, "-c", python_example()], cwd=tmp_path, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "npv_mean" in result.stdout and "->" in result.stdout
    assert (tmp_path / "variant.xlsx").stat().st_size > 0
