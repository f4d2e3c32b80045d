"""Every notebook in notebooks/ runs top to bottom without error (executed by nbclient).

The notebooks leave matplotlib's backend alone, so Jupyter renders their plots inline; the
headless run here picks the non-interactive Agg backend through the kernel's environment
(``MPLBACKEND=Agg``), which is also checked to have reached the kernel. ``JAXGEN_QUICK=1``
asks the notebooks for their short variant (fewer training steps, smaller sampling images):
every cell, and every assertion in it, still runs.
"""
import glob
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))
# What would pin a backend from inside a notebook and so hide its plots in Jupyter.
_BACKEND_FORCING = re.compile(r"matplotlib\.use\(|\buse\(\s*[\"']agg|MPLBACKEND", re.I)


def _code(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def test_there_are_notebooks():
    assert any(path.endswith("foundations.ipynb") for path in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_leaves_the_backend_to_jupyter(path):
    nb = nbformat.read(path, as_version=4)
    forcing = [line for source in _code(nb) for line in source.splitlines()
               if _BACKEND_FORCING.search(line)]
    assert not forcing, f"{os.path.basename(path)} sets the matplotlib backend: {forcing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "import matplotlib\nprint('backend:', matplotlib.get_backend())"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute(env=dict(os.environ, MPLBACKEND="Agg", JAXGEN_QUICK="1"))
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, errors
    printed = "".join(out.get("text", "") for out in nb.cells[-1].outputs)
    assert printed.strip().lower() == "backend: agg", printed
