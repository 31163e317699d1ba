import json

import pytest

from lmkcore.eval import evaluate_checkpoint
from lmkcore.eval.trace import main, skeleton_trace
from lmkcore.methods import build
from lmkcore.train import TrainConfig, train


@pytest.fixture
def tiny_run(tmp_path, procedural32, tiny_config):
    cfg = TrainConfig(steps=4, batch_size=4, num_workers=0, out_dir=str(tmp_path / "runs"), run_name="run",
                      ckpt_every=2, progress=False, tensorboard=False)
    return train(build("autolink", **tiny_config), procedural32, cfg).run_dir


def test_one_row_per_snapshot_and_the_last_matches_the_protocol(tiny_run):
    trace = skeleton_trace(tiny_run, "procedural")
    rows = trace["snapshots"]
    assert [r["step"] for r in rows] == [2, 4] and trace["fit_images"] == 1000
    assert all(len(r["keypoint_joints"]) == 4 and len(r["edges"]) == 3 for r in rows)
    assert rows[-1]["joints_covered"] == sorted(set(rows[-1]["keypoint_joints"]))
    final = evaluate_checkpoint(tiny_run / "model_0000004.pt", "procedural", max_test=8)["skeleton"]
    assert {k: rows[-1][k] for k in final} == final  # same fit images, same read-out as `evaluate`


def test_the_command_writes_the_trace_and_refuses_to_overwrite_it(tiny_run, tmp_path, capsys):
    reports = tmp_path / "reports"
    main([str(tiny_run), "--data", "procedural", "--report-dir", str(reports)])
    out = json.loads((reports / "run" / "skeleton_trace.json").read_text())
    assert out["run"] == "run" and len(out["snapshots"]) == 2
    assert "step      4" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="--overwrite"):
        main([str(tiny_run), "--data", "procedural", "--report-dir", str(reports)])


def test_a_run_without_snapshots_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model_<step>.pt"):
        skeleton_trace(tmp_path, "procedural")

