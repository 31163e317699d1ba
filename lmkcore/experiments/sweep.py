"""Which AutoLink choices matter at CPU scale: one short run per named choice, same data, same
budget, scored by the shared protocol.

    python -m lmkcore.experiments.sweep --data data/mtfl-80.h5 --dataset mtfl --steps 400 [--choices a,b] [--seed N] [--reports reports/autolink_choices]

Each choice is a set of `AutoLinkConfig` overrides on top of the compact configuration (`CHOICES`
below). Runs go to `runs/choices/`, reports to `--reports/<run>/metrics.json`, and the table to
`--reports/benchmarks.md` (`lmkcore.eval.report.collect`). Runs already complete are reused.
Choices are trained and scored on the fit images alone (`experiments.choices.choice_store`: `--hold` of them
held out, 1,000 by default), so the store's val split plays no part in picking them. `--hold 0` trains on fit
and scores on val, as the rows in `reports/autolink_choices` from before 2026-12-05 were made.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..data import open_dataset
from ..eval import evaluate_checkpoint
from ..eval.report import collect
from ..methods.autolink import AutoLink, AutoLinkConfig
from ..profiles import ADDITIONS, COMPACT, COMPACT_ADDITIONS, CPU, method_config
from .choices import SPLITS, choice_store
from ..train import TrainConfig, train

# name -> AutoLinkConfig overrides of the compact defaults (K = 10 unless set): each changes one
# choice back to the paper's (or to an alternative); "paper-init" restores all of the paper's
# optimisation and initialisation at the compact network size.
# the cpu profile's config at MTFL's resolution, read from the profile, with similarity crops: the `cpu` rows;
# the profile itself (its thin-plate-spline crops) is the `cpu-tps-0.08` row
CPU_MTFL = dict(COMPACT_ADDITIONS, **method_config(CPU, "autolink"), resolution=CPU.plan("mtfl").resolution,
                tps=0.0)
CHOICES = {
    "compact": {},  # the compact network with the paper's objective (`profiles.COMPACT`)
    "paper-init": dict(sklr=512.0, graph_init=-4.0, head_init=1.0, thick=2.5e-3, lr=1e-4, schedule="constant"),
    "paper-graph": dict(sklr=512.0, graph_init=-4.0),  # the paper's graph LR multiplier and initial weights
    "paper-head": dict(head_init=1.0),  # Kaiming-initialised heatmap head
    "thin-edges": dict(thick=2.5e-3),
    "l1-loss": dict(loss="l1"),
    "missing-0.9": dict(missing=0.9),
    "prior": dict(prior=0.3),  # keypoints start at K spread-out spots (a learned logit map), the same in every image
    "decode-32": dict(decode_scale=0.5),  # edge map and repainting at half the resolution, 32 px (2.4x faster steps)
    # the compact-config additions (not in the paper) at 64 px and lr 5e-4, without and with separation
    "equiv": dict(ADDITIONS, sep=0.0),  # keypoints follow the image between two crops
    "equiv-sep": dict(ADDITIONS),  # ... and stay apart
    "lr-1.5e-3": dict(ADDITIONS, lr=1.5e-3),  # ... at three times the learning rate
    # ... with the networks at MTFL's native 80 px (20 x 20 heatmaps), repainting at 40 px (3 U-Net levels)
    "native-80": dict(ADDITIONS, resolution=80, dec_depth=3),
    "cpu": CPU_MTFL,  # all of it
    # ... with more of each image hidden, or thicker edges: does the decoder then lean on the edge map?
    "cpu-missing-0.9": dict(CPU_MTFL, missing=0.9),
    "cpu-thick-1e-2": dict(CPU_MTFL, thick=1e-2),
    # ... with 40 x 40 heatmaps (one more up block; a 20 x 20 cell is 4 px at 80 px): is the grid what limits precision?
    "cpu-det-up-2": dict(CPU_MTFL, det_up=2),
    # ... with the equivariance crops also bent by a thin-plate spline (keypoints follow local content)
    "cpu-tps-0.08": dict(CPU_MTFL, tps=0.08),  # the cpu profile: what the bench trains
    "cpu-tps-0.12": dict(CPU_MTFL, tps=0.12),  # ... bent half as much again: do stronger bends help further?
    "cpu-tps-0.08-equiv-100": dict(CPU_MTFL, tps=0.08, equiv=100.0),  # ... with the equivariance term weighted twice as much
    # ... with the image masked in an 8 x 8 grid of blocks (5 px at 40 px): can the decoder still repaint without the edges?
    "cpu-tps-0.08-block-8": dict(CPU_MTFL, tps=0.08, block=8),
    # ... with the second crop also recoloured (saturation, contrast, brightness, colour cast within 1 +- 0.3)
    "cpu-tps-0.08-jitter-0.3": dict(CPU_MTFL, tps=0.08, jitter=0.3),
    # ... and without the pyramid loss's SSIM term (reports/procedural_v1/autolink_oracle: with it, a decoder trained on
    # ground-truth edges repaints worse than with none and no better than with shuffled ones)
    "cpu-tps-0.08-jitter-0.3-ssim-0": dict(CPU_MTFL, tps=0.08, jitter=0.3, ssim=0.0),
    # ... trained with bf16 autocast on the CPU (TRAIN below): faster steps, are they as precise?
    "cpu-tps-0.08-bf16": dict(CPU_MTFL, tps=0.08),
}
TRAIN = {"cpu-tps-0.08-bf16": dict(cpu_amp=True)}  # name -> TrainConfig overrides (default: none)


def run_choice(name: str, data: str, dataset: str, steps: int, out_dir: Path, reports: Path, *,
               n_parts: int = 10, batch_size: int = 32, num_workers: int = 2, max_minutes: float = 0.0,
               seed: int = 0, n_fit: int | None = None, max_test: int | None = None,
               splits: tuple[str, str] = ("fit", "val"), **config_fields) -> dict:
    """Train (or reuse) one choice's run on `data`'s split `splits[0]` and score it on `splits[1]`;
    `config_fields` apply under the choice.

    `seed` (the trainer's: initialisation, batches, masks, crops) is part of the run's name and its
    report's profile when it is not 0, so repeats of one choice sit side by side in the table.
    """
    config = AutoLinkConfig(**{**COMPACT, "n_parts": n_parts, **config_fields, **CHOICES[name]})
    method = AutoLink(config)
    tag = name + (f"_seed{seed}" if seed else "")
    run_name = method.run_name(dataset, config.resolution, steps) + f"_{tag}"
    if splits != ("fit", "val"):  # trained on other images than the fit split: another run
        run_name += f"_{'-'.join(splits)}"
    run_dir = out_dir / run_name
    done = (run_dir / "summary.json").exists() and (run_dir / "last.pt").exists()
    if not done:
        train(method, open_dataset(data, splits[0], resolution=config.resolution), TrainConfig(
            steps=steps, batch_size=batch_size, num_workers=num_workers, out_dir=str(out_dir), run_name=run_name,
            dataset=dataset, resume=(run_dir / "last.pt").exists(), max_minutes=max_minutes, progress=False,
            seed=seed, **TRAIN.get(name, {})))
    return evaluate_checkpoint(run_dir / "last.pt", data, *splits, report_dir=reports,
                               profile=f"sweep-{tag.replace('_', '-')}",
                               n_fit=n_fit, max_test=max_test)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a store with a fit split (01_prepare_data)")
    p.add_argument("--dataset", required=True, help="its name in run names and reports")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--choices", default=",".join(CHOICES), help=f"comma-separated, of {list(CHOICES)}")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--max-minutes", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=0, help="the trainer's seed (in the run name when not 0)")
    p.add_argument("--hold", type=int, default=1000,
                   help="fit images held out to score the choices (0: train on fit, score on the val split)")
    p.add_argument("--runs", default="runs/choices")
    p.add_argument("--reports", default="reports/autolink_choices")
    a = p.parse_args(argv)
    reports = Path(a.reports)
    data, splits = (str(choice_store(a.data, a.hold)), SPLITS) if a.hold else (a.data, ("fit", "val"))
    for name in a.choices.split(","):
        r = run_choice(name.strip(), data, a.dataset, a.steps, Path(a.runs), reports, n_parts=a.k,
                       batch_size=a.batch_size, num_workers=a.num_workers, max_minutes=a.max_minutes,
                       seed=a.seed, splits=splits)
        print(name, {k: round(v, 2) for k, v in r["metrics"].items()}, flush=True)
    collect(reports)


if __name__ == "__main__":
    main()
