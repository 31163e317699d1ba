"""The skeleton check (`eval.graph`) on every model snapshot a run kept: does a learned graph find
joints and skeleton edges early and lose them, or never find them?

    python -m lmkcore.eval.trace runs/<run> --data procedural [--fit-split fit] [--report-dir reports]

Writes `report_dir/<run>/skeleton_trace.json`: for each `model_<step>.pt`, the joint each keypoint
follows, the joints covered, and the precision / recall of the graph's strongest K - 1 edges,
mapped to joints on the same fit images as `eval.protocol.evaluate` uses (`graph_fit_indices`).
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .graph import graph_skeleton
from .gather import discover
from .protocol import data_skeleton, graph_fit_indices, resolve_device


def skeleton_trace(run_dir: str | os.PathLike, data: str, fit_split: str = "fit", *, seed: int = 0,
                   batch_size: int = 64, device: str = "cpu") -> dict:
    """{fit_images, snapshots}: one row per snapshot of `run_dir` (`runs.run_checkpoints`),
    {step, checkpoint, joints_covered, precision, recall, edges, keypoint_joints}."""
    from ..checkpoint import load_method, method_resolution
    from ..data import open_dataset
    from ..runs import run_checkpoints

    snaps = [c for c in run_checkpoints(run_dir) if c.step is not None]
    if not snaps:
        raise FileNotFoundError(f"{run_dir}: no model_<step>.pt snapshots (the trainer writes one every ckpt_every steps)")
    rows, fit, dev = [], None, resolve_device(device)
    for c in snaps:
        method = load_method(c.path)  # one in memory at a time
        if fit is None:  # the fit set at the run's resolution, opened once
            if not hasattr(method, "graph"):
                raise ValueError(f"{c.path}: method {method.name!r} has no learned graph to check")
            fit = open_dataset(data, fit_split, resolution=method_resolution(method))
            skeleton = data_skeleton(fit)
            if not skeleton:
                raise ValueError(f"data {data!r} (split {fit_split!r}) has no skeleton to compare the graph with")
            idx = graph_fit_indices(len(fit), seed)
        kp, ann = discover(method, fit, idx, batch_size=batch_size, device=dev)
        r = graph_skeleton(method, kp, ann, skeleton)
        rows.append({"step": c.step, "checkpoint": c.path.name, "joints_covered": sorted(set(r["keypoint_joints"])),
                     **r})
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
