"""Score one self-training Step-2 checkpoint with every active channel read out, beside its own read-out.

    python tools/selftrain_readout.py runs/cpu/<experiment>/step2/last.pt --data data/mtfl-80.h5 \
        --reports reports/selftrain_readout

The card's read-out (section 8, `SelfTrainConfig.min_detection`) keeps the channels detected in 80 % of the
training images; this writes the checkpoint's report with that read-out (`<experiment>_step2`) and with every
channel that survived merging (`<experiment>_all_step2`: `min_detection=0`, what runs before the rule read out),
both by the shared protocol on the same split, so the rule's effect is measured on one network.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from lmkcore.checkpoint import load, save_atomic
from lmkcore.eval import evaluate_checkpoint, few_shot_sizes
from lmkcore.eval.report import collect


def every_channel(path: Path, out: Path) -> Path:
    """A copy of the checkpoint at `path` whose read-out keeps every active channel, as `out/<experiment>_all/step2`."""
    ck = load(path)
    if ck.get("method") != "selftrain" or ck["config"].get("stage") != 2:
        raise ValueError(f"{path}: not a self-training Step-2 checkpoint (method {ck.get('method')!r})")
    ck["config"] = {**ck["config"], "min_detection": 0.0}
    ck["model"]["detected"] = torch.ones_like(ck["model"]["active"])
    ck["experiment"] = f"{ck.get('experiment') or path.parent.parent.name}_all"
    dest = out / ck["experiment"] / path.parent.name / path.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(ck, dest)
    return dest


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", required=True, help="the store the run trained on (its fit split is the fit set)")
    p.add_argument("--split", default="val", help="the split scored")
    p.add_argument("--reports", required=True, type=Path)
    p.add_argument("--few_shot", default="1%,50,10")
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for path in (a.checkpoint, every_channel(a.checkpoint, Path(tmp))):
            r = evaluate_checkpoint(path, a.data, "fit", a.split, report_dir=a.reports, profile="cpu",
                                    few_shot=few_shot_sizes(a.few_shot))
            m = r["metrics"]
            print(f"RESULT {r['experiment']} K={len(r['per_keypoint_backward'])} nme={m['nme']:.2f} "
                  f"backward={m['backward_nme']:.2f} spread={m['keypoint_spread']:.2f}")
    collect(a.reports)


if __name__ == "__main__":
    main()
