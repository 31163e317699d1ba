"""Paths as a notebook names them: the same relative path works from the workbook root (papermill,
the command line) and from its `notebooks/` folder (a JupyterLab kernel's working directory)."""
from __future__ import annotations

from pathlib import Path


def workbook_path(path) -> Path:
    """Relative paths as given, except in the workbook's `notebooks/` folder (a JupyterLab kernel's
    working directory), where they are taken from the workbook root, as papermill runs them."""
    p, cwd = Path(path), Path.cwd()
    if p.is_absolute() or cwd.name != "notebooks" or not (cwd.parent / "lmkcore").is_dir():
        return p
    return cwd.parent / p
