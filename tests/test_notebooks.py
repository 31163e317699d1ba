"""Notebooks: committed without outputs, one `parameters` cell, in sync with notebooks/src."""
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert "01_prepare_data.ipynb" in names and "02_train_autolink.ipynb" in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_and_one_parameters_cell(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert not any(c.get("outputs") or c.get("execution_count") for c in code), f"{path.name} has outputs"
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_notebooks_match_their_sources():
    r = subprocess.run([sys.executable, str(REPO / "tools" / "build_notebooks.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.slow
def test_prepare_data_runs_through_papermill(tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "01.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "01_prepare_data.ipynb"), str(out), kernel_name="python3",
                               progress_bar=False, cwd=str(tmp_path),
                               parameters=dict(out_path=str(tmp_path / "p.h5"), resolution=32, n_images=12,
                                               report_dir=str(tmp_path / "reports")))
    assert (tmp_path / "p.h5").is_file()
    assert (tmp_path / "reports" / "procedural_contact_sheet.png").stat().st_size > 1000
    text = out.read_text()
    assert "12 images of 32 px" in text


def _configs_named(path: Path) -> list[type]:
    """The config dataclasses of registered methods that a notebook's code names (e.g. `AutoLinkConfig`)."""
    from lmkcore.methods import METHODS

    code = "\n".join(c["source"] if isinstance(c["source"], str) else "".join(c["source"])
                     for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    return [m.config_class for m in METHODS.values() if re.search(rf"\b{m.config_class.__name__}\b", code)]


def _parameter_mismatches(params: dict, config_class, *, defaults: bool = True) -> dict:
    """{field: (the notebook's (type, default), the dataclass's)} for every parameter that is a field of
    `config_class` and differs from it in type or (with `defaults`) in default value."""
    import ast

    bad = {}
    for f in dataclasses.fields(config_class):
        if f.name not in params:
            continue
        value = ast.literal_eval(params[f.name]["default"])
        annotated = params[f.name]["inferred_type_name"]
        typ = f.type if isinstance(f.type, str) else f.type.__name__
        if (defaults and value != f.default) or type(value) is not type(f.default) or annotated != typ:
            bad[f.name] = ((annotated, value), (typ, f.default))
    return bad


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebooks_method_parameters_are_its_config_defaults(path):
    """A method's defaults live in its config dataclass only: a notebook whose code names a method config
    declares each of that config's fields it takes as a parameter with the dataclass's default and type;
    profiles pass their differences (`lmkcore.profiles`). Trainer fields (TrainConfig) keep their type; their
    values may differ (a notebook's demo length: steps, batch size)."""
    papermill = pytest.importorskip("papermill")
    from lmkcore.train import TrainConfig

    configs = _configs_named(path)
    if not configs:
        pytest.skip(f"{path.name} names no method config")
    params = papermill.inspect_notebook(str(path))
    for config_class in configs:
        assert not _parameter_mismatches(params, config_class), (path.name, config_class.__name__)
    assert not _parameter_mismatches(params, TrainConfig, defaults=False), (path.name, "TrainConfig")
    method_fields = {f.name for c in configs for f in dataclasses.fields(c)}
    assert method_fields & set(params), f"{path.name} names {configs} but declares none of their fields"


def test_the_parameter_check_catches_a_changed_default_and_a_changed_type():
    from dataclasses import dataclass

    @dataclass
    class Config:
        lr: float = 5e-4
        n_parts: int = 10
        flip: bool = True

    same = {"lr": {"default": "5e-4", "inferred_type_name": "float"},
            "n_parts": {"default": "10", "inferred_type_name": "int"}, "other": {"default": "1"}}
    assert _parameter_mismatches(same, Config) == {}
    assert set(_parameter_mismatches({**same, "lr": {"default": "1.5e-3", "inferred_type_name": "float"}},
                                     Config)) == {"lr"}
    assert set(_parameter_mismatches({**same, "n_parts": {"default": "10.0", "inferred_type_name": "float"}},
                                     Config)) == {"n_parts"}
    assert set(_parameter_mismatches({**same, "flip": {"default": "1", "inferred_type_name": "int"}},
                                     Config)) == {"flip"}


@pytest.mark.parametrize("name, method", [("02_train_autolink", "autolink"), ("04_train_partbased", "partbased"),
                                          ("05_train_fgbg", "fgbg"), ("06_train_contrastive", "contrastive")])
def test_a_training_notebook_takes_every_config_field(name, method):
    """These notebooks build their method's config from parameters of the same names (`globals()[field]`):
    a field without a parameter is a KeyError in a run, so each field must be one."""
    papermill = pytest.importorskip("papermill")
    from lmkcore.methods import method_class

    params = papermill.inspect_notebook(str(REPO / "notebooks" / f"{name}.ipynb"))
    missing = {f.name for f in dataclasses.fields(method_class(method).config_class)} - set(params)
    assert not missing, f"{name} lacks parameters {sorted(missing)}"


@pytest.mark.slow
def test_notebook_02_killed_at_random_moments_resumes_to_the_uninterrupted_run(tmp_path):
    """Fault injection through papermill: notebook 02 (kernel and all) killed by SIGKILL at seeded random
    moments while it trains, checkpoint writes included (one every step), rerun with `-y resume: true` each
    time; the finished run's curve and weights equal an uninterrupted run's exactly."""
    import os
    import random
    import signal
    import time

    import torch

    from tests.tiny import TINY_AUTOLINK

    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}

    def start(name: str, resume: bool) -> subprocess.Popen:
        params = dict(TINY_AUTOLINK, steps=40, batch_size=4, num_workers=0, ckpt_every=1, evaluate=False,
                      out_dir=str(tmp_path / name), run_name="run", report_dir=str(tmp_path / f"{name}-reports"),
                      resume=resume)
        return subprocess.Popen(
            [sys.executable, "-m", "papermill", str(REPO / "notebooks" / "02_train_autolink.ipynb"),
             str(tmp_path / f"{name}.ipynb"), "-y", json.dumps(params), "--cwd", str(tmp_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True)

    def finish(p: subprocess.Popen) -> None:
        err = p.communicate(timeout=300)[1]
        assert p.returncode == 0, err.decode(errors="replace")[-3000:]

    def outcome(name: str):
        run = tmp_path / name / "run"
        losses = [h["loss"] for h in map(json.loads, (run / "history.jsonl").read_text().splitlines())]
        return losses, torch.load(run / "last.pt", weights_only=True)

    finish(start("a", False))
    want_losses, want = outcome("a")
    rng, mid_run = random.Random(3), 0
    last = tmp_path / "b" / "run" / "last.pt"
    for attempt in range(3):  # three runs killed at random moments, then one left to finish
        p = start("b", attempt > 0)
        while p.poll() is None and not last.exists():  # training (its first checkpoint) has begun
            time.sleep(0.05)
        deadline = time.time() + rng.uniform(0.0, 2.0)
        while p.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        if p.poll() is None:
            step = torch.load(last, weights_only=True)["step"] if last.exists() else -1
            os.killpg(p.pid, signal.SIGKILL)  # papermill and its kernel
            mid_run += 0 <= step < 40
        p.wait(timeout=60)
    finish(start("b", True))
    got_losses, got = outcome("b")
    assert mid_run >= 2  # the kills landed while training ran
    assert got["step"] == want["step"] == 40
    assert got_losses == pytest.approx(want_losses, rel=1e-6, abs=1e-7)
    for k, v in want["model"].items():
        assert torch.equal(got["model"][k], v), k
