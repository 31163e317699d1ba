"""Run discovery (`lmkcore.runs`): snapshots of a run, every run under a runs directory, and the
checkpoint spec that notebooks 07-09 and the inspector take."""
import os
from pathlib import Path

import pytest

from lmkcore.paths import workbook_path
from lmkcore.runs import find_checkpoints, resolve_checkpoints, run_checkpoints


def _run(root, name, files, mtime):
    d = root / name
    d.mkdir(parents=True)
    for f in files:
        (d / f).write_bytes(b"")
        os.utime(d / f, (mtime, mtime))
    return d


@pytest.fixture
def runs(tmp_path):
    """runs/old (last.pt only) and runs/new (two snapshots and last.pt), new written later."""
    root = tmp_path / "runs"
    _run(root, "old", ["last.pt"], 1_000)
    _run(root, "new", ["model_0000010.pt", "model_0000002.pt", "last.pt", "notes.txt"], 2_000)
    return root


def test_snapshots_oldest_first_and_last_only_without_snapshots(runs):
    assert [c.label for c in run_checkpoints(runs / "new")] == ["new@2", "new@10"]
    assert [c.step for c in run_checkpoints(runs / "new")] == [2, 10]
    assert [(c.label, c.step, c.path.name) for c in run_checkpoints(runs / "old")] == [("old@last", None, "last.pt")]
    assert run_checkpoints(runs / "missing") == []


def test_newest_run_first(runs):
    assert [c.label for c in find_checkpoints(runs)] == ["new@2", "new@10", "old@last"]
    assert find_checkpoints(runs.parent / "nothing") == []


def test_spec_empty_all_and_named(runs):
    available, selected = resolve_checkpoints("", runs)
    assert len(available) == 3 and [c.label for c in selected] == ["new@10"]
    assert [c.label for c in resolve_checkpoints("all", runs)[1]] == ["new@2", "new@10", "old@last"]
    # a run directory selects its newest snapshot, a file itself; each state is available once
    available, selected = resolve_checkpoints(f"{runs / 'new' / 'model_0000002.pt'}, {runs / 'new'}", runs)
    assert [c.label for c in selected] == ["new@2", "new@10"]
    assert [c.label for c in available] == ["new@2", "new@10"]
    assert resolve_checkpoints([runs / "old"], runs)[1][0].path == runs / "old" / "last.pt"  # a list works too


def test_nothing_found_is_empty_unless_required(tmp_path, runs):
    assert resolve_checkpoints("", tmp_path / "nothing") == ([], [])
    for spec in ("", "all"):
        with pytest.raises(FileNotFoundError, match="no checkpoint under .*nothing.*train one first"):
            resolve_checkpoints(spec, tmp_path / "nothing", required=True)
    with pytest.raises(FileNotFoundError, match=r"neither a file nor a run directory; runs under .*runs: .*new, .*old"):
        resolve_checkpoints(str(runs / "nope" / "last.pt"), runs)  # a mistyped path lists the runs that exist
    (runs / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no checkpoints .* in"):
        resolve_checkpoints(str(runs / "empty"), runs, required=True)


def test_relative_paths_from_the_notebooks_folder_are_the_workbook_roots(tmp_path, monkeypatch):
    (tmp_path / "lmkcore").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert workbook_path("runs") == tmp_path / "runs"
    assert workbook_path(tmp_path / "x") == tmp_path / "x"
    monkeypatch.chdir(tmp_path)
    assert workbook_path("runs") == Path("runs")  # elsewhere: as given


def test_short_labels_show_the_shared_run_name_once():
    from lmkcore.runs import short_labels

    one = ["autolink_k10_mtfl-80_4500_m0.8_sklr64@1000", "autolink_k10_mtfl-80_4500_m0.8_sklr64@1250"]
    assert short_labels(one) == ("autolink_k10_mtfl-80_4500_m0.8_sklr64", {one[0]: "@1000", one[1]: "@1250"})
    two = ["autolink_k10_mtfl_b16@5", "autolink_k16_mtfl_b16@5", "untrained autolink k10"]
    shared, short = short_labels(two)
    assert shared == "autolink_*_mtfl_b16" and list(short.values()) == ["k10@5", "k16@5", "untrained autolink k10"]
    three = ["autolink_k10@5", "autolink_k10_x@5"]  # names of other shapes: the shared prefix goes
    assert short_labels(three) == ("autolink_", {three[0]: "k10@5", three[1]: "k10_x@5"})
