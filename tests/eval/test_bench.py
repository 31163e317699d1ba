"""The benchmark runner: profiles and their method plans, skips, the 07 notebook, the `smoke` profile end to
end (slow), and a method from outside the package run by its import path."""
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import nbformat
import papermill
import pytest

from lmkcore.bench import Bench
from lmkcore.bench import main as bench_main
from lmkcore.methods import METHODS, method_class as resolve
from lmkcore.profiles import CPU, PROFILES, DataPlan, get, method_config, paper_loss

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_PARAMETERS = {"checkpoints", "runs_dir", "data", "fit_split", "test_split", "test_data", "n_fit",
                       "report_dir", "profile"}
PINNED = Path(__file__).parent / "data" / "bench_runs_abe4ce9.json"
OUTSIDE = "tests.methods.toy:Toy"  # a method outside the package: no plan in any profile, no notebook


@pytest.fixture
def registry():
    """METHODS as it was after the test: a method registered by its import path does not leak into others."""
    saved = dict(METHODS)
    yield METHODS
    METHODS.clear()
    METHODS.update(saved)


def test_profiles():
    cpu, paper = get("cpu"), PROFILES["paper"]
    autolink = cpu.method("autolink")
    assert {(p.name, p.resolution, tuple(sorted(autolink.runs(p.name).ks))) for p in cpu.datasets} == {
        ("mtfl", 80, (4, 8, 10)), ("lspet", 64, (10, 16))}
    assert all(p.steps > 0 and p.max_minutes > 0 for p in cpu.datasets)
    assert all(p.resolution == 128 and p.steps == 20_000 for p in paper.datasets)
    config = paper.method("autolink").config
    assert paper.train["batch_size"] == 64 and config["lr"] == 1e-4 and config["schedule"] == "constant"
    assert [p.name for p in get("smoke").datasets] == ["procedural"]
    # a machine-dependent value is a function in the profile, resolved by `get`
    assert callable(config["loss"]) and get("paper").method("autolink").config["loss"] == paper_loss()
    assert {name: list(p.methods) for name, p in PROFILES.items()} == {
        "smoke": ["autolink"], **{n: ["autolink", "partbased", "fgbg", "selftrain", "contrastive"] for n in ("cpu", "paper")}}
    partbased = cpu.method("partbased")  # a method without a notebook: the package trains it, at its own batch
    assert not partbased.notebook and partbased.train["batch_size"] == 8
    assert {d: partbased.runs(d).ks for d in ("mtfl", "lspet")} == {"mtfl": (10, 16), "lspet": (16,)}


def test_a_method_config_is_the_profiles_differences_for_a_data_set():
    assert method_config("cpu", "autolink", "mtfl") == {**get("cpu").method("autolink").config, "jitter": 0.3}
    assert method_config("cpu", "autolink") == method_config("cpu", "autolink", "procedural")
    assert "jitter" not in method_config("cpu", "autolink", "lspet")
    assert method_config("paper", "autolink")["loss"] == paper_loss()
    assert method_config("cpu", "flip-points", "mtfl") == {}  # no plan: the dataclass defaults


@pytest.mark.parametrize("run", [k for k in json.loads(PINNED.read_text()) if not k.startswith("_")])
def test_autolinks_runs_are_those_of_before_the_method_axis(tmp_path, monkeypatch, run):
    """Notebook 02's parameters of every pinned run (cpu MTFL K = 10 and LSPET K = 16, smoke, paper), field by
    field and in order, as lmkcore.bench passed them at commit abe4ce9 (tests/eval/data)."""
    profile, dataset, k = run.split()
    pinned = json.loads(PINNED.read_text())[run]
    b = _bench(tmp_path, get(profile), tmp_path / "nb")
    seen = []
    monkeypatch.setattr(b, "notebook", lambda stem, p, out: seen.append((stem, p, out)))
    b.train(resolve("autolink"), b.profile.plan(dataset), "DATA")
    stem, params, out = next(s for s in seen if s[1]["n_parts"] == int(k))
    drop = ("out_dir", "report_dir") + (("loss",) if profile == "paper" else ())
    assert (stem, out) == (pinned["notebook"], pinned["executed"])
    assert [[name, v] for name, v in params.items() if name not in drop] == pinned["parameters"]
    assert params["out_dir"] == str(tmp_path / "runs" / profile) and params["report_dir"] == str(tmp_path / "reports")


def _bench(tmp_path, profile, notebooks):
    return Bench(profile, tmp_path / "no-data", notebooks=notebooks, reports=tmp_path / "reports",
                 runs=tmp_path / "runs", data_dir=tmp_path / "data")


def test_missing_data_and_notebooks_are_skipped_never_faked(tmp_path, capsys):
    (tmp_path / "nb").mkdir()
    rows = _bench(tmp_path, get("cpu"), tmp_path / "nb").run(only="mtfl")
    assert rows == [] and "does not exist" in capsys.readouterr().out
    # procedural without a training notebook: only the mean-shape floor, measured
    tiny = replace(get("smoke"), datasets=(DataPlan("procedural", 32, steps=1, prepare=False, n_fit=12, max_test=6),),
                   methods={})
    rows = _bench(tmp_path, tiny, tmp_path / "nb").run()
    assert {r["method"] for r in rows} == {"mean-shape"} and "no trained checkpoint" in capsys.readouterr().out
    assert (tmp_path / "reports" / "benchmarks.md").exists()


def test_07_notebook_is_built_from_its_source_without_outputs():
    sys.path.insert(0, str(REPO / "tools"))
    from build_notebooks import build

    path = REPO / "notebooks" / "07_evaluate.ipynb"
    assert path.read_text() == nbformat.writes(build(REPO / "notebooks" / "src" / "07_evaluate.py")) + "\n"
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])].__len__() == 1
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    assert NOTEBOOK_PARAMETERS <= set(papermill.inspect_notebook(str(path)))


@pytest.mark.slow
def test_smoke_profile_end_to_end(tmp_path):
    needed = [REPO / "notebooks" / f"{n}.ipynb" for n in ("02_train_autolink", "07_evaluate")]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        pytest.skip(f"the smoke benchmark needs {missing}, not written yet")
    t0 = time.time()
    rows = _bench(tmp_path, get("smoke"), REPO / "notebooks").run()
    took = time.time() - t0
    print(f"smoke benchmark: {took:.1f} s, {len(rows)} rows")
    kinds = {(r["method"], r["kind"]) for r in rows}
    assert {("autolink", "trained"), ("autolink", "untrained"), ("mean-shape", "floor")} <= kinds
    trained = [r for r in rows if r["kind"] == "trained" and not r["few_shot"]]
    assert {r["metric"] for r in trained} == {"nme", "pck@0.2", "pck@0.1", "backward_nme", "keypoint_spread",
                                              "diag:edge_gain", "diag:skeleton_precision", "diag:skeleton_recall"}
    assert all(r["profile"] == "smoke" and r["steps"] == 3 and r["wall_s"] is not None for r in trained)
    run = tmp_path / "reports" / trained[0]["report"]
    assert {"metrics.json", "curves.png", "per_landmark.png", "predictions.png"} <= {p.name for p in run.iterdir()}
    assert json.loads((run / "metrics.json").read_text())["fit_images"] == get("smoke").datasets[0].n_fit
    ran = sorted(p.name[:2] for p in (tmp_path / "reports" / "runs" / "smoke").glob("*.ipynb"))
    assert ran == ["02", "07"] + (["08"] if (REPO / "notebooks" / "08_visualize.ipynb").exists() else [])
    executed = list((tmp_path / "reports" / "runs" / "smoke").glob("*.ipynb"))
    assert not [p.name for p in executed if str(REPO) in p.read_text()]  # repository-relative paths only
    # headless progress survives in the saved notebook: a line after the first step and a closing line
    trained = nbformat.read(next(p for p in executed if p.name.startswith("02")), as_version=4)
    text = "".join(o.get("text", "") for c in trained.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "] step 1/3  loss " in text and "] done: steps 0->3 in " in text, text[-2000:]
    assert (tmp_path / "reports" / "benchmarks.md").read_text().count("| [autolink") == 2  # trained + untrained


def test_a_run_of_other_settings_is_not_reused(tmp_path):
    bench = _bench(tmp_path, get("smoke"), tmp_path / "nb")
    plan = bench.profile.datasets[0]
    run_dir = tmp_path / "runs" / "old"
    run_dir.mkdir(parents=True)
    config = bench.config("autolink", plan, 4)
    (run_dir / "config.json").write_text(json.dumps({"config": {**config, "equiv": 1.0}}))
    with pytest.raises(ValueError, match="equiv"):
        bench.check_same_config(run_dir, "autolink", {**config, "equiv": 0.0})
    bench.check_same_config(run_dir, "autolink", {**config, "equiv": 1.0})  # same settings: fine
    # a run from before a field existed (here `tps`) trained without it: tps 0 (AutoLinkConfig.ABSENT), not
    # the default 0.08 of today's recipe
    older = {k: v for k, v in config.items() if k != "tps"}
    (run_dir / "config.json").write_text(json.dumps({"config": older}))
    bench.check_same_config(run_dir, "autolink", {**config, "tps": 0.0})
    with pytest.raises(ValueError, match="tps"):
        bench.check_same_config(run_dir, "autolink", {**config, "tps": 0.08})


def test_a_run_of_other_trainer_options_is_not_reused(tmp_path):
    """Run names carry a method's flags, not the trainer's: a run trained in fp32 is not resumed in bf16."""
    bench = _bench(tmp_path, get("smoke"), tmp_path / "nb")
    config = bench.config("autolink", bench.profile.datasets[0], 4)
    run_dir = tmp_path / "runs" / "old"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config": config, "train": {"cpu_amp": False, "batch_size": 8}}))
    bench.check_same_config(run_dir, "autolink", config, {"cpu_amp": False, "batch_size": 8, "max_minutes": 3.0})
    with pytest.raises(ValueError, match="train.cpu_amp"):
        bench.check_same_config(run_dir, "autolink", config, {"cpu_amp": True, "batch_size": 8})
    with pytest.raises(ValueError, match="train.batch_size"):
        bench.check_same_config(run_dir, "autolink", config, {"cpu_amp": False, "batch_size": 16})
    bench.check_same_config(run_dir, "autolink", config, {"seed": 3})  # not recorded by that run: not compared


def test_the_config_check_works_for_any_methods_dataclass(tmp_path, registry):
    bench = _bench(tmp_path, get("smoke"), tmp_path / "nb")
    cls, plan = resolve(OUTSIDE), bench.profile.datasets[0]
    config = bench.config(cls, plan, 5)
    assert config == {**asdict(cls.config_class()), "n_parts": 5, "resolution": 32}
    run_dir = tmp_path / "runs" / "outside"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config": {k: v for k, v in config.items() if k != "width"}}))
    bench.check_same_config(run_dir, cls, config)  # `width` absent: its default, the same
    with pytest.raises(ValueError, match="width"):
        bench.check_same_config(run_dir, cls, {**config, "width": 4})


def test_run_configs_spell_out_every_field(tmp_path):
    """Notebook 02 defaults to the cpu profile's additions; the paper profile must still train without them."""
    paper = _bench(tmp_path, get("paper"), REPO / "notebooks")
    c = paper.config("autolink", paper.profile.plan("mtfl"), 10)
    assert c["equiv"] == 0.0 and c["sep"] == 0.0 and c["prior"] == 0.0 and c["decode_scale"] == 1.0
    assert c["n_parts"] == 10 and c["resolution"] == 128 and c["sklr"] == 512.0 and c["head_init"] == 1.0
    cpu = _bench(tmp_path, get("cpu"), REPO / "notebooks")
    assert cpu.config("autolink", cpu.profile.plan("mtfl"), 4)["equiv"] == 50.0
    assert cpu.config("autolink", cpu.profile.plan("lspet"), 10)["tps"] == 0.08 and c["tps"] == 0.0
    # a data set's own fields reach its runs and only its runs
    plan = cpu.profile.method("autolink")
    own = replace(cpu.profile, methods={"autolink": replace(plan, datasets={
        **plan.datasets, "mtfl": replace(plan.runs("mtfl"), config=dict(tps=0.1))})})
    cpu = _bench(tmp_path, own, REPO / "notebooks")
    assert cpu.config("autolink", own.plan("mtfl"), 4)["tps"] == 0.1
    assert cpu.config("autolink", own.plan("lspet"), 10)["tps"] == 0.08


def _runs_seen(seen: list):
    """A stand-in for Bench.run that records (method, data set, K of its runs) of what would run."""
    def run(self, only=None):
        seen.append([(cls.name, d.name, self.run_ks(cls, d)) for cls in self.method_classes()
                     for d in self.profile.datasets])
    return run


def test_ks_runs_only_the_named_k_and_rejects_others(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(Bench, "run", _runs_seen(seen))
    dirs = [f"--{n}={tmp_path / n}" for n in ("reports", "runs", "data-dir")]
    assert bench_main(["--profile", "cpu", "--method", "autolink", "--ks", "10", *dirs]) == 0
    assert seen == [[("autolink", "mtfl", (10,)), ("autolink", "lspet", (10,))]]
    assert bench_main(["--profile", "cpu", "--method", "autolink", "--ks", "16,4", *dirs]) == 0
    assert seen[-1] == [("autolink", "mtfl", (4,)), ("autolink", "lspet", (16,))]
    assert bench_main(["--profile", "cpu", "--method", "autolink", "--ks", "16", *dirs]) == 0  # MTFL has no K = 16: left out
    assert seen[-1] == [("autolink", "lspet", (16,))]
    with pytest.raises(SystemExit, match="no such K"):
        bench_main(["--profile", "cpu", "--method", "autolink", "--ks", "7", *dirs])
    with pytest.raises(SystemExit, match="comma-separated integers"):
        bench_main(["--profile", "cpu", "--method", "autolink", "--ks", "ten", *dirs])
    with pytest.raises(SystemExit, match="no such K"):  # LSPET has no K = 4
        bench_main(["--profile", "cpu", "--method", "autolink", "--only", "lspet", "--ks", "4", *dirs])
    with pytest.raises(SystemExit, match=r"no such K \[7\]"):  # one unknown K among known ones is not dropped
        bench_main(["--profile", "cpu", "--method", "autolink", "--ks", "10,7", *dirs])
    assert len(seen) == 3
    assert bench_main(["--profile", "cpu", "--ks", "10", *dirs]) == 0  # --ks applies to every method of the profile
    assert seen[-1][:4] == [("autolink", "mtfl", (10,)), ("autolink", "lspet", (10,)), ("partbased", "mtfl", (10,)),
                            ("partbased", "lspet", ())]


def test_method_selects_and_every_method_of_the_profile_runs_by_default(tmp_path, monkeypatch, registry):
    seen = []
    monkeypatch.setattr(Bench, "run", _runs_seen(seen))
    dirs = [f"--{n}={tmp_path / n}" for n in ("reports", "runs", "data-dir")]
    assert bench_main(["--profile", "cpu", *dirs]) == 0  # default: the profile's methods
    assert seen[-1][:4] == [("autolink", "mtfl", (10, 8, 4)), ("autolink", "lspet", (10, 16)),
                            ("partbased", "mtfl", (10, 16)), ("partbased", "lspet", (16,))]
    assert [m for m, _, _ in seen[-1][4:]] == ["fgbg", "fgbg", "selftrain", "selftrain", "contrastive", "contrastive"]
    assert bench_main(["--profile", "cpu", "--method", OUTSIDE, *dirs]) == 0  # only that one
    assert seen[-1] == [("toy", "mtfl", (4,)), ("toy", "lspet", (4,))]  # no plan: its own K
    assert bench_main(["--profile", "smoke", "--method", f"autolink,{OUTSIDE}", *dirs]) == 0
    assert seen[-1] == [("autolink", "procedural", (4,)), ("toy", "procedural", (4,))]
    assert bench_main(["--profile", "smoke", "--method", "autolink", "--method", OUTSIDE, "--ks", "4", *dirs]) == 0
    assert seen[-1] == [("autolink", "procedural", (4,)), ("toy", "procedural", (4,))]


def test_unknown_methods_are_refused_naming_the_known_ones(tmp_path, registry):
    dirs = [f"--{n}={tmp_path / n}" for n in ("reports", "runs", "data-dir")]
    with pytest.raises(SystemExit, match=r"unknown method 'nope'; known: \[.*'autolink'"):
        bench_main(["--profile", "smoke", "--method", "nope", *dirs])
    with pytest.raises(SystemExit, match="has no Method subclass 'Nope'"):
        bench_main(["--profile", "smoke", "--method", "tests.methods.toy:Nope", *dirs])
    with pytest.raises(SystemExit, match="cannot import 'tests.eval.no_such_module'"):
        bench_main(["--profile", "smoke", "--method", "tests.eval.no_such_module:X", *dirs])
    with pytest.raises(SystemExit, match="has no Method subclass 'replace'"):  # a name that is not a method class
        bench_main(["--profile", "smoke", "--method", "dataclasses:replace", *dirs])
    assert not (tmp_path / "reports").exists()  # refused before anything ran
    registry["toy"] = registry["autolink"]  # its name taken by another class: refused, not replaced
    with pytest.raises(KeyError, match="'toy' is registered to lmkcore.methods.autolink"):
        resolve(OUTSIDE)


def test_a_methods_trainer_fields_for_a_data_set_reach_notebook_02_for_that_data_set_only(tmp_path, monkeypatch):
    b = Bench(CPU, tmp_path, runs=tmp_path / "runs", reports=tmp_path / "reports")
    params = []
    monkeypatch.setattr(b, "notebook", lambda stem, p, out: params.append(p))
    autolink = resolve("autolink")
    b.train(autolink, CPU.plan("mtfl"), "mtfl.h5")
    assert [p["n_parts"] for p in params] == list(CPU.method("autolink").runs("mtfl").ks)
    assert all(p["cpu_amp"] is True and p["batch_size"] == CPU.train["batch_size"] for p in params)
    b.train(autolink, CPU.plan("lspet"), "lspet.h5")
    assert "cpu_amp" not in params[-1]


def test_a_method_plan_sets_steps_and_a_cap_per_data_set_and_bench_overrides_win(tmp_path):
    plan = CPU.method("autolink")
    own = replace(CPU, methods={"autolink": replace(plan, datasets={
        **plan.datasets, "lspet": replace(plan.runs("lspet"), steps=100, max_minutes=0.0)})})
    b, autolink = _bench(tmp_path, own, tmp_path / "nb"), resolve("autolink")
    assert b.schedule(autolink, own.plan("lspet")) == (100, 0.0)
    assert b.schedule(autolink, own.plan("mtfl")) == (4500, 29.0)
    assert b.run_name(autolink, own.plan("lspet"), 10).startswith("autolink_k10_lspet-64_100_")
    b.steps, b.max_minutes = 7, 2.0
    assert b.schedule(autolink, own.plan("lspet")) == b.schedule(autolink, own.plan("mtfl")) == (7, 2.0)


@pytest.mark.slow
def test_a_method_without_plan_or_notebook_trains_and_is_scored_by_the_package(tmp_path, registry):
    """The smoke profile with a method it has no plan for, given by import path (the toy of tests/methods): its
    dataclass defaults at the data set's resolution, trained by lmkcore.train through its recipe (two stages),
    scored both ways it offers (keypoints and a supervised head) by the shared protocol in this process, with
    its untrained floor (both ways) and the mean shape; no notebook runs. A second bench run trains nothing again."""
    bench = replace(_bench(tmp_path, get("smoke"), tmp_path / "no-notebooks"), methods=(OUTSIDE,))
    rows = bench.run()
    assert bench.failures == []
    kinds = {(r["method"], r["kind"], r["K"], r.get("evaluation", "keypoints")) for r in rows if not r["few_shot"]}
    assert kinds == {("toy", "trained", 4, "keypoints"), ("toy", "trained", 4, "head"),
                     ("toy", "untrained", 4, "keypoints"), ("toy", "untrained", 4, "head"),
                     ("mean-shape", "floor", None, "keypoints")}
    experiment = tmp_path / "runs" / "smoke" / "toy_k4_procedural-32_3"
    assert sorted(p.name for p in experiment.iterdir()) == ["stage1", "stage2", "summary.json"]  # + the recipe's time
    saved = json.loads((experiment / "stage2" / "config.json").read_text())
    assert saved["config"] == {**asdict(resolve(OUTSIDE).config_class()), "resolution": 32}
    assert saved["train"]["steps"] == 3 and saved["train"]["batch_size"] == get("smoke").train["batch_size"]
    assert saved["init_from"]["missing"]  # stage2 started from stage1's weights (stage1 had no discriminator)
    for evaluation in ("keypoints", "head"):
        report = next(r["report"] for r in rows if r["kind"] == "trained" and r.get("evaluation", "keypoints")
                      == evaluation)
        trained = json.loads((tmp_path / "reports" / report / "metrics.json").read_text())
        assert trained["profile"] == "smoke" and trained["steps"] == 3 and trained["fit_images"] == 60
        assert trained["evaluation"] == evaluation
    assert not (tmp_path / "reports" / "runs").exists()  # no notebook was executed
    mtime = (experiment / "stage2" / "last.pt").stat().st_mtime
    bench.run()  # finished stages are resumed, i.e. kept
    assert (experiment / "stage2" / "last.pt").stat().st_mtime == mtime


def test_floors_only_scores_each_evaluation_s_floor_and_trains_nothing(tmp_path, registry):
    """`--floors-only`: the mean shape and the untrained method in every evaluation it offers (a head's floor is
    the head on untrained features), the tables written; no run trained, no notebook executed."""
    bench = replace(_bench(tmp_path, get("smoke"), tmp_path / "no-notebooks"), methods=(OUTSIDE,), floors_only=True)
    rows = bench.run()
    assert bench.failures == []
    kinds = {(r["method"], r["kind"], r.get("evaluation", "keypoints")) for r in rows if not r["few_shot"]}
    assert kinds == {("toy", "untrained", "keypoints"), ("toy", "untrained", "head"),
                     ("mean-shape", "floor", "keypoints")}
    report = tmp_path / "reports" / "floor_toy-untrained_k4_procedural-32_head_fit60" / "metrics.json"
    head = json.loads(report.read_text())
    assert head["evaluation"] == "head" and head["steps"] == 0 and "backward_nme" not in head["metrics"]
    assert not (tmp_path / "runs").exists() and (tmp_path / "reports" / "benchmarks.md").exists()


def test_executed_notebooks_keep_no_path_of_the_machine(tmp_path):
    """The repository's path becomes relative, the data root `$LMK_DATA_ROOT` (`bench._repo_relative`)."""
    from lmkcore.bench import ROOT, _repo_relative

    nb = tmp_path / "run.ipynb"
    data = tmp_path / "elsewhere" / "data"
    nb.write_text(f'{{"source": ["store = \\"{ROOT}/data/mtfl-80.h5\\"", "source_root = \\"{data}/mtfl\\""]}}')
    _repo_relative(nb, data)
    text = nb.read_text()
    assert "data/mtfl-80.h5" in text and "$LMK_DATA_ROOT/mtfl" in text
    assert str(ROOT) not in text and str(tmp_path) not in text
