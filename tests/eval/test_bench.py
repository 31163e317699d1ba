"""The benchmark runner: profiles, skips, the 07 notebook, and the `smoke` profile end to end (slow)."""
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import nbformat
import papermill
import pytest

from lmkcore.bench import Bench
from lmkcore.bench import main as bench_main
from lmkcore.profiles import CPU, PROFILES, DataPlan, get

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK_PARAMETERS = {"checkpoints", "runs_dir", "data", "fit_split", "test_split", "test_data", "n_fit",
                       "report_dir", "profile"}


def test_profiles():
    cpu, paper = get("cpu"), PROFILES["paper"]
    assert {(p.name, p.resolution, tuple(sorted(p.ks))) for p in cpu.datasets} == {("mtfl", 80, (4, 8, 10)), ("lspet", 64, (10, 16))}
    assert all(p.steps > 0 and p.max_minutes > 0 for p in cpu.datasets)
    assert all(p.resolution == 128 and p.steps == 20_000 for p in paper.datasets)
    assert paper.train["batch_size"] == 64 and paper.autolink["lr"] == 1e-4 and paper.autolink["schedule"] == "constant"
    assert [p.name for p in get("smoke").datasets] == ["procedural"]


def _bench(tmp_path, profile, notebooks):
    return Bench(profile, tmp_path / "no-data", notebooks=notebooks, reports=tmp_path / "reports",
                 runs=tmp_path / "runs", data_dir=tmp_path / "data")


def test_missing_data_and_notebooks_are_skipped_never_faked(tmp_path, capsys):
    (tmp_path / "nb").mkdir()
    rows = _bench(tmp_path, get("cpu"), tmp_path / "nb").run(only="mtfl")
    assert rows == [] and "does not exist" in capsys.readouterr().out
    # procedural without a training notebook: only the mean-shape floor, measured
    tiny = replace(get("smoke"), datasets=(DataPlan("procedural", 32, ks=(), steps=1, prepare=False, n_fit=12,
                                                    max_test=6),))
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
    executed = (tmp_path / "reports" / "runs" / "smoke").glob("*.ipynb")
    assert not [p.name for p in executed if str(REPO) in p.read_text()]  # repository-relative paths only
    assert (tmp_path / "reports" / "benchmarks.md").read_text().count("| [autolink") == 2  # trained + untrained


def test_a_run_of_other_settings_is_not_reused(tmp_path):
    bench = _bench(tmp_path, get("smoke"), tmp_path / "nb")
    plan = bench.profile.datasets[0]
    run_dir = tmp_path / "runs" / "old"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config": {**bench.config(plan, 4), "equiv": 1.0}}))
    with pytest.raises(ValueError, match="equiv"):
        bench.check_same_config(run_dir, {**bench.config(plan, 4), "equiv": 0.0})
    bench.check_same_config(run_dir, {**bench.config(plan, 4), "equiv": 1.0})  # same settings: fine
    # a run from before a field existed (here `tps`) is the same as one with that field's default
    older = {k: v for k, v in bench.config(plan, 4).items() if k != "tps"}
    (run_dir / "config.json").write_text(json.dumps({"config": older}))
    bench.check_same_config(run_dir, bench.config(plan, 4))
    with pytest.raises(ValueError, match="tps"):
        bench.check_same_config(run_dir, {**bench.config(plan, 4), "tps": 0.08})


def test_run_configs_spell_out_every_field(tmp_path):
    """Notebook 02 defaults to the cpu profile's additions; the paper profile must still train without them."""
    paper = _bench(tmp_path, get("paper"), REPO / "notebooks")
    c = paper.config(paper.profile.plan("mtfl"), 10)
    assert c["equiv"] == 0.0 and c["sep"] == 0.0 and c["prior"] == 0.0 and c["decode_scale"] == 1.0
    assert c["n_parts"] == 10 and c["resolution"] == 128 and c["sklr"] == 512.0 and c["head_init"] == 1.0
    cpu = _bench(tmp_path, get("cpu"), REPO / "notebooks")
    assert cpu.config(cpu.profile.plan("mtfl"), 4)["equiv"] == 50.0
    assert cpu.config(cpu.profile.plan("lspet"), 10)["tps"] == 0.08 and c["tps"] == 0.0
    # a data set's own fields reach its runs and only its runs
    own = replace(cpu.profile, datasets=(replace(cpu.profile.plan("mtfl"), autolink=dict(tps=0.1)),
                                         cpu.profile.plan("lspet")))
    cpu = _bench(tmp_path, own, REPO / "notebooks")
    assert cpu.config(own.plan("mtfl"), 4)["tps"] == 0.1 and cpu.config(own.plan("lspet"), 10)["tps"] == 0.08


def test_ks_runs_only_the_named_k_and_rejects_others(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(Bench, "run", lambda self, only=None: seen.append([(d.name, d.ks) for d in self.profile.datasets]))
    dirs = [f"--{n}={tmp_path / n}" for n in ("reports", "runs", "data-dir")]
    assert bench_main(["--profile", "cpu", "--ks", "10", *dirs]) == 0
    assert seen == [[("mtfl", (10,)), ("lspet", (10,))]]
    assert bench_main(["--profile", "cpu", "--ks", "16,4", *dirs]) == 0
    assert seen[-1] == [("mtfl", (4,)), ("lspet", (16,))]
    with pytest.raises(SystemExit, match="no such K"):
        bench_main(["--profile", "cpu", "--ks", "7", *dirs])
    with pytest.raises(SystemExit, match="comma-separated integers"):
        bench_main(["--profile", "cpu", "--ks", "ten", *dirs])
    with pytest.raises(SystemExit, match="no such K"):  # LSPET has no K = 4
        bench_main(["--profile", "cpu", "--only", "lspet", "--ks", "4", *dirs])
    with pytest.raises(SystemExit, match=r"no such K \[7\]"):  # one unknown K among known ones is not dropped
        bench_main(["--profile", "cpu", "--ks", "10,7", *dirs])
    assert len(seen) == 2


def test_a_data_plans_trainer_fields_reach_notebook_02_for_that_data_set_only(tmp_path, monkeypatch):
    b = Bench(CPU, tmp_path, runs=tmp_path / "runs", reports=tmp_path / "reports")
    params = []
    monkeypatch.setattr(b, "notebook", lambda stem, p, out: params.append(p))
    b.train(CPU.plan("mtfl"), "mtfl.h5")
    assert [p["n_parts"] for p in params] == list(CPU.plan("mtfl").ks)
    assert all(p["cpu_amp"] is True and p["batch_size"] == CPU.train["batch_size"] for p in params)
    b.train(CPU.plan("lspet"), "lspet.h5")
    assert "cpu_amp" not in params[-1]
