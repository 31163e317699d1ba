import json

import pytest

from lmkcore.eval.report import collect
from lmkcore.sweep import CHOICES, run_choice


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
