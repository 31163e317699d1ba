"""The scripts in tools/: what data a study trains on and scores."""
import importlib.util
from pathlib import Path

from lmkcore.data import ProceduralSource, write_store
from lmkcore.train import RunResult

ROOT = Path(__file__).resolve().parent.parent


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_choice_run_trains_on_the_train_split_and_scores_the_held_out_fit_images(tmp_path, monkeypatch, capsys):
    names = [f"figure_5_{i:06d}" for i in range(20)]
    store = write_store(tmp_path / "fig.h5", ProceduralSource(n=20, size=16, seed=5), 16,
                        splits={"fit": names[:15], "val": names[15:]})
    tool, calls = _tool("choice_run"), {}

    def score(ckpt, data, **kw):
        calls["score"] = (ckpt, data, kw)
        return {"metrics": {"nme": 12.345}, "diagnostics": {}}

    def train(argv):  # the trainer's stages: a recipe's last stage holds the checkpoint to score
        calls["train"] = argv
        run = tmp_path / "runs" / "partbased_x_3"
        return [RunResult(run / "first", 3), RunResult(run, 3)]

    monkeypatch.setattr(tool, "train_main", train)
    monkeypatch.setattr(tool, "evaluate_checkpoint", score)
    monkeypatch.setattr(tool, "collect", lambda folder: calls.setdefault("collect", folder))
    tool.main(["--data", str(store), "--method", "partbased", "--name", "x", "--steps", "3", "--hold", "5",
               "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports"), "--few_shot", "50, 10",
               "--head", "max_steps=7", "--head", "TPS_aug=false", "--init_from", "runs/base", "prior=0"])
    argv = calls["train"]
    choice = str(tmp_path / "fig-choice.h5")
    assert argv[argv.index("--data") + 1] == choice and argv[argv.index("--split") + 1] == "train"
    assert argv[argv.index("--run_name") + 1] == "partbased_x_3" and argv[-1] == "prior=0"
    ckpt, data, kw = calls["score"]
    assert data == choice and (kw["fit_split"], kw["test_split"]) == ("train", "hold")
    assert argv[argv.index("--init_from") + 1] == "runs/base" and kw["few_shot"] == ["50", "10"]
    assert (kw["head"].max_steps, kw["head"].TPS_aug, kw["head"].patience) == (7, False, 4)  # over the cpu profile's
    assert ckpt == tmp_path / "runs" / "partbased_x_3" / "last.pt" and calls["collect"] == str(tmp_path / "reports")
    assert "RESULT x 3 {'nme': 12.35}" in capsys.readouterr().out


def test_choice_run_trains_at_the_bench_s_resolution_unless_a_field_sets_it(tmp_path, monkeypatch):
    """A choice is made on the recipe the bench trains: the networks see the plan's resolution (MTFL: 80), not
    the config's default (64)."""
    import h5py

    store = write_store(tmp_path / "mtfl-16.h5", ProceduralSource(n=12, size=16, seed=5), 16,
                        splits={"fit": [f"figure_5_{i:06d}" for i in range(12)]})
    with h5py.File(store, "a") as f:
        f.attrs["dataset"] = "mtfl"
    tool, argvs = _tool("choice_run"), []

    def train(argv):
        argvs.append(argv)
        return [RunResult(tmp_path / "runs" / "run", 1)]

    monkeypatch.setattr(tool, "train_main", train)
    monkeypatch.setattr(tool, "evaluate_checkpoint", lambda *a, **kw: {"metrics": {}, "diagnostics": {}})
    monkeypatch.setattr(tool, "collect", lambda folder: None)
    common = ["--data", str(store), "--method", "selftrain", "--name", "x", "--steps", "1", "--hold", "4",
              "--runs", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports")]
    tool.main(common)
    tool.main([*common, "resolution=64"])
    assert "resolution=80" in argvs[0] and not any(a.startswith("resolution=") for a in argvs[1][:-1])
    assert argvs[1][-1] == "resolution=64"


def test_selftrain_readout_copies_a_step2_checkpoint_with_every_active_channel_read_out(tmp_path):
    import pytest
    import torch

    from lmkcore.checkpoint import load_method
    from lmkcore.methods.selftrain import SelfTrain, SelfTrainConfig, save_method

    m = SelfTrain(SelfTrainConfig(n_clusters=4, stage=2, n_parts=4, resolution=16, stem=4, width=8, depth=1,
                                  descriptor_dim=4))
    m.active[1] = False  # merged away: stays out
    m.detected.copy_(torch.tensor([True, True, False, False]))  # the card's rule dropped channels 2 and 3
    (tmp_path / "exp" / "step2").mkdir(parents=True)
    save_method(m, tmp_path / "exp" / "step2" / "last.pt", step=5, dataset="mtfl", resolution=16)
    assert load_method(tmp_path / "exp" / "step2" / "last.pt").n_keypoints == 1
    copy = _tool("selftrain_readout").every_channel(tmp_path / "exp" / "step2" / "last.pt", tmp_path / "out")
    back = load_method(copy)
    assert copy == tmp_path / "out" / "exp_all" / "step2" / "last.pt"
    assert back.config.min_detection == 0.0 and back.n_keypoints == 3 and back.checkpoint_info["experiment"] == "exp_all"
    step1 = tmp_path / "s1.pt"
    save_method(SelfTrain(SelfTrainConfig(n_clusters=4, resolution=16, stem=4, width=8, depth=1, descriptor_dim=4)),
                step1, step=1, dataset="mtfl", resolution=16)
    with pytest.raises(ValueError, match="not a self-training Step-2"):
        _tool("selftrain_readout").every_channel(step1, tmp_path / "out")


def test_selftrain_threshold_scores_a_step2_checkpoint_at_another_peak_threshold_with_and_without_the_rule(tmp_path):
    import json

    import torch

    from lmkcore.methods.selftrain import SelfTrain, SelfTrainConfig, save_method

    names = [f"figure_5_{i:06d}" for i in range(40)]
    store = write_store(tmp_path / "fig-choice.h5", ProceduralSource(n=40, size=16, seed=5), 16,
                        splits={"train": names[:30], "hold": names[30:]})
    m = SelfTrain(SelfTrainConfig(n_clusters=4, stage=2, n_parts=4, resolution=16, stem=4, width=8, depth=1,
                                  descriptor_dim=4))
    m.active[1] = False  # merged away: out of both read-outs
    m.detected.copy_(torch.tensor([True, True, False, True]))  # the checkpoint's rule kept channels 0 and 3
    (tmp_path / "exp" / "step2").mkdir(parents=True)
    save_method(m, tmp_path / "exp" / "step2" / "last.pt", step=5, dataset="procedural", resolution=16)
    rows = _tool("selftrain_threshold").main([str(tmp_path / "exp" / "step2" / "last.pt"), "--data", str(store),
                                              "--name", "tiny", "--thresholds", "-1", "--reports",
                                              str(tmp_path / "reports")])
    fixed, refit = rows
    assert (fixed["readout"], fixed["channels"], refit["readout"], refit["channels"]) == ("fixed", 2, "refit", 3)
    assert fixed["presence"] == refit["presence"] == 100.0  # every peak reaches -1
    assert SelfTrain.confidence_threshold == 0.2  # the class's threshold is untouched
    saved = json.loads((tmp_path / "reports" / "peak_threshold" / "tiny.json").read_text())
    assert saved["rows"] == rows and saved["checkpoint"] == "exp/step2/last.pt"
    assert (tmp_path / "reports" / "peak_threshold.md").read_text().count("| tiny | -1 |") == 2
