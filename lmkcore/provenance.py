"""Provenance: which commit of the workbook produced a run, an evaluation or a table."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path


def git_commit() -> str:
    """The workbook's current commit (with '+dirty' for uncommitted changes to anything but
    `reports/`, which runs write while others train), or 'unknown'. `LMK_COMMIT`, where set, is taken
    instead: a copy of the work tree on another machine may carry no git, or stale git metadata."""
    if os.environ.get("LMK_COMMIT"):
        return os.environ["LMK_COMMIT"]
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)reports"],
                               cwd=root, capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
