"""Checkpoints: written atomically, loaded with `weights_only=True`, rebuilt into a method."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=True)


def load_method(path: str | os.PathLike, map_location="cpu"):
    """A trained method from a checkpoint (`last.pt` or a `model_*.pt` snapshot), in eval mode."""
    from .methods import METHODS

    ck = load(path, map_location)
    cls = METHODS[ck["method"]]
    method = cls(cls.config_class(**ck["config"]))
    method.load_state_dict(ck["model"])
    method.eval()
    method.checkpoint_info = {k: ck.get(k) for k in ("step", "run", "dataset", "resolution", "commit")}
    return method


def git_commit() -> str:
    """The workbook's current commit (with '+dirty' for uncommitted changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (sha + ("+dirty" if dirty else "")) or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
