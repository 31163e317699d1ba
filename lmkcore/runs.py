"""Runs and their checkpoints: a run directory holds `last.pt` and `model_<step>.pt` snapshots
(`lmkcore.train`); here they are found under a runs directory and chosen by the spec a notebook or a
command line gives (`resolve_checkpoints`). Reading a checkpoint is `lmkcore.checkpoint`."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .paths import workbook_path


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file and the label it is shown under (`run@step`)."""

    path: Path
    label: str
    step: int | None = None


def short_labels(labels: list[str]) -> tuple[str, dict[str, str]]:
    """(shared, {label: short}) for choosing among checkpoints: what the `run@step` labels' run names share,
    shown once (`*` where they differ), and what tells each label apart: `…_sklr64@1000` and `…@1250` read
    `@1000` and `@1250`; `autolink_k6_…@2` and `autolink_k4_…@2` read `k6@2` and `k4@2`. Labels without `@`
    (an untrained model) are kept whole."""
    runs = {lb: lb.rpartition("@")[0] for lb in labels if "@" in lb}
    if not runs:
        return "", {lb: lb for lb in labels}
    names = sorted(set(runs.values()))
    tokens = [n.split("_") for n in names]
    if len(names) == 1:
        shared, part = names[0], {names[0]: ""}
    elif len({len(t) for t in tokens}) == 1:  # same fields: keep the ones that differ
        differ = [i for i in range(len(tokens[0])) if len({t[i] for t in tokens}) > 1]
        shared = "_".join("*" if i in differ else tok for i, tok in enumerate(tokens[0]))
        part = {n: "_".join(t[i] for i in differ) for n, t in zip(names, tokens)}
    else:  # different shapes of name: drop the shared prefix (cut at a `_`)
        prefix = os.path.commonprefix(names)
        shared = prefix[: prefix.rfind("_") + 1] if "_" in prefix else ""
        part = {n: n[len(shared):] for n in names}
    short = {lb: part[runs[lb]] + "@" + lb.rpartition("@")[2] if lb in runs else lb for lb in labels}
    return shared, short


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


def resolve_checkpoints(spec, runs_dir: str | Path = "runs", *,
                        required: bool = False) -> tuple[list[Checkpoint], list[Checkpoint]]:
    """(available, selected) from a spec: "" (the newest under `runs_dir`; all of them available),
    "all", or comma-separated checkpoint files / run directories (a run directory selects its newest
    snapshot and makes its earlier ones available). A named file or directory that does not exist
    raises; so does selecting none at all when `required` (evaluation needs one, the inspector does not)."""
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(s) for s in spec)
    spec = (spec or "").strip()
    if spec in ("", "all"):
        available = find_checkpoints(runs_dir)  # newest run first
        if spec == "all":
            selected = list(available)
        else:
            selected = [run_checkpoints(available[0].path.parent)[-1]] if available else []
    else:
        available, selected = _named(spec)
    if required and not selected:
        raise FileNotFoundError(f"no checkpoint under {str(runs_dir)!r}; train one first or pass checkpoints")
    return available, selected


def existing_runs(near: Path, limit: int = 12) -> str:
    """The run directories under the nearest existing folder above `near` (for an error about a wrong path)."""
    root = near
    while not root.is_dir() and root != root.parent:
        root = root.parent
    runs = sorted({str(p.parent) for p in root.rglob("last.pt")}) if root.is_dir() else []
    if not runs:
        return f"no run directory under {root}"
    more = f" and {len(runs) - limit} more" if len(runs) > limit else ""
    return f"runs under {root}: " + ", ".join(runs[:limit]) + more


def _named(spec: str) -> tuple[list[Checkpoint], list[Checkpoint]]:
    """(available, selected) of comma-separated checkpoint files and run directories."""
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
            raise FileNotFoundError(f"checkpoint {part!r} is neither a file nor a run directory; "
                                    f"{existing_runs(p.parent)}")
    seen, unique = set(), []
    for c in available:  # each label once, where it first appears
        if c.label not in seen:
            seen.add(c.label)
            unique.append(c)
    return unique, selected
