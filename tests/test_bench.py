"""The bench's command line and the parameters it hands to notebook 02 (no training here)."""
import pytest

from lmkcore import bench
from lmkcore.profiles import CPU


def test_ks_runs_only_the_named_k_and_rejects_others(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(bench.Bench, "run", lambda self, only=None: seen.append([(d.name, d.ks) for d in self.profile.datasets]))
    dirs = [f"--{n}={tmp_path / n}" for n in ("reports", "runs", "data-dir")]
    assert bench.main(["--profile", "cpu", "--ks", "10", *dirs]) == 0
    assert seen == [[("mtfl", (10,)), ("lspet", (10,))]]
    assert bench.main(["--profile", "cpu", "--ks", "16,4", *dirs]) == 0
    assert seen[-1] == [("mtfl", (4,)), ("lspet", (16,))]
    with pytest.raises(SystemExit, match="no such K"):
        bench.main(["--profile", "cpu", "--ks", "7", *dirs])
    with pytest.raises(SystemExit, match="no such K"):  # LSPET has no K = 4
        bench.main(["--profile", "cpu", "--only", "lspet", "--ks", "4", *dirs])


def test_a_data_plans_trainer_fields_reach_notebook_02_for_that_data_set_only(tmp_path, monkeypatch):
    b = bench.Bench(CPU, tmp_path, runs=tmp_path / "runs", reports=tmp_path / "reports")
    params = []
    monkeypatch.setattr(b, "notebook", lambda stem, p, out: params.append(p))
    b.train(CPU.plan("mtfl"), "mtfl.h5")
    assert [p["n_parts"] for p in params] == list(CPU.plan("mtfl").ks)
    assert all(p["cpu_amp"] is True and p["batch_size"] == CPU.train["batch_size"] for p in params)
    b.train(CPU.plan("lspet"), "lspet.h5")
    assert "cpu_amp" not in params[-1]
