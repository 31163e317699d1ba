"""The skeleton check (`eval.graph`) on every model snapshot a run kept: does a learned graph find
joints and skeleton edges early and lose them, or never find them?

    python -m lmkcore.eval.trace runs/<run> --data procedural [--fit-split fit] [--report-dir reports]

Writes `report_dir/<run>/skeleton_trace.json`: for each `model_<step>.pt`, the joint each keypoint
follows, the joints covered, and the precision / recall of the graph's strongest K - 1 edges,
mapped to joints on the same `GRAPH_FIT` fit images as `eval.protocol.evaluate` uses.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .graph import keypoint_joints, skeleton_recovery
from .inputs import discover
from .protocol import GRAPH_FIT, _device
from .regression import few_shot_indices


def snapshots(run_dir: str | os.PathLike) -> list[Path]:
    """A run's `model_<step>.pt` snapshots, by step."""
    paths = sorted(Path(run_dir).glob("model_*.pt"))
    if not paths:
        raise FileNotFoundError(f"{run_dir}: no model_<step>.pt snapshots (the trainer writes one every ckpt_every steps)")
    return paths


def skeleton_trace(run_dir: str | os.PathLike, data: str, fit_split: str = "fit", *, seed: int = 0,
                   batch_size: int = 64, device: str = "cpu") -> dict:
    """{fit_images, snapshots}: one row per snapshot of `run_dir`, {step, checkpoint, joints_covered,
    precision, recall, edges, keypoint_joints}."""
    from ..checkpoint import load_method
    from ..data import open_dataset

    rows, fit, idx = [], None, None
    for path in snapshots(run_dir):
        method = load_method(path)
        if not hasattr(method, "graph"):
            raise ValueError(f"{path}: method {method.name!r} has no learned graph to check")
        if fit is None:
            res = int(method.checkpoint_info.get("resolution") or method.config.resolution)
            fit = open_dataset(data, fit_split, resolution=res)
            skeleton = getattr(getattr(fit, "info", None), "skeleton", None)
            if not skeleton:
                raise ValueError(f"data {data!r} (split {fit_split!r}) has no skeleton to compare the graph with")
            idx = few_shot_indices(len(fit), min(GRAPH_FIT, len(fit)), seed)
        kp, ann = discover(method, fit, idx, batch_size=batch_size, device=_device(device))
        joints = keypoint_joints(kp, ann)
        r = skeleton_recovery(method.graph().detach().cpu(), joints, skeleton)
        rows.append({"step": method.checkpoint_info["step"], "checkpoint": path.name,
                     "joints_covered": sorted(set(joints.tolist())), **r})
    return {"fit_images": len(idx), "snapshots": rows}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--data", required=True, help='store path or "procedural"')
    p.add_argument("--fit-split", default="fit")
    p.add_argument("--report-dir", default="reports")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--overwrite", action="store_true", help="replace an existing skeleton_trace.json")
    a = p.parse_args(argv)
    out = Path(a.report_dir) / Path(a.run_dir).resolve().name / "skeleton_trace.json"
    if out.exists() and not a.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it")
    trace = skeleton_trace(a.run_dir, a.data, a.fit_split, seed=a.seed, device=a.device)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"run": out.parent.name, "data": a.data, "fit_split": a.fit_split, "seed": a.seed,
                               **trace}, indent=1))
    for r in trace["snapshots"]:
        print(f"step {r['step']:>6}: {len(r['joints_covered']):>2} joints, skeleton precision {r['precision']:.2f}, "
              f"recall {r['recall']:.2f}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
