"""Headless benchmark: the numbered notebooks under papermill, then the floors and the tables.

    python -m lmkcore.bench --profile smoke|cpu|paper [--data-root PATH] [--only DATASET]

Per data set of the profile (`lmkcore.profiles`): 01_prepare_data -> 02_train_autolink (one run
per K) -> 07_evaluate -> the floors (mean shape of the fit set and an untrained model per K, by
`lmkcore.eval`) -> 08_visualize (if it exists); then `lmkcore.eval.report.collect` writes
reports/benchmarks.md and .json. Executed notebooks are kept under reports/runs/<profile>/. A
notebook missing from notebooks/ is skipped with a note (its rows are then simply absent), as is a
data set whose data root is absent. Real data: --data-root, else $LMK_DATA_ROOT, else
../shared/data beside the repository.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .profiles import DataPlan, Profile, get

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Prepared:
    data: str  # "procedural" or the store holding the fit (and train) splits
    test_split: str  # split scored when there is no separate test store
    test_data: str = ""  # a separate test store (the whole store is the test set)


@dataclass
class Bench:
    profile: Profile
    data_root: Path
    notebooks: Path = ROOT / "notebooks"
    reports: Path = ROOT / "reports"
    runs: Path = ROOT / "runs"
    data_dir: Path = ROOT / "data"
    fresh: bool = False  # retrain runs that are already complete
    device: str = "auto"
    test_sources: dict[str, str] = field(default_factory=dict)  # data set -> folder of a separate test set
    failures: list[str] = field(default_factory=list)

    # helpers
    def say(self, msg: str) -> None:
        print(f"[bench {self.profile.name}] {msg}", flush=True)

    def notebook(self, stem: str, parameters: dict, out_name: str) -> bool:
        """Execute notebooks/<stem>.ipynb into reports/runs/<profile>/<out_name>.ipynb; False if absent or failed."""
        import papermill

        src = self.notebooks / f"{stem}.ipynb"
        if not src.exists():
            self.say(f"skip: {src} does not exist (yet); nothing it would produce is reported")
            return False
        declared = papermill.inspect_notebook(str(src))
        unknown = sorted(set(parameters) - set(declared))
        if unknown:  # papermill injects them anyway; a parameters line it cannot parse also lands here
            self.say(f"note: {stem} does not declare (or papermill cannot parse) {unknown}; passing them anyway")
        out = self.reports / "runs" / self.profile.name / f"{out_name}.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.time()
        try:
            papermill.execute_notebook(str(src), str(out), parameters=parameters, kernel_name="python3",
                                       progress_bar=False, cwd=str(ROOT))
        except Exception as e:  # PapermillExecutionError and kernel failures: record, go on
            self.failures.append(f"{out_name}: {type(e).__name__}: {str(e).strip().splitlines()[-1][:300]}")
            self.say(f"FAILED {out_name} after {time.time() - t0:.0f} s (executed copy: {out})")
            return False
        _repo_relative(out)
        self.say(f"ran {stem} -> {out.relative_to(self.reports.parent)} ({time.time() - t0:.1f} s)")
        return True

    def config(self, plan: DataPlan, k: int) -> dict:
        """Every AutoLinkConfig field of one run: the data set's over the profile's over the dataclass defaults, all spelled
        out, so that notebook 02's own defaults (the cpu profile's) never stand in for another profile's."""
        from .methods.autolink import AutoLinkConfig

        return asdict(AutoLinkConfig(**{**self.profile.autolink, **plan.autolink, "n_parts": k,
                                        "resolution": plan.model_resolution or plan.resolution}))

    def run_name(self, plan: DataPlan, k: int) -> str:
        from .methods import build

        return build("autolink", **self.config(plan, k)).run_name(plan.name, plan.resolution, plan.steps)

    # stages
    def prepare(self, plan: DataPlan) -> Prepared | None:
        """The data arguments of the later notebooks, or None to skip the data set."""
        if not plan.prepare:
            self.say(f"{plan.name}: generated on the fly; 01_prepare_data not needed")
            return Prepared(plan.name, plan.test_split)
        source = self.data_root / plan.source
        if not source.exists():
            self.say(f"skip {plan.name}: its data root {source} does not exist (pass --data-root or set LMK_DATA_ROOT)")
            return None
        store = self.data_dir / f"{plan.name}-{plan.resolution}.h5"
        if not self._prepare(plan, source, store, "saved", ""):
            return None
        # a separate test set: a listing beside the training one (MTFL) or its own folder (LSPET)
        test_source = self.test_sources.get(plan.name) or (
            self.data_root / plan.test_source if plan.test_source else None)
        listing = source / plan.test_listing if plan.test_listing else None
        test_store = self.data_dir / f"{plan.name}-test-{plan.resolution}.h5"
        if listing is not None and listing.exists():
            if self._prepare(plan, source, test_store, "none", plan.test_listing, "-test"):
                return Prepared(str(store), plan.test_split, str(test_store))
        elif test_source is not None and Path(test_source).exists():
            if self._prepare(plan, Path(test_source), test_store, "none", "", "-test"):
                return Prepared(str(store), plan.test_split, str(test_store))
        else:
            self.say(f"{plan.name}: no separate test set found ({listing or test_source or 'none configured'}); "
                     f"scoring the {plan.test_split!r} split of {store.name}")
        return Prepared(str(store), plan.test_split)

    def _prepare(self, plan: DataPlan, source: Path, store: Path, split: str, listing: str, tag: str = "") -> bool:
        if store.exists():
            self.say(f"{plan.name}: using the existing store {store} (delete it to prepare it again)")
            return True
        self.notebook("01_prepare_data", {
            "dataset": plan.name, "source_root": str(source), "out_path": str(store), "resolution": plan.resolution,
            "split": split, "test_listing": listing, "overwrite": False, "n_images": plan.n_images,
            "report_dir": str(self.reports / "data")}, f"01_prepare_data_{plan.name}{tag}-{plan.resolution}")
        if not store.exists():
            self.say(f"skip {plan.name}: no store at {store}")
        return store.exists()

    def complete(self, run_dir: Path, plan: DataPlan) -> bool:
        s = run_dir / "summary.json"
        if self.fresh or not (run_dir / "last.pt").exists() or not s.exists():
            return False
        s = json.loads(s.read_text())
        return s.get("steps", 0) >= min(plan.steps, s.get("schedule_steps", plan.steps)) or bool(
            plan.max_minutes and s.get("wall_s_total", 0) >= 60 * plan.max_minutes * 0.98)

    def check_same_config(self, run_dir: Path, config: dict) -> None:
        """A run directory from another configuration is neither reused nor resumed (run names
        carry only the seed's flags); --fresh retrains it."""
        path = run_dir / "config.json"
        if self.fresh or not path.exists():
            return
        from .methods.autolink import AutoLinkConfig

        # a field added to AutoLinkConfig after that run was trained reads as its default (which keeps the old behaviour)
        old = {**asdict(AutoLinkConfig()), **json.loads(path.read_text()).get("config", {})}
        diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
        if diff:
            raise ValueError(f"{path} was trained with other settings (field: (that run, this profile)) {diff}; "
                             "pass --fresh to retrain it or --runs to train elsewhere")

    def train(self, plan: DataPlan, data: str) -> list[Path]:
        out_dir, checkpoints = self.runs / self.profile.name, []
        for k in plan.ks:
            name = self.run_name(plan, k)
            run_dir = out_dir / name
            self.check_same_config(run_dir, self.config(plan, k))
            if self.complete(run_dir, plan):
                self.say(f"{name}: already trained ({run_dir}); --fresh retrains")
            else:
                resume = (run_dir / "last.pt").exists() and not self.fresh
                self.notebook("02_train_autolink", {
                    "data": data, "dataset": plan.name, "train_split": plan.train_split, **self.config(plan, k),
                    "steps": plan.steps, "max_minutes": plan.max_minutes, **self.profile.train, **plan.train,
                    "out_dir": str(out_dir), "run_name": name, "resume": resume, "overwrite": not resume,
                    "evaluate": False, "report_dir": str(self.reports)}, f"02_train_autolink_{name}")
            if (run_dir / "last.pt").exists():
                checkpoints.append(run_dir / "last.pt")
        return checkpoints

    def evaluate(self, plan: DataPlan, prep: Prepared, checkpoints: list[Path]) -> None:
        if not checkpoints:
            self.say(f"{plan.name}: no trained checkpoint; 07_evaluate not run")
            return
        self.notebook("07_evaluate", {
            "checkpoints": ",".join(map(str, checkpoints)), "runs_dir": str(self.runs / self.profile.name),
            "data": prep.data, "fit_split": plan.fit_split, "test_split": prep.test_split, "test_data": prep.test_data,
            "n_fit": plan.n_fit, "few_shot": self.profile.few_shot, "max_test": plan.max_test,
            "seed": self.profile.seed,
            "device": self.device, "batch_size": self.profile.eval_batch, "report_dir": str(self.reports),
            "profile": self.profile.name}, f"07_evaluate_{plan.name}-{plan.resolution}")

    def floors(self, plan: DataPlan, prep: Prepared) -> None:
        """Mean shape of the fit set and an untrained (seeded) model per K, by the same protocol."""
        from .data import open_dataset
        from .eval import mean_shape_floor, untrained_floor
        from .eval.protocol import open_test_set
        from .eval.report import write_report
        from .provenance import git_commit

        t0 = time.time()
        fit = open_dataset(prep.data, plan.fit_split, resolution=plan.resolution)
        test, split = open_test_set(prep.data, prep.test_split, prep.test_data, plan.resolution)
        common = dict(n_fit=plan.n_fit or None, seed=self.profile.seed, max_test=plan.max_test or None,
                      few_shot=[s.strip() for s in self.profile.few_shot.split(",") if s.strip()])
        meta = dict(split=split, data=prep.data, test_data=prep.test_data or None, resolution=plan.resolution,
                    commit=git_commit())
        results = [mean_shape_floor(fit, test, **common)]
        for k in plan.ks:
            results.append(untrained_floor("autolink", self.config(plan, k), fit, test,
                                           batch_size=self.profile.eval_batch, device=self.device, **common))
        for r in results:
            write_report({**r, **meta}, self.reports, test_data=test, profile=self.profile.name)
        self.say(f"{plan.name}: floors (mean shape + {len(plan.ks)} untrained) in {time.time() - t0:.1f} s")

    def run(self, only: str | None = None) -> list[dict]:
        from .eval.report import collect

        plans = [p for p in self.profile.datasets if only in (None, p.name)]
        if only and not plans:
            raise SystemExit(f"profile {self.profile.name!r} has no data set {only!r}")
        for plan in plans:
            prep = self.prepare(plan)
            if prep is None:
                continue
            checkpoints = self.train(plan, prep.data)
            self.evaluate(plan, prep, checkpoints)
            try:
                self.floors(plan, prep)
            except Exception as e:  # report and go on to the tables
                self.failures.append(f"floors {plan.name}: {type(e).__name__}: {e}")
            if checkpoints:
                self.notebook("08_visualize", {
                    "runs_dir": str(self.runs / self.profile.name), "checkpoints": ",".join(map(str, checkpoints)),
                    "data": prep.data, "split": prep.test_split,
                    "report_dir": str(self.reports), "n_fit": plan.n_fit, "max_test": plan.max_test},
                    f"08_visualize_{plan.name}-{plan.resolution}")
        rows = collect(self.reports)
        self.say(f"collected {len(rows)} rows -> {self.reports / 'benchmarks.md'}")
        for f in self.failures:
            self.say(f"FAILED: {f}")
        return rows


def _repo_relative(notebook: Path) -> None:
    """Write the repository's absolute path out of an executed notebook (parameters, metadata, printed
    paths): the notebooks run with the repository as working directory, so the relative paths are
    the same files, and nothing of this machine's layout goes into reports/."""
    text = notebook.read_text()
    notebook.write_text(text.replace(f"{ROOT}/", "").replace(f'"{ROOT}"', '"."'))


def data_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("LMK_DATA_ROOT") or ROOT.parent / "shared" / "data").resolve()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, choices=["smoke", "cpu", "paper"])
    p.add_argument("--data-root", default=None, help="folder holding mtfl/ and lspet/ (default: $LMK_DATA_ROOT "
                                                     "or ../shared/data)")
    p.add_argument("--only", default=None, help="run one data set of the profile (procedural, mtfl, lspet)")
    p.add_argument("--ks", default="", help="comma-separated subset of the profile's K to run, e.g. 10 (default: all)")
    p.add_argument("--fresh", action="store_true", help="retrain runs that are already complete")
    p.add_argument("--device", default="auto", help="evaluation device: auto | cpu | cuda")
    p.add_argument("--steps", type=int, default=0, help="override the profile's steps per run (0: keep)")
    p.add_argument("--max-minutes", type=float, default=-1.0,
                   help="override the profile's wall-clock cap per run (-1: keep; 0: none)")
    p.add_argument("--test-source", action="append", default=[], metavar="DATASET=FOLDER",
                   help="a separate test set in the official layout, e.g. lspet=/data/lspet-test (repeatable)")
    for name, default in (("notebooks", "notebooks"), ("reports", "reports"), ("runs", "runs"), ("data-dir", "data")):
        p.add_argument(f"--{name}", default=str(ROOT / default), help=f"default: {default}/ in the repository")
    a = p.parse_args(argv)
    profile = get(a.profile)
    if a.steps or a.max_minutes >= 0:  # a shorter (or longer) run of the same profile; reports record it
        profile = replace(profile, datasets=tuple(replace(
            d, steps=a.steps or d.steps, max_minutes=a.max_minutes if a.max_minutes >= 0 else d.max_minutes)
            for d in profile.datasets))
    if a.ks:  # e.g. the target row alone; the other rows stay as they are in reports/
        try:
            ks = tuple(int(k) for k in a.ks.split(","))
        except ValueError:
            raise SystemExit(f"--ks must be comma-separated integers (e.g. 10 or 8,4), got {a.ks!r}") from None
        runs = [d for d in profile.datasets if a.only in (None, d.name)]
        unknown = [k for k in ks if not any(k in d.ks for d in runs)]
        if unknown:  # every K named must train somewhere: none is dropped silently
            raise SystemExit(f"--ks {a.ks}: no such K {unknown} in profile {a.profile!r}"
                             f"{f' data set {a.only!r}' if a.only else ''} ({[(d.name, d.ks) for d in runs]})")
        profile = replace(profile, datasets=tuple(replace(d, ks=tuple(k for k in d.ks if k in ks))
                                                  for d in profile.datasets if set(d.ks) & set(ks)))
    bench = Bench(profile, data_root(a.data_root), Path(a.notebooks).resolve(), Path(a.reports).resolve(),
                  Path(a.runs).resolve(), Path(a.data_dir).resolve(), a.fresh, a.device,
                  dict(t.split("=", 1) for t in a.test_source))
    t0 = time.time()
    bench.run(a.only)
    bench.say(f"done in {time.time() - t0:.0f} s")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
