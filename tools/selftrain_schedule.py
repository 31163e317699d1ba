"""Self-training on a store with a longer schedule than the cpu recipe's, reusing a finished run's bootstrap.

    python tools/selftrain_schedule.py --data data/mtfl-80.h5 --dataset mtfl \
        --bootstrap runs/cpu/selftrain_m24_mtfl-80_4500_step1/labels_round00.pt \
        round1_steps=1000 round_steps=500 step2_steps=3000 merge_start=1500 merge_every=300

The bootstrap (corners + SIFT + clustering, most of the recipe's time) depends only on the data and the
bootstrap fields, so a schedule study can start from the benchmark run's `labels_round00.pt` (it is copied into
the new experiment, which then resumes from it). The data are read at the store's resolution, as the bench
reads them; the Step-2 network is scored by the shared protocol into `--reports/<run>/`.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from lmkcore.data import open_dataset
from lmkcore.eval import evaluate_checkpoint
from lmkcore.methods.selftrain import SelfTrainConfig
from lmkcore.train import TrainConfig, build_method, parse_fields, run_recipe


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a store written by notebook 01 (its fit split trains)")
    ap.add_argument("--dataset", required=True, help="the data set's name (run names, metrics)")
    ap.add_argument("--bootstrap", default="", help="labels_round00.pt of a finished run on the same data")
    ap.add_argument("--experiment", default="", help="default: selftrain_m{n_clusters}_{dataset}_schedule")
    ap.add_argument("--runs", default="runs/choices")
    ap.add_argument("--reports", default="reports/selftrain_choices")
    ap.add_argument("fields", nargs="*", help="SelfTrainConfig fields as name=value")
    a = ap.parse_args(argv)
    fields = parse_fields(SelfTrainConfig, a.fields)
    experiment = a.experiment or f"selftrain_m{fields.get('n_clusters', SelfTrainConfig.n_clusters)}_{a.dataset}_schedule"
    exp = Path(a.runs) / experiment
    exp.mkdir(parents=True, exist_ok=True)
    if a.bootstrap and not (exp / "labels_round00.pt").exists():
        shutil.copy(a.bootstrap, exp / "labels_round00.pt")
    cfg = TrainConfig(out_dir=a.runs, experiment=experiment, dataset=a.dataset, resume=True, seed=0, tensorboard=False)
    method = build_method("selftrain", fields, cfg.seed)
    store = open_dataset(a.data, split="fit")
    results = run_recipe(method, method.training_data(store), cfg)
    metrics = evaluate_checkpoint(results[-1].run_dir / "last.pt", a.data, fit_split="fit", test_split="val",
                                  report_dir=a.reports)
    print(json.dumps({"report": metrics.get("report"), **metrics["metrics"]}))


if __name__ == "__main__":
    main()
