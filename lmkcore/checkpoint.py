"""Checkpoint files: written atomically, loaded with `weights_only=True`, rebuilt into a method.

Finding them (run directories, snapshots, a notebook's checkpoint spec) is `lmkcore.runs`; the
commit a checkpoint records is `lmkcore.provenance.git_commit`."""
from __future__ import annotations

import os
from dataclasses import fields
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
    from .methods import method_class
    from .methods.base import recorded_config

    ck = load(path, map_location)
    cls = method_class(ck["method"], ck.get("method_path"))  # a method defined outside lmkcore: imported
    known = {f.name for f in fields(cls.config_class)}
    unknown = sorted(set(ck["config"]) - known)
    if unknown:  # written by another version of lmkcore (e.g. decode_resolution, now decode_scale)
        raise ValueError(f"{path}: config fields {unknown} are not {cls.config_class.__name__} fields of this "
                         f"lmkcore version (commit {ck.get('commit')}); retrain, or load it with that version")
    method = cls(cls.config_class(**recorded_config(cls.config_class, ck["config"])))
    method.load_state_dict(ck["model"])
    method.eval()
    method.checkpoint_info = {k: ck.get(k) for k in ("step", "run", "dataset", "resolution", "commit")}
    return method


def method_resolution(method, default: int = 64) -> int:
    """The image size a method was trained on (its checkpoint's, else its config's `resolution`)."""
    info = getattr(method, "checkpoint_info", None) or {}
    return int(info.get("resolution") or getattr(method.config, "resolution", default) or default)
