import json
from pathlib import Path

import pytest

from lmkcore.eval.report import collect
from lmkcore.experiments.sweep import CHOICES, run_choice


@pytest.mark.slow
def test_two_choices_train_score_and_tabulate(tmp_path, tiny_config):
    tiny = {k: v for k, v in tiny_config.items() if k != "n_parts"}
    for name in ("compact", "paper-head"):
        r = run_choice(name, "procedural", "procedural", 2, tmp_path / "runs", tmp_path / "reports", n_parts=4,
                       batch_size=4, num_workers=0, n_fit=40, max_test=20, **tiny)
        assert r["config"]["head_init"] == CHOICES[name].get("head_init", 0.1)
        assert set(r["metrics"]) >= {"pck@0.2", "backward_nme"}
    rows = collect(tmp_path / "reports")
    assert {json.loads((tmp_path / "reports" / r["report"] / "metrics.json").read_text())["profile"]
            for r in rows} == {"sweep-compact", "sweep-paper-head"}
    assert "paper-head" in (tmp_path / "reports" / "benchmarks.md").read_text()


@pytest.mark.slow
def test_seed_names_a_separate_run(tmp_path, tiny_config):
    tiny = {k: v for k, v in tiny_config.items() if k != "n_parts"}
    runs, reports = tmp_path / "runs", tmp_path / "reports"
    args = dict(n_parts=4, batch_size=4, num_workers=0, n_fit=40, max_test=20, **tiny)
    a = run_choice("compact", "procedural", "procedural", 2, runs, reports, **args)
    b = run_choice("compact", "procedural", "procedural", 2, runs, reports, seed=1, **args)
    assert b["run"] == a["run"] + "_seed1"
    assert json.loads((runs / b["run"] / "config.json").read_text())["train"]["seed"] == 1
    assert json.loads((Path(b["report"]) / "metrics.json").read_text())["profile"] == "sweep-compact-seed1"
    assert a["examples"]["keypoints"] != b["examples"]["keypoints"]  # another initialisation, other keypoints


@pytest.mark.slow
def test_choices_are_scored_on_held_out_fit_images_by_default(tmp_path, tiny_config, monkeypatch):
    """`main` trains on the choice store's train split and scores its hold split: the store's val never."""
    from lmkcore.data import ProceduralSource, write_store
    from lmkcore.experiments import sweep

    names = [f"figure_5_{i:06d}" for i in range(40)]
    store = write_store(tmp_path / "fig.h5", ProceduralSource(n=40, size=32, seed=5), 32,
                        splits={"fit": names[:30], "val": names[30:]})
    seen = []

    def fake(name, data, dataset, steps, runs, reports, **kw):
        seen.append((data, kw["splits"]))
        return {"metrics": {"nme": 1.0}}

    monkeypatch.setattr(sweep, "run_choice", fake)
    sweep.main(["--data", str(store), "--dataset", "fig", "--choices", "compact", "--hold", "10",
                "--reports", str(tmp_path / "reports")])
    sweep.main(["--data", str(store), "--dataset", "fig", "--choices", "compact", "--hold", "0",
                "--reports", str(tmp_path / "reports")])
    assert seen == [(str(tmp_path / "fig-choice.h5"), ("train", "hold")), (str(store), ("fit", "val"))]
    tiny = {k: v for k, v in tiny_config.items() if k != "n_parts"}
    r = run_choice("compact", seen[0][0], "fig", 2, tmp_path / "runs", tmp_path / "reports", n_parts=4,
                   batch_size=4, num_workers=0, splits=("train", "hold"), **tiny)
    assert r["run"].endswith("_compact_train-hold") and r["test_images"] == 10 and r["fit_images"] == 20
