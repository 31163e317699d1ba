"""Notebooks: committed without outputs, one `parameters` cell, in sync with notebooks/src."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert "01_prepare_data.ipynb" in names and "02_train_autolink.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_and_one_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), f"{path.name} has outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_notebooks_match_their_sources():
    r = subprocess.run([sys.executable, str(REPO / "tools" / "build_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_prepare_data_runs_through_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "01_prepare_data.ipynb"), str(out), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path),
                               parameters=dict(out_path=str(tmp_path / "p.h5"), resolution=32, n_images=12,
                                               report_dir=str(tmp_path / "reports")))
    assert (tmp_path / "p.h5").is_file()
    assert (tmp_path / "reports" / "procedural_contact_sheet.png").stat().st_size > 1000
    text = out.read_text()
    assert "12 images of 32 px" in text


def test_autolink_notebook_declares_every_config_field_with_the_cpu_profile_defaults():
    """The bench passes every AutoLinkConfig field to 02 (`Bench.config`); 02's own defaults are the
    cpu profile's compact configuration, written once in `profiles.COMPACT_ADDITIONS`."""
    import ast
    import dataclasses

    papermill = pytest.importorskip("papermill")
    from lmkcore.methods.autolink import AutoLinkConfig
    from lmkcore.profiles import COMPACT_ADDITIONS, CPU

    params = papermill.inspect_notebook(str(REPO / "notebooks" / "02_train_autolink.ipynb"))
    fields = {f.name: f.default for f in dataclasses.fields(AutoLinkConfig)}
    assert set(fields) <= set(params), f"02 lacks parameters {sorted(set(fields) - set(params))}"
    defaults = {k: ast.literal_eval(params[k]["default"]) for k in fields}
    expected = {**fields, **CPU.autolink}
    assert {k: defaults[k] for k in COMPACT_ADDITIONS} == COMPACT_ADDITIONS
    differ = {k: (defaults[k], expected[k]) for k in fields if defaults[k] != expected[k]}
    assert set(differ) <= {"n_parts", "resolution"}, differ
