"""examples/tutorial.ipynb: committed without outputs, and it runs from top to bottom."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

TUTORIAL = Path(__file__).resolve().parents[1] / "examples" / "tutorial.ipynb"
#: The tutorial is a newcomer's first half hour, not a benchmark: it runs in seconds.
MAX_SECONDS = 30


def test_the_committed_notebook_has_no_outputs():
    notebook = nbformat.read(TUTORIAL, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    for number, cell in enumerate(code, 1):
        assert cell.outputs == [], f"code cell {number} has outputs: strip them"
        assert cell.execution_count is None, f"code cell {number} has an execution count"


@pytest.mark.slow
def test_the_tutorial_runs_end_to_end(tmp_path):
    notebook = nbformat.read(TUTORIAL, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    client.execute()  # raises CellExecutionError at the first failing cell (or assert)
    seconds = time.monotonic() - start
    text = "\n".join(output.get("text", "") for cell in notebook.cells
                     if cell.cell_type == "code" for output in cell.outputs)
    # What each step is there to show, as the reader sees it.
    assert "z11 = 0 w11 + 0 w12 + 0 w21 + x11 w22 + b" in text  # the worked example
    assert "grad_x: proven on all 9 elements" in text             # the closed forms
    assert "largest difference from finite differences" in text   # the generated module
    assert "wrong: 9 of 9 elements of dL/dx differ" in text       # the formula's mistake
    assert "correct: all 9 elements of dL/dx agree" in text       # and its correction
    assert "likely mistake: bias not summed over the batch" in text  # the student's bug
    assert "agrees with SymPy's derivation on 3 input sizes" in text  # and the fix
    assert r"\delta" in text                                        # the handout's names
    if shutil.which("pdflatex"):
        assert "handout.pdf" in text
    assert list(tmp_path.iterdir()) == []  # it wrote only to its own temporary folder
    assert seconds < MAX_SECONDS, f"the tutorial took {seconds:.0f} s"
