"""Checkpoints: written atomically, loaded with `weights_only=True`, rebuilt into a method."""
from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, fields
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

    ck = load(path, map_location)
    cls = method_class(ck["method"], ck.get("method_path"))  # a method defined outside lmkcore: imported
    known = {f.name for f in fields(cls.config_class)}
    unknown = sorted(set(ck["config"]) - known)
    if unknown:  # written by another version of lmkcore (e.g. decode_resolution, now decode_scale)
        raise ValueError(f"{path}: config fields {unknown} are not {cls.config_class.__name__} fields of this "
                         f"lmkcore version (commit {ck.get('commit')}); retrain, or load it with that version")
    method = cls(cls.config_class(**ck["config"]))
    method.load_state_dict(ck["model"])
    method.eval()
    method.checkpoint_info = {k: ck.get(k) for k in ("step", "run", "dataset", "resolution", "commit")}
    return method


def method_resolution(method, default: int = 64) -> int:
    """The image size a method was trained on (its checkpoint's, else its config's `resolution`)."""
    info = getattr(method, "checkpoint_info", None) or {}
    return int(info.get("resolution") or getattr(method.config, "resolution", default) or default)


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


def workbook_path(path) -> Path:
    """Relative paths as given, except in the workbook's `notebooks/` folder (a JupyterLab kernel's
    working directory), where they are taken from the workbook root, as papermill runs them."""
    p, cwd = Path(path), Path.cwd()
    if p.is_absolute() or cwd.name != "notebooks" or not (cwd.parent / "lmkcore").is_dir():
        return p
    return cwd.parent / p


# finding checkpoints: run directories hold last.pt and model_<step>.pt snapshots

@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file and the label it is shown under (`run@step`)."""

    path: Path
    label: str
    step: int | None = None


def _snapshot_step(path: Path) -> int | None:
    m = re.fullmatch(r"model_(\d+)\.pt", path.name)
    return int(m.group(1)) if m else None


def run_checkpoints(run_dir: Path) -> list[Checkpoint]:
    """The snapshots of one run, oldest first (`model_<step>.pt`; `last.pt` when there are none).

    The trainer writes `last.pt` and the newest snapshot together, so the newest snapshot stands
    for `last.pt` and each state is listed once."""
    run_dir = Path(run_dir)
    snaps = sorted((s, p) for p in run_dir.glob("model_*.pt") if (s := _snapshot_step(p)) is not None)
    if snaps:
        return [Checkpoint(p, f"{run_dir.name}@{s}", s) for s, p in snaps]
    last = run_dir / "last.pt"
    return [Checkpoint(last, f"{run_dir.name}@last")] if last.is_file() else []


def find_checkpoints(runs_dir: str | Path) -> list[Checkpoint]:
    """Every run's snapshots under `runs_dir`, newest run first."""
    root = workbook_path(runs_dir)
    if not root.is_dir():
        return []
    runs = {p.parent for p in root.rglob("*.pt") if p.name == "last.pt" or _snapshot_step(p) is not None}
    runs = sorted(runs, key=lambda r: max(p.stat().st_mtime for p in r.glob("*.pt")), reverse=True)
    return [c for r in runs for c in run_checkpoints(r)]


def resolve_checkpoints(spec, runs_dir: str | Path = "runs") -> tuple[list[Checkpoint], list[Checkpoint]]:
    """(available, selected) from a spec: "" (the newest under `runs_dir`; all of them available),
    "all", or comma-separated checkpoint files / run directories (a run directory selects its newest
    snapshot and makes its earlier ones available)."""
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(s) for s in spec)
    spec = (spec or "").strip()
    found = find_checkpoints(runs_dir)
    if spec == "":
        if not found:
            return [], []
        newest_run = found[0].path.parent
        return found, [run_checkpoints(newest_run)[-1]]
    if spec == "all":
        return found, list(found)
    available, selected = [], []
    for part in (s.strip() for s in spec.split(",") if s.strip()):
        p = workbook_path(part)
        if p.is_dir():
            cks = run_checkpoints(p)
            if not cks:
                raise FileNotFoundError(f"no checkpoints (last.pt, model_*.pt) in {p}")
            available += cks
            selected.append(cks[-1])
        elif p.is_file():
            s = _snapshot_step(p)
            ck = Checkpoint(p, f"{p.parent.name}@{s if s is not None else p.stem}", s)
            available.append(ck)
            selected.append(ck)
        else:
            raise FileNotFoundError(f"checkpoint {part!r} is neither a file nor a run directory")
    seen, unique = set(), []
    for c in available:
        if c.label not in seen:
            seen.add(c.label)
            unique.append(c)
    return unique, selected
