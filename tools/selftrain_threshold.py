"""How the self-training read-out's peak threshold trades the forward error for the backward one.

    python tools/selftrain_threshold.py runs/choices/<run>/step2/last.pt --data data/mtfl-80-choice.h5 \
        --name mtfl-m100-box-0.25 --thresholds 0.2,0.4,0.6,0.8

A Step-2 landmark counts where its channel's peak reaches `SelfTrain.confidence_threshold` (the card's 0.2, for
its 3 x 3 target stamp; this workbook's target is a wider Gaussian, `stamp_sigma`). This scores one Step-2
checkpoint by the shared protocol at other thresholds (the network runs once), two ways: `fixed` keeps the
checkpoint's read-out channels, `refit` applies the card's read-out rule again at the threshold (channels
detected in `min_detection` of the training images, `SelfTrain.keep_detected`). Meant for a choice store (`experiments.choices`: fit split `train`, scored split
`hold`), so no scored split is looked at. Rows to `--reports/peak_threshold/<name>.json`, the table of all of
them to `--reports/peak_threshold.md`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from lmkcore.checkpoint import load_method, method_resolution
from lmkcore.data import open_dataset
from lmkcore.eval import evaluate
from lmkcore.eval.gather import run_method
from lmkcore.experiments.choices import SPLITS

COLUMNS = ("name", "threshold", "read-out", "channels", "presence %", "forward NME %", "backward NME %",
           "kp. spread %")


def score(path, data: str, thresholds, fit_split: str = SPLITS[0], split: str = SPLITS[1]) -> list[dict]:
    """The protocol's errors (percent) of the Step-2 checkpoint at `path` at each peak threshold, `fixed` and
    `refit`. The network runs once over both splits, every active channel read; each row picks its channels."""
    method = load_method(path)
    if method.name != "selftrain" or method.config.stage != 2:
        raise ValueError(f"{path}: not a self-training Step-2 checkpoint (method {method.name!r})")
    res = method_resolution(method)
    fit, test = open_dataset(data, fit_split, resolution=res), open_dataset(data, split, resolution=res)
    kept = method.detected.clone()  # (M,) the checkpoint's read-out
    method.detected.fill_(True)  # read every active channel
    active = torch.nonzero(method.active).squeeze(1)  # (A,) the channels read, in order
    reads = {"kp": method.keypoints, "conf": method.confidence}
    (fit_out, _), (test_out, _) = run_method(method, fit, reads=reads), run_method(method, test, reads=reads)
    n = min(len(fit), method.config.detection_images)  # the rule's images: the first of the fit split
    rows = []
    for t in thresholds:
        fit_pr, test_pr = fit_out["conf"] >= t, test_out["conf"] >= t  # (N, A), (M, A)
        share = torch.zeros(len(kept))
        share[active] = fit_pr[:n].double().mean(0).float()
        for readout, keep in (("fixed", kept), ("refit", method.keep_detected(share, n))):
            cols = keep[active]  # (A,)
            r = evaluate((fit_out["kp"][:, cols], test_out["kp"][:, cols], fit_pr[:, cols], test_pr[:, cols]),
                         fit, test)
            presence = r["per_keypoint_presence"]
            rows.append({"threshold": t, "readout": readout, "channels": len(presence),
                         "presence": 100 * sum(presence) / len(presence), "forward_nme": r["metrics"]["nme"],
                         "backward_nme": r["metrics"]["backward_nme"],
                         "keypoint_spread": r["metrics"]["keypoint_spread"]})
    return rows


def table(folder: Path) -> str:
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for f in sorted((folder / "peak_threshold").glob("*.json")):
        r = json.loads(f.read_text())
        for row in r["rows"]:
            rows.append(f"| {r['name']} | {row['threshold']:g} | {row['readout']} | {row['channels']} | "
                        f"{row['presence']:.1f} | {row['forward_nme']:.2f} | {row['backward_nme']:.2f} | "
                        f"{row['keypoint_spread']:.2f} |")
    return "\n".join(rows) + "\n"


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", required=True, help="a choice store (experiments.choices) the run trained on")
    p.add_argument("--name", required=True, help="the rows' name")
    p.add_argument("--thresholds", default="0.2,0.4,0.6,0.8")
    p.add_argument("--fit_split", default=SPLITS[0])
    p.add_argument("--split", default=SPLITS[1])
    p.add_argument("--reports", default="reports/selftrain_choices", type=Path)
    a = p.parse_args(argv)
    rows = score(a.checkpoint, a.data, [float(t) for t in a.thresholds.split(",")], a.fit_split, a.split)
    for row in rows:
        print("RESULT", a.name, json.dumps(row))
    (a.reports / "peak_threshold").mkdir(parents=True, exist_ok=True)
    out = {"name": a.name, "checkpoint": str(Path(*a.checkpoint.parts[-3:])), "data": Path(a.data).name,
           "fit_split": a.fit_split, "split": a.split, "rows": rows}
    (a.reports / "peak_threshold" / f"{a.name}.json").write_text(json.dumps(out, indent=1))
    (a.reports / "peak_threshold.md").write_text(table(a.reports))
    return rows


if __name__ == "__main__":
    main()
