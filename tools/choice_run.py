"""One short run of a method with a named choice, scored without touching the scored split.

    python tools/choice_run.py --data data/mtfl-80.h5 --method partbased --name prior-sep --steps 1200 \
        prior=0.3 sep=1.0

Choices are compared on the fit set alone: `lmkcore.experiments.choices.choice_store` copies the store beside
it as `<store>-choice.h5`, its fit images split into `train` (trained on, the protocol's fit set) and `hold`
(`--hold` images, the protocol's test set); the store's `val` split is not in the copy. The method and the
trainer (and a supervised head) start from the `cpu` profile's plan for `--dataset` (the store's name unless
given), with the bench's run axis (the networks' resolution; a field may set it), then the name=value fields.
The run goes to `--runs/<method>_<name>_<steps>/` (a recipe's stages below it: self-training's `--steps` is
only the name, its stages' steps are its fields), its report to
`--reports/<run>/` (the folder's table to `--reports/benchmarks.md`), and a line
`RESULT <name> <steps> {metrics} {diagnostics}` to stdout. A finished run is scored again, not retrained.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import h5py

from lmkcore import profiles
from lmkcore.eval import HeadConfig, evaluate_checkpoint, few_shot_sizes
from lmkcore.eval.report import collect
from lmkcore.experiments.choices import SPLITS, choice_store
from lmkcore.methods import method_class
from lmkcore.profiles import run_axis
from lmkcore.train import main as train_main, parse_fields


def head_config(fields: list[str]) -> HeadConfig:
    """The cpu profile's head with `name=value` fields over it (each as its field's type)."""
    return HeadConfig(**{**profiles.get("cpu").head, **parse_fields(HeadConfig, fields)})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="a store written by notebook 01")
    ap.add_argument("--method", required=True)
    ap.add_argument("--name", required=True, help="the choice's name (run names, the report's profile)")
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--dataset", default="", help="the profile's plan to start from (default: the store's data set)")
    ap.add_argument("--hold", type=int, default=1000, help="fit images held out to score the choice")
    ap.add_argument("--batch_size", type=int, default=0, help="default: the profile's")
    ap.add_argument("--init_from", default="", help="start from another run's weights (with --steps 0 a recipe's "
                                                    "first stage is that run's, e.g. contrastive's MoCo backbone)")
    ap.add_argument("--few_shot", default="", help="further fit-set sizes scored, comma-separated (e.g. 50,10)")
    ap.add_argument("--head", action="append", default=[], metavar="FIELD=VALUE",
                    help="a supervised head's field over the profile's (lmkcore.eval.HeadConfig), e.g. max_steps=2000; "
                         "repeat for more")
    ap.add_argument("--seed", type=int, default=0, help="the trainer's seed (batches, initial weights); a method "
                                                        "field of the same name takes it too (self-training's "
                                                        "k-means seed) unless a name=value field sets it")
    ap.add_argument("--runs", default="runs/choices")
    ap.add_argument("--reports", default="", help="default: reports/<method>_choices")
    ap.add_argument("fields", nargs="*", help="method config fields as name=value")
    a = ap.parse_args(argv)
    store = Path(a.data)
    with h5py.File(store, "r") as f:
        dataset = a.dataset or f.attrs["dataset"]
    data = choice_store(store, a.hold)
    # the bench's run axis (the networks' resolution) unless a field sets it: a choice is made on the bench's recipe
    config_class = method_class(a.method).config_class
    given = parse_fields(config_class, a.fields)  # an unknown name or a wrong type ends here, naming it
    plan = next((p for p in profiles.get("cpu").datasets if p.name == dataset), None)  # procedural stores: none
    axis = [f"{k}={v}" for k, v in (run_axis(plan, config_class) if plan else {}).items() if k not in given]
    run = f"{a.method}_{a.name}_{a.steps}"
    # resume: a finished run trains nothing and is only scored again; an interrupted one continues
    results = train_main(["--method", a.method, "--data", str(data), "--split", SPLITS[0], "--profile", "cpu",
                          "--dataset", dataset, "--steps", str(a.steps), "--out_dir", a.runs, "--run_name", run,
                          "--resume", "true", "--progress", "false", "--tensorboard", "false", "--log_every", "100",
                          "--seed", str(a.seed),
                          *(["--batch_size", str(a.batch_size)] if a.batch_size else []),
                          *(["--init_from", a.init_from] if a.init_from else []), *axis, *a.fields])
    reports = a.reports or f"reports/{a.method}_choices"
    # the last stage's checkpoint: the run itself, or a recipe's final stage (selftrain: <run>/step2/)
    m = evaluate_checkpoint(results[-1].run_dir / "last.pt", str(data), fit_split=SPLITS[0], test_split=SPLITS[1],
                            report_dir=reports, profile=f"choice-{a.name}",
                            few_shot=few_shot_sizes(a.few_shot),
                            head=head_config(a.head))
    collect(reports)  # the folder's table, benchmarks.md
    metrics = {k: round(v, 2) for k, v in m["metrics"].items() if isinstance(v, float)}
    print("RESULT", a.name, a.steps, metrics, m.get("diagnostics"))


if __name__ == "__main__":
    main()
