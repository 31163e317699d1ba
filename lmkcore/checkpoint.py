"""Checkpoint files: written atomically, loaded with `weights_only=True`, rebuilt into a method.

Finding them (run directories, snapshots, a notebook's checkpoint spec) is `lmkcore.runs`; the
commit a checkpoint records is `lmkcore.provenance.git_commit`."""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import torch


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


def save_atomic(obj: dict, path: str | os.PathLike) -> None:
    """Write to a temporary file beside `path`, then rename: a crash never leaves half a file, and a failed
    write (a full disk) leaves no temporary file and names `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch reports a full disk as a RuntimeError from its zip writer
        tmp.unlink(missing_ok=True)
        free = _free_bytes(path.parent)
        raise OSError(f"could not write {path} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else e}"
                      f"{f'; {free / 2**20:.0f} MiB free on its disk' if free is not None else ''})") from e


def _free_bytes(folder: Path) -> int | None:
    try:
        st = os.statvfs(folder)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def load(path: str | os.PathLike, map_location="cpu") -> dict:
    """A checkpoint's dict, read with `weights_only=True`; a missing, truncated or foreign file is an error naming it
    (and, for a missing one, the checkpoints beside it)."""
    path = Path(path)
    if not path.is_file():
        near = sorted(p.name for p in path.parent.glob("*.pt"))[:8] if path.parent.is_dir() else []
        raise FileNotFoundError(f"no checkpoint at {path}" + (f"; that folder holds {near}" if near else ""))
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError... for bad files
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"{path}: holds a {type(ck).__name__}, not a checkpoint dict")
    return ck


def load_method(path: str | os.PathLike, map_location="cpu"):
    """A trained method from a checkpoint (`last.pt` or a `model_*.pt` snapshot), in eval mode."""
    from .methods import method_class
    from .methods.base import recorded_config

    ck = load(path, map_location)
    lost = [k for k in ("method", "config", "model") if k not in ck]
    if lost:
        raise CheckpointError(f"{path}: no {lost} (has {sorted(ck)}); not a checkpoint written by lmkcore.train")
    try:
        cls = method_class(ck["method"], ck.get("method_path"))  # a method defined outside lmkcore: imported
    except (KeyError, ImportError, AttributeError) as e:
        raise CheckpointError(f"{path}: its method {ck['method']!r} is not available here ({e})") from None
    known = {f.name for f in fields(cls.config_class)}
    unknown = sorted(set(ck["config"]) - known)
    if unknown:  # written by another version of lmkcore (e.g. decode_resolution, now decode_scale)
        raise ValueError(f"{path}: config fields {unknown} are not {cls.config_class.__name__} fields of this "
                         f"lmkcore version (commit {ck.get('commit')}); retrain, or load it with that version")
    method = cls(cls.config_class(**recorded_config(cls.config_class, ck["config"])))
    try:
        method.load_state_dict(ck["model"])
    except RuntimeError as e:  # another K or architecture than its recorded config builds
        raise CheckpointError(f"{path}: its weights do not fit the {cls.name} its config builds "
                              f"({str(e).splitlines()[1].strip() if len(str(e).splitlines()) > 1 else e})") from None
    method.eval()
    method.checkpoint_info = {k: ck.get(k) for k in ("step", "run", "experiment", "dataset", "resolution", "commit")}
    method.checkpoint_info["path"] = str(path)
    return method


def method_resolution(method, default: int = 64) -> int:
    """The image size a method was trained on (its checkpoint's, else its config's `resolution`)."""
    info = getattr(method, "checkpoint_info", None) or {}
    return int(info.get("resolution") or getattr(method.config, "resolution", default) or default)
