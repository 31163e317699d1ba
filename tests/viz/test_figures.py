"""Each figure function writes a non-empty PNG of the size its docstring promises."""
from __future__ import annotations

import json

import pytest
from PIL import Image

from lmkcore.checkpoint import load_method
from lmkcore.data import open_dataset
from lmkcore.viz import figures
from lmkcore.viz.draw import contact_sheet, show_keypoints
from lmkcore.viz.figures import PANEL, TOP
from lmkcore.viz.sources import find_checkpoints

DPI = 40  # small figures, same geometry


def size_of(path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def inches(w: float, h: float) -> tuple[int, int]:
    return round(w * DPI), round(h * DPI)


@pytest.fixture(scope="module")
def test32():
    return open_dataset("procedural", "val", 32)


@pytest.fixture(scope="module")
def methods(tiny_runs):
    cks = [c for c in find_checkpoints(tiny_runs) if c.step == 2]
    return {c.label: load_method(c.path) for c in cks}


def test_skeleton_figure(tmp_path, methods, test32):
    label, method = next(iter(methods.items()))
    path = figures.skeleton_figure(method, test32, tmp_path / "skeleton.png", n=3, label=label, dpi=DPI)
    # 3 images + learned-graph matrix + ground-truth skeleton image and matrix
    assert size_of(path) == inches((3 + 1 + 2) * PANEL, PANEL + TOP)


def test_side_by_side(tmp_path, methods, test32):
    path = figures.side_by_side(methods, test32, tmp_path / "grid.png", n=3, dpi=DPI)
    assert size_of(path) == inches((1 + len(methods)) * PANEL, 3 * PANEL + TOP)


def test_failure_gallery_shows_the_largest_errors(tmp_path, methods, test32):
    method = next(iter(methods.values()))
    fit = open_dataset("procedural", "fit", 32)
    path = figures.failure_gallery(method, fit, test32, tmp_path / "failures.png", n=5, cols=4, n_fit=40, max_test=24,
                                   dpi=DPI)
    assert size_of(path) == inches(4 * PANEL, 2 * PANEL + TOP)


def _metrics(dataset: str, run: str, **extra) -> dict:
    return {"dataset": dataset, "split": "val", "run": run, "steps": 2, "kind": "trained", "normalisation": "bbox",
            "n_fit": "all", "curves": {"thresholds": [0.0, 10.0, 20.0, 50.0], "forward": [0.0, 0.3, 0.8, 1.0]},
            **extra}


def test_error_curves_one_plot_per_dataset_tolerant_of_odd_files(tmp_path, capsys):
    reports = tmp_path / "reports"
    for name, m in {"a": _metrics("mtfl", "a"), "b": _metrics("mtfl", "b"), "c": _metrics("lspet", "c"),
                    # an older file: only per-image errors, no curve
                    "d": {"dataset": "lspet", "method": "old", "per_image": {"forward": [3.0, 9.0, 4.0]}},
                    "e": {"dataset": "lspet", "metrics": {"nme": 3.0}}}.items():  # nothing to plot
        (reports / name).mkdir(parents=True)
        (reports / name / "metrics.json").write_text(json.dumps(m))
    (reports / "broken").mkdir()
    (reports / "broken" / "metrics.json").write_text("{not json")
    curves = figures.read_curves(reports)
    assert sorted((c["dataset"], c["label"]) for c in curves) == [
        ("lspet", "old"), ("lspet (val)", "c@2"), ("mtfl (val)", "a@2"), ("mtfl (val)", "b@2")]
    paths = figures.error_curves(reports, dpi=DPI, width=5, height=3)
    assert sorted(p.name for p in paths) == ["error_curves_lspet.png", "error_curves_lspet_val.png",
                                             "error_curves_mtfl_val.png"]
    assert all(p.parent == reports / "figures" and size_of(p) == inches(5, 3) for p in paths)
    assert "skipping" in capsys.readouterr().out
    assert figures.error_curves(tmp_path / "empty") == []


def test_make_all_writes_every_figure(tmp_path, tiny_runs):
    made = figures.make_all(str(tiny_runs), "", "procedural", "val", str(tmp_path / "reports"), n=2, n_fit=32,
                            max_test=8, dpi=DPI)
    assert len(made["skeletons"]) == len(made["failures"]) == 2
    assert len(made["side_by_side"]) == len(made["layers"]) == 1  # one resolution
    assert made["error_curves"] == []  # no evaluation reports yet
    for paths in made.values():
        for p in paths:
            assert p.parent == tmp_path / "reports" / "figures" and size_of(p)[0] > 0


def test_draw_api_kept(tmp_path, test32):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    item = test32[0]
    fig, ax = plt.subplots()
    show_keypoints(ax, item["image"], item["keypoints"], skeleton=test32.info.skeleton, graph=None, title="t")
    plt.close(fig)
    assert size_of(contact_sheet(test32, tmp_path / "sheet.png", n=4, cols=2))[0] > 0


def test_make_all_without_a_checkpoint_draws_only_the_curves(tmp_path, capsys):
    made = figures.make_all(str(tmp_path / "runs"), "", "procedural", "val", str(tmp_path / "reports"), dpi=DPI)
    assert all(paths == [] for paths in made.values())  # no method is picked by name
    assert "no checkpoint" in capsys.readouterr().out


def test_curve_labels_are_short_and_carry_their_number():
    from lmkcore.viz.figures import curve_labels

    shared, labels = curve_labels(["autolink_k10_mtfl-80_b16@3732", "autolink_k8_mtfl-80_b16@3505",
                                   "mean-shape (floor)"], [7.95, 7.97, 21.5])
    assert shared == "run autolink_*_mtfl-80_b16"
    assert labels == ["k10@3732  7.95 %", "k8@3505  7.97 %", "mean-shape (floor)  21.50 %"]
