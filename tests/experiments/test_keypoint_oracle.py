import json

import pytest
import torch

from torch.utils.data import Subset

from lmkcore.data import InMemory, open_dataset
from lmkcore.data.procedural import JOINTS
from lmkcore.experiments.keypoint_oracle import joint_errors, keypoint_oracle, main, pretrain_detector
from lmkcore.methods.autolink import AutoLink, AutoLinkConfig

TINY = ["resolution=32", "det_base=8", "det_down=2", "det_up=1", "dec_base=8", "dec_depth=2", "block=8", "warmup=1"]


def test_pretraining_moves_the_keypoints_onto_their_joints(tiny_config):
    data = InMemory(Subset(open_dataset("procedural-stick", "train", resolution=32), range(64)))
    names = list(JOINTS)
    torch.manual_seed(0)
    method = AutoLink(AutoLinkConfig(**{**tiny_config, "n_parts": len(names)}))
    before = joint_errors(method, data, names, n=64)
    losses = pretrain_detector(method, data, steps=30, batch_size=16, lr=3e-3)
    after = joint_errors(method, data, names, n=64)
    assert sum(losses[-5:]) < sum(losses[:5])
    assert after["others"] < 0.8 * before["others"]  # mean distance of keypoint k to joint k
    assert set(after["per_joint"]) == set(names)


def test_frozen_variant_trains_the_graph_and_decoder_but_not_the_detector(tiny_config, tmp_path):
    from dataclasses import replace

    config = AutoLinkConfig(**tiny_config)
    row = keypoint_oracle(config, "frozen", "procedural-stick", pretrain=5, steps=3, batch_size=4, out_dir=str(tmp_path),
                          num_workers=0, n_train=16, max_fit=24, max_test=8)
    assert row["steps"] == 3 and row["variant"] == "frozen"
    assert 0 <= row["skeleton_identity"]["recall"] <= 1 and len(row["skeleton_identity"]["edges"]) == 13  # K - 1
    trained = torch.load(tmp_path / row["run"] / "last.pt", weights_only=True)["model"]
    # the same pretraining again (seeded), without the AutoLink steps
    torch.manual_seed(0)
    method = AutoLink(replace(config, n_parts=14, equiv=0.0, sep=0.0))
    pretrain_detector(method, Subset(open_dataset("procedural-stick", "train", resolution=32), range(16)), steps=5,
                      batch_size=4)
    weights = {k: v for k, v in method.state_dict().items() if k.startswith("detector.") and k.endswith("weight")}
    assert weights and all(torch.equal(trained[k], v) for k, v in weights.items())  # the detector did not move
    assert not torch.equal(trained["theta"], method.theta.detach())  # the graph did
    with pytest.raises(ValueError, match="variant"):
        keypoint_oracle(config, "wrong", "procedural-stick")


def test_command_writes_named_rows_and_a_table(tmp_path):
    main(["--variants", "free", "--pretrain", "3", "--steps", "2", "--batch-size", "4", "--num-workers", "0",
          "--n-train", "16", "--max-fit", "24", "--max-test", "8", "--name", "tiny", "--out-dir", str(tmp_path / "runs"),
          "--reports", str(tmp_path), *TINY])
    runs = json.loads((tmp_path / "keypoint_oracle.json").read_text())
    assert [r["variant"] for r in runs["tiny"]["rows"]] == ["free"]
    assert runs["tiny"]["overrides"]["dec_base"] == 8 and len(runs["tiny"]["skeleton"]) == 14
    assert "| tiny | procedural-stick |" in (tmp_path / "keypoint_oracle.md").read_text()


def test_one_variant_alone_gets_its_own_row_name():
    from argparse import Namespace

    from lmkcore.experiments.keypoint_oracle import VARIANTS
    from lmkcore.experiments.oracle_report import resolve

    names = [resolve(Namespace(variants=v, name="", fields=["block=4"]), VARIANTS)[3]
             for v in ("frozen", "free", "frozen,free")]
    assert names == ["frozen block=4", "free block=4", "block=4"]
    assert resolve(Namespace(variants="free", name="mine", fields=[]), VARIANTS)[3] == "mine"
