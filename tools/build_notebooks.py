"""Build `notebooks/*.ipynb` from their `py:percent` sources in `notebooks/src/`.

    python tools/build_notebooks.py            # rebuild every notebook
    python tools/build_notebooks.py --check    # fail if a notebook differs from its source

Cells start with `# %%` (code) or `# %% [markdown]`; `# %% tags=["parameters"]` tags the
papermill parameters cell. Notebooks are written without outputs.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SRC, OUT = ROOT / "notebooks" / "src", ROOT / "notebooks"
HEADER = re.compile(r"^# %%(?: \[(markdown)\])?(?: tags=\[(.*)\])?\s*$")


def build(src: Path) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    # what JupyterLab writes on opening with ipykernel's kernel: the notebooks open unmodified
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
                   "language_info": {"name": "python", "codemirror_mode": {"name": "ipython", "version": 3},
                                     "file_extension": ".py", "mimetype": "text/x-python",
                                     "nbconvert_exporter": "python", "pygments_lexer": "ipython3"}}
    cells, kind, tags, lines = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if tags:
                cell.metadata["tags"] = tags
            cells.append(cell)

    for line in src.read_text().splitlines():
        m = HEADER.match(line)
        if m:
            flush()
            kind = "markdown" if m.group(1) else "code"
            tags = [t.strip().strip("\"'") for t in m.group(2).split(",")] if m.group(2) else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    for i, c in enumerate(cells):
        c["id"] = f"{src.stem[:3]}-{i:02d}"
    nb.cells = cells
    return nb


def main(argv=None) -> int:
    check = "--check" in (argv or sys.argv[1:])
    stale = []
    for src in sorted(SRC.glob("*.py")):
        text = nbformat.writes(build(src)) + "\n"
        out = OUT / f"{src.stem}.ipynb"
        if check:
            if not out.exists() or out.read_text() != text:
                stale.append(out.name)
        else:
            out.write_text(text)
    if stale:
        print("out of date with notebooks/src (run python tools/build_notebooks.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
