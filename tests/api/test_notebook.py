"""examples/decision.ipynb executes headless from top to bottom (so it cannot rot)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOK = Path(__file__).resolve().parents[2] / "examples" / "decision.ipynb"


@pytest.mark.slow
def test_decision_notebook_runs(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output["data"]["text/html"] for output in outputs
            if output.output_type == "display_data" and "text/html" in output.get("data", {})]
    plotly_html = [text for text in html if "plotly" in text.lower()]
    assert len(plotly_html) >= 5   # the five charts
    # plotly.js is embedded (the charts work offline), not loaded from a CDN
    assert any(len(text) > 1_000_000 and "Plotly" in text for text in html)
    assert not any(re.search(r"<script[^>]*src=[^>]*plot\.ly", text) for text in html)
    text = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "recommended" in text and "holds in" in text   # the decision and the discovered box
