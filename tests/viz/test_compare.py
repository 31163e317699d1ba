"""lmkcore.viz.compare on a tiny fake reports folder: two methods, a floor, one checkpoint present."""
from __future__ import annotations

import json

import pytest
import torch

from lmkcore.viz import compare

THRESHOLDS = [0.0, 5.0, 10.0, 15.0]


def _metrics(method, kind, k, run, *, nme, few_shot=(), checkpoint=None, data="procedural"):
    return {"method": method, "kind": kind, "dataset": "procedural", "split": "val", "K": k, "run": run,
            "normalisation": "bbox", "resolution": 32, "steps": 10 if kind == "trained" else 0,
            "fit_images": 100, "n_fit": "all", "data": data, "checkpoint": checkpoint,
            "metrics": {"nme": nme, "pck@0.2": 100 - nme},
            "curves": {"thresholds": THRESHOLDS, "forward": [0.0, 0.2, 0.7, 1.0], "backward": [0.0, 0.5, 0.9, 1.0]},
            "few_shot": [{"n_fit": str(n), "fit_images": n, "metrics": {"nme": v}} for n, v in few_shot]}


def _rows(m, report):
    from lmkcore.eval.report import rows_of

    return rows_of(m, report)


@pytest.fixture
def fake_reports(tmp_path):
    """reports/ with autolink (checkpoint present), partbased (checkpoint absent) and a mean-shape floor;
    the checkpoint sits at `runs/a/last.pt` relative to `tmp_path`, as the reports name it."""
    from lmkcore.methods import build

    torch.manual_seed(0)
    m = build("autolink", n_parts=4, resolution=32, det_base=8, det_down=2, det_up=1, dec_base=8, dec_depth=2,
              block=8)
    (tmp_path / "runs" / "a").mkdir(parents=True)
    torch.save({"method": "autolink", "config": m.config_dict(), "model": m.state_dict(), "run": "a", "step": 10,
                "dataset": "procedural", "resolution": 32}, tmp_path / "runs" / "a" / "last.pt")
    reports = {
        "a": _metrics("autolink", "trained", 4, "a", nme=8.0, few_shot=[(10, 14.0), (50, 9.5)],
                      checkpoint="runs/a/last.pt"),
        "b": _metrics("partbased", "trained", 6, "b", nme=6.0, few_shot=[(10, 12.0)], checkpoint="runs/b/last.pt"),
        "floor_mean-shape_procedural-32": {**_metrics("mean-shape", "floor", None, None, nme=20.0), "curves": {}},
    }
    root = tmp_path / "reports"
    rows = []
    for name, m in reports.items():
        (root / name).mkdir(parents=True)
        (root / name / "metrics.json").write_text(json.dumps(m))
        rows += _rows(m, name)
    (root / "benchmarks.json").write_text(json.dumps(rows))
    (root / "broken").mkdir()
    (root / "broken" / "metrics.json").write_text("{not json")
    return tmp_path


def test_headline_table_puts_methods_side_by_side_trained_first(fake_reports):
    rows = compare.read_benchmarks(fake_reports / "reports")
    t = compare.headline_table(rows, "procedural")
    assert list(t["method"]) == ["autolink", "partbased", "mean-shape"]
    assert list(t["nme"]) == [8.0, 6.0, 20.0] and list(t["pck@0.2"]) == [92.0, 94.0, 80.0]
    assert list(t.columns).index("nme") < list(t.columns).index("pck@0.2")
    assert t["K"].isna().tolist() == [False, False, True] and int(t["K"][1]) == 6
    assert compare.headline_table(rows, "procedural", methods=["partbased"])["report"].tolist() == ["b"]
    assert compare.headline_table(rows, "mtfl").empty
    assert "evaluation" not in t.columns  # keypoints only: no evaluation column


def test_headline_table_keeps_a_head_evaluation_of_the_same_report_apart(fake_reports):
    rows = compare.read_benchmarks(fake_reports / "reports")
    head = [{**r, "evaluation": "head", "value": r["value"] - 1} for r in rows if r["report"] == "b"]
    t = compare.headline_table(rows + head, "procedural")
    assert list(t["report"]) == ["a", "b", "b [head]", "mean-shape (floor)"]
    assert list(t["evaluation"]) == ["keypoints", "keypoints", "head", "keypoints"]
    assert list(t["nme"]) == [8.0, 6.0, 5.0, 20.0]


def test_missing_benchmarks_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="benchmarks.json"):
        compare.read_benchmarks(tmp_path)


def test_read_reports_labels_and_skips_unreadable(fake_reports, capsys):
    reps = compare.read_reports(fake_reports / "reports")
    assert [r["label"] for r in reps] == ["a", "b", "mean-shape (floor)"]
    assert "skipping" in capsys.readouterr().out
    assert [r["report"] for r in compare.read_reports(fake_reports / "reports", methods=["partbased"])] == ["b"]


def test_curve_figure_draws_forward_and_backward_per_report(fake_reports):
    reps = compare.read_reports(fake_reports / "reports")
    fig = compare.curve_figure(reps, "procedural")
    lines = fig.axes[0].get_lines()
    assert len(lines) == 4  # two reports with curves x (forward, backward); the floor has none
    assert [ln.get_linestyle() for ln in lines] == ["-", "--", "-", "--"]
    assert list(lines[1].get_ydata()) == [0.0, 0.5, 0.9, 1.0]
    assert compare.curve_figure(reps, "mtfl") is None


def test_few_shot_points_and_figure(fake_reports):
    reps = {r["report"]: r for r in compare.read_reports(fake_reports / "reports")}
    assert compare.few_shot_points(reps["a"]) == [(10, 14.0), (50, 9.5), (100, 8.0)]
    assert compare.few_shot_points(reps["a"], "pck@0.2") == [(100, 92.0)]
    fig = compare.few_shot_figure(list(reps.values()), "procedural")
    (line_a, line_b) = fig.axes[0].get_lines()  # the floor has one fit only: no line
    assert list(line_a.get_xdata()) == [10, 50, 100] and list(line_b.get_ydata()) == [12.0, 6.0]
    assert fig.axes[0].get_xscale() == "log"


def test_keypoint_figure_loads_present_checkpoints_and_notes_absent_ones(fake_reports):
    reps = compare.read_reports(fake_reports / "reports")
    assert compare.report_data(reps, "procedural") == ["procedural"]
    notes = []
    fig = compare.keypoint_figure(reps, "procedural", n=3, root=fake_reports, notes=notes)
    assert len(fig.axes) == 3 * 2  # rows: images; columns: annotations + the one loadable checkpoint
    assert fig.axes[1].get_title() == "a"
    assert len(notes) == 1 and notes[0].startswith("b:") and "not found" in notes[0]
    assert compare.keypoint_figure(reps, "procedural", root=fake_reports / "nowhere", notes=[]) is None
