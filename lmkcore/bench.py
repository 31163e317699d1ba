"""Headless benchmark: the numbered notebooks under papermill, then the floors and the tables.

    python -m lmkcore.bench --profile smoke|cpu|paper [--method M ...] [--data-root PATH] [--only DATASET]

Per data set of the profile (`lmkcore.profiles`): 01_prepare_data -> per method (the profile's methods, or
those named by --method: a registered name or an import path `package.module:Class`), one training run per
K -> 07_evaluate -> the floors (mean shape of the fit set, and every method untrained per K, by
`lmkcore.eval`) -> 08_visualize (if it exists); then `lmkcore.eval.report.collect` writes
reports/benchmarks.md and .json. A method whose plan names a training notebook (AutoLink: 02_train_autolink)
trains and is scored through the notebooks; any other trains by `lmkcore.train` and is scored by
`lmkcore.eval.evaluate_checkpoint` in this process, so a new method needs no edit here. Executed notebooks
are kept under reports/runs/<profile>/. A notebook missing from notebooks/ is skipped with a note (its rows
are then simply absent), as is a data set whose data root is absent. Real data: --data-root, else
$LMK_DATA_ROOT, else ../shared/data beside the repository.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .methods import Method, method_class, method_path
from .methods.base import recorded_config
from .profiles import PROFILES, DataPlan, Profile, get, method_config, run_axis, train_config

ROOT = Path(__file__).resolve().parent.parent
RESULT_TRAINER = ("batch_size", "seed", "amp", "cpu_amp")  # trainer options a finished run's result depends on


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
    methods: tuple[str, ...] = ()  # registered names or import paths `package.module:Class` (empty: the profile's)
    ks: tuple[int, ...] = ()  # run only these K (empty: every K of the plans)
    steps: int = 0  # steps of every run (0: the plans')
    max_minutes: float = -1.0  # wall-clock cap of every run (-1: the plans'; 0: none)
    floors_only: bool = False  # score the floors and write the tables; train and evaluate no run
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
        _repo_relative(out, self.data_root)
        self.say(f"ran {stem} -> {out.relative_to(self.reports.parent)} ({time.time() - t0:.1f} s)")
        return True

    def method_classes(self) -> list[type[Method]]:
        """The methods this bench runs (--method, else the profile's), resolved; KeyError names the known ones."""
        return [method_class(m) for m in self.methods or tuple(self.profile.methods)]

    def config(self, method: str | type[Method], plan: DataPlan, k: int | None = None) -> dict:
        """Every config field of one run: the data set's over the method plan's over the dataclass defaults, with
        K (`n_parts`) and the networks' resolution where the config has them, all spelled out, so that a
        notebook's own defaults never stand in for a profile's."""
        cls = method_class(method) if isinstance(method, str) else method
        conf = {**method_config(self.profile, cls.name, plan.name), **run_axis(plan, cls.config_class, k)}
        return asdict(cls.config_class(**conf))

    def run_ks(self, cls: type[Method], plan: DataPlan) -> tuple[int | None, ...]:
        """K of the method's runs on a data set (its plan's, else one run at the config's own `n_parts`), --ks kept."""
        own = self.profile.method(cls.name).runs(plan.name).ks or (self.config(cls, plan).get("n_parts"),)
        return tuple(k for k in own if not self.ks or k in self.ks)

    def schedule(self, cls: type[Method], plan: DataPlan) -> tuple[int, float]:
        """(steps, max_minutes) of the method's runs on a data set: the bench's override, else its plan's, else the
        data plan's."""
        runs = self.profile.method(cls.name).runs(plan.name)
        steps = self.steps or runs.steps or plan.steps
        cap = next(m for m in (self.max_minutes, runs.max_minutes, plan.max_minutes) if m >= 0)
        return steps, cap

    def run_name(self, method: str | type[Method], plan: DataPlan, k: int | None) -> str:
        cls = method_class(method) if isinstance(method, str) else method
        config = self.config(cls, plan, k)
        return cls(cls.config_class(**config)).run_name(plan.name, plan.resolution, self.schedule(cls, plan)[0])

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

    def complete(self, run_dir: Path, steps: int, max_minutes: float) -> bool:
        s = run_dir / "summary.json"
        if self.fresh or not (run_dir / "last.pt").exists() or not s.exists():
            return False
        s = json.loads(s.read_text())
        return s.get("steps", 0) >= min(steps, s.get("schedule_steps", steps)) or bool(
            max_minutes and s.get("wall_s_total", 0) >= 60 * max_minutes * 0.98)

    def check_same_config(self, run_dir: Path, method: str | type[Method], config: dict,
                          trainer: dict | None = None) -> None:
        """A run directory from another configuration is neither reused nor resumed (run names carry only a
        method's own flags): another method config, or trainer options that change what a run learns
        (`RESULT_TRAINER`: batch size, seed, precision); --fresh retrains it."""
        path = run_dir / "config.json"
        if self.fresh or not path.exists():
            return
        cls = method_class(method) if isinstance(method, str) else method
        recorded = json.loads(path.read_text())
        old = recorded_config(cls.config_class, recorded.get("config", {}))
        diff = {k: (old.get(k), v) for k, v in config.items() if old.get(k) != v}
        old_train = recorded.get("train", {})
        diff.update({f"train.{k}": (old_train[k], trainer[k]) for k in RESULT_TRAINER
                     if k in old_train and k in (trainer or {}) and old_train[k] != trainer[k]})
        if diff:
            raise ValueError(f"{path} was trained with other settings (field: (that run, this profile)) {diff}; "
                             "pass --fresh to retrain it or --runs to train elsewhere")

    def train(self, cls: type[Method], plan: DataPlan, data: str) -> list[Path]:
        """Train the method's runs on one data set (those not yet complete); their checkpoints."""
        mp, out_dir, checkpoints = self.profile.method(cls.name), self.runs / self.profile.name, []
        steps, max_minutes = self.schedule(cls, plan)
        trainer = {"steps": steps, "max_minutes": max_minutes, **train_config(self.profile, cls.name, plan.name)}
        for k in self.run_ks(cls, plan):
            config, name = self.config(cls, plan, k), self.run_name(cls, plan, k)
            run_dir = out_dir / name
            self.check_same_config(run_dir, cls, config, trainer)
            if not mp.notebook:  # the package's trainer, through the method's recipe (finished stages are kept)
                last = self.train_here(cls, config, plan, data, dict(
                    trainer, out_dir=str(out_dir), run_name=name, dataset=plan.name, resume=not self.fresh,
                    overwrite=self.fresh))
                if last is not None and (last / "last.pt").exists():
                    checkpoints.append(last / "last.pt")
                continue
            if self.complete(run_dir, steps, max_minutes):
                self.say(f"{name}: already trained ({run_dir}); --fresh retrains")
            else:
                resume = (run_dir / "last.pt").exists() and not self.fresh
                self.notebook(mp.notebook, {
                    "data": data, "dataset": plan.name, "train_split": plan.train_split, **config, **trainer,
                    "out_dir": str(out_dir), "run_name": name, "resume": resume, "overwrite": not resume,
                    "evaluate": False, "report_dir": str(self.reports)}, f"{mp.notebook}_{name}")
            if (run_dir / "last.pt").exists():
                checkpoints.append(run_dir / "last.pt")
        return checkpoints

    def train_here(self, cls: type[Method], config: dict, plan: DataPlan, data: str, trainer: dict) -> Path | None:
        """One run of a method without a notebook, by the package's trainer and the method's recipe (what
        `python -m lmkcore.train` does); the run directory of its last stage, or None if it failed."""
        from .data import PROCEDURAL, open_dataset
        from .train import TrainConfig, build_method, run_recipe

        t0, name = time.time(), trainer["run_name"]
        try:
            cfg = TrainConfig(**trainer)
            method = build_method(method_path(cls), config, cfg.seed)
            split = plan.train_split or ("train" if data in PROCEDURAL else "fit")
            images = open_dataset(data, split=split, resolution=config.get("resolution") or plan.resolution)
            results = run_recipe(method, method.training_data(images), cfg)
        except Exception as e:  # as a failed notebook: record, go on
            self.failures.append(f"train {name}: {type(e).__name__}: {str(e).strip()[:300]}")
            self.say(f"FAILED training {name} after {time.time() - t0:.0f} s: {type(e).__name__}: {e}")
            return None
        self.say(f"trained {name} by lmkcore.train ({len(results)} stage(s), {time.time() - t0:.1f} s)")
        return results[-1].run_dir

    def evaluate(self, plan: DataPlan, prep: Prepared, checkpoints: list[Path]) -> None:
        """07_evaluate on the checkpoints of methods trained by their notebooks."""
        if not checkpoints:
            return
        self.notebook("07_evaluate", {
            "checkpoints": ",".join(map(str, checkpoints)), "runs_dir": str(self.runs / self.profile.name),
            "data": prep.data, "fit_split": plan.fit_split, "test_split": prep.test_split, "test_data": prep.test_data,
            "n_fit": plan.n_fit, "few_shot": self.profile.few_shot, "max_test": plan.max_test,
            "seed": self.profile.seed,
            "device": self.device, "batch_size": self.profile.eval_batch, "report_dir": str(self.reports),
            "profile": self.profile.name}, f"07_evaluate_{plan.name}-{plan.resolution}")

    def evaluate_here(self, plan: DataPlan, prep: Prepared, checkpoints: list[Path]) -> None:
        """What 07_evaluate does, in this process: for methods without a notebook (e.g. given by import path,
        which a notebook's kernel could not load by name)."""
        from .eval import HeadConfig, evaluate_checkpoint, few_shot_sizes

        for path in checkpoints:
            try:  # every kind of evaluation the method offers, each its own report
                result = evaluate_checkpoint(path, prep.data, plan.fit_split, prep.test_split, prep.test_data or None,
                                             n_fit=plan.n_fit or None, few_shot=few_shot_sizes(self.profile.few_shot),
                                             seed=self.profile.seed, max_test=plan.max_test or None,
                                             batch_size=self.profile.eval_batch, device=self.device,
                                             head=HeadConfig(**self.profile.head),
                                             report_dir=self.reports, profile=self.profile.name)
            except Exception as e:
                self.failures.append(f"evaluate {path}: {type(e).__name__}: {str(e).strip()[:300]}")
                self.say(f"FAILED evaluating {path}: {type(e).__name__}: {e}")
                continue
            for r in [result, *result.get("other_evaluations", [])]:
                self.say(f"evaluated {path.parent.name} ({r['evaluation']}) -> {r['report']}")

    def floors(self, plan: DataPlan, prep: Prepared, classes: list[type[Method]]) -> None:
        """Mean shape of the fit set (once per data set) and every method untrained (seeded) per K, by the same
        protocol, in each of the method's evaluations (a supervised head's floor: the head on untrained features)."""
        from .data import open_dataset
        from .eval import HeadConfig, few_shot_sizes, mean_shape_floor
        from .eval.protocol import open_test_set
        from .eval.report import write_report
        from .provenance import git_commit

        t0 = time.time()
        fit = open_dataset(prep.data, plan.fit_split, resolution=plan.resolution)
        test, split = open_test_set(prep.data, prep.test_split, prep.test_data, plan.resolution)
        common = dict(n_fit=plan.n_fit or None, seed=self.profile.seed, max_test=plan.max_test or None,
                      few_shot=few_shot_sizes(self.profile.few_shot))
        meta = dict(split=split, data=prep.data, test_data=prep.test_data or None, resolution=plan.resolution,
                    commit=git_commit())
        results = [mean_shape_floor(fit, test, **common)]
        head = HeadConfig(**self.profile.head)
        for cls in classes:
            for k in self.run_ks(cls, plan):
                config = self.config(cls, plan, k)
                for kind in cls.evaluations:  # a head row's floor is the same head on the untrained features
                    results.append(self.untrained(cls, config, fit, test, evaluation=kind,
                                                  batch_size=self.profile.eval_batch, device=self.device,
                                                  **common, **(dict(head=head) if kind == "head" else {})))
        for r in results:
            write_report({**r, **meta}, self.reports, test_data=test, profile=self.profile.name)
        self.say(f"{plan.name}: floors (mean shape + {len(results) - 1} untrained) in {time.time() - t0:.1f} s")

    @staticmethod
    def untrained(cls: type[Method], config: dict, fit, test, seed: int = 0, **kwargs) -> dict:
        """`lmkcore.eval.untrained_floor` of the method, built here from `config` with `seed` (the weights every
        floor of that seed scores)."""
        import torch

        from .eval import untrained_floor

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            method = cls(cls.config_class(**config)).eval()
        return untrained_floor(method, fit, test, seed=seed, **kwargs)

    def run(self, only: str | None = None) -> list[dict]:
        from .eval.report import collect

        classes = self.method_classes()
        plans = [p for p in self.profile.datasets if only in (None, p.name)]
        if only and not plans:
            raise SystemExit(f"profile {self.profile.name!r} has no data set {only!r}")
        for plan in plans:
            prep = self.prepare(plan)
            if prep is None:
                continue
            by_notebook, here = [], []
            # a method with a notebook is scored by 07 (and drawn by 08); any other here
            for cls in (() if self.floors_only else classes):
                trained = self.train(cls, plan, prep.data)
                (by_notebook if self.profile.method(cls.name).notebook else here).extend(trained)
            if not by_notebook + here and not self.floors_only:
                self.say(f"{plan.name}: no trained checkpoint; nothing to evaluate")
            self.evaluate(plan, prep, by_notebook)
            self.evaluate_here(plan, prep, here)
            try:
                self.floors(plan, prep, classes)
            except Exception as e:  # report and go on to the tables
                self.failures.append(f"floors {plan.name}: {type(e).__name__}: {e}")
            if by_notebook:
                self.notebook("08_visualize", {
                    "runs_dir": str(self.runs / self.profile.name), "checkpoints": ",".join(map(str, by_notebook)),
                    "data": prep.data, "split": prep.test_split,
                    "report_dir": str(self.reports), "n_fit": plan.n_fit, "max_test": plan.max_test},
                    f"08_visualize_{plan.name}-{plan.resolution}")
        rows = collect(self.reports)
        self.say(f"collected {len(rows)} rows -> {self.reports / 'benchmarks.md'}")
        for f in self.failures:
            self.say(f"FAILED: {f}")
        return rows


def _repo_relative(notebook: Path, data_root: Path | None = None) -> None:
    """Write the repository's absolute path out of an executed notebook (parameters, metadata, printed
    paths): the notebooks run with the repository as working directory, so the relative paths are
    the same files, and nothing of this machine's layout goes into reports/. The data root, outside the
    repository, is written as `$LMK_DATA_ROOT` (the variable that names it)."""
    text = notebook.read_text().replace(f"{ROOT}/", "").replace(f'"{ROOT}"', '"."')
    if data_root is not None:
        text = text.replace(str(data_root), "$LMK_DATA_ROOT")
    notebook.write_text(text)


def data_root(arg: str | None) -> Path:
    return Path(arg or os.environ.get("LMK_DATA_ROOT") or ROOT.parent / "shared" / "data").resolve()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", required=True, choices=sorted(PROFILES))
    p.add_argument("--method", action="append", default=[], metavar="M",
                   help="a method to run: a registered name (autolink) or an import path package.module:Class; "
                        "repeatable or comma-separated (default: the profile's methods). A method the profile has "
                        "no plan for runs with its config's defaults")
    p.add_argument("--data-root", default=None, help="folder holding mtfl/ and lspet/ (default: $LMK_DATA_ROOT "
                                                     "or ../shared/data)")
    p.add_argument("--only", default=None, help="run one data set of the profile (procedural, mtfl, lspet)")
    p.add_argument("--ks", default="", help="comma-separated subset of the profile's K to run, e.g. 10 (default: all)")
    p.add_argument("--fresh", action="store_true", help="retrain runs that are already complete")
    p.add_argument("--device", default="auto", help="evaluation device: auto | cpu | cuda")
    p.add_argument("--steps", type=int, default=0, help="override the profile's steps per run (0: keep)")
    p.add_argument("--max-minutes", type=float, default=-1.0,
                   help="override the profile's wall-clock cap per run (-1: keep; 0: none)")
    p.add_argument("--floors-only", action="store_true",
                   help="score the floors (mean shape, each method untrained) and write the tables; train nothing")
    p.add_argument("--test-source", action="append", default=[], metavar="DATASET=FOLDER",
                   help="a separate test set in the official layout, e.g. lspet=/data/lspet-test (repeatable)")
    for name, default in (("notebooks", "notebooks"), ("reports", "reports"), ("runs", "runs"), ("data-dir", "data")):
        p.add_argument(f"--{name}", default=str(ROOT / default), help=f"default: {default}/ in the repository")
    a = p.parse_args(argv)
    methods = tuple(m.strip() for arg in a.method for m in arg.split(",") if m.strip())
    bench = Bench(get(a.profile), data_root(a.data_root), Path(a.notebooks).resolve(), Path(a.reports).resolve(),
                  Path(a.runs).resolve(), Path(a.data_dir).resolve(), a.fresh, a.device,
                  dict(t.split("=", 1) for t in a.test_source), methods=methods, steps=a.steps,
                  max_minutes=a.max_minutes, floors_only=a.floors_only)
    try:
        classes = bench.method_classes()
    except KeyError as e:  # an unknown name or import path: say which ones there are
        raise SystemExit(f"--method: {e.args[0]}") from None
    if a.ks:  # e.g. the target row alone; the other rows stay as they are in reports/
        try:
            bench.ks = tuple(int(k) for k in a.ks.split(","))
        except ValueError:
            raise SystemExit(f"--ks must be comma-separated integers (e.g. 10 or 8,4), got {a.ks!r}") from None
        plans = [d for d in bench.profile.datasets if a.only in (None, d.name)]
        kept = {d.name: {k for cls in classes for k in bench.run_ks(cls, d)} for d in plans}
        unknown = [k for k in bench.ks if not any(k in ks for ks in kept.values())]
        if unknown:  # every K named must train somewhere: none is dropped silently
            bench.ks = ()
            have = [(cls.name, d.name, bench.run_ks(cls, d)) for cls in classes for d in plans]
            raise SystemExit(f"--ks {a.ks}: no such K {unknown} in profile {a.profile!r}"
                             f"{f' data set {a.only!r}' if a.only else ''} ({have})")
        # a data set none of whose runs has one of these K is left out (not prepared, no floors)
        bench.profile = replace(bench.profile, datasets=tuple(d for d in bench.profile.datasets if kept.get(d.name)))
    t0 = time.time()
    bench.run(a.only)
    bench.say(f"done in {time.time() - t0:.0f} s")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
