import json

import pytest
import torch

from lmkcore.experiments.edge_oracle import edge_oracle, main, skeleton_weights, train_decoder
from lmkcore.methods.autolink import AutoLinkConfig
from lmkcore.ops import pair_index


def test_skeleton_weights_draw_skeleton_edges_between_visible_joints_only():
    visible = torch.tensor([[True, True, True], [True, False, True]])
    w = skeleton_weights([(0, 1), (1, 2)], visible)  # pairs (0, 1), (0, 2), (1, 2)
    assert [tuple(map(int, p)) for p in zip(*pair_index(3))] == [(0, 1), (0, 2), (1, 2)]
    assert w.tolist() == [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]


def _tiny(tiny_config) -> AutoLinkConfig:
    return AutoLinkConfig(**{**tiny_config, "decode_scale": 1.0})


def _data(n: int, seed: int):
    from lmkcore.data.procedural import figures

    images, kp = figures(n, 32, seed)
    return {"image": images, "keypoints": kp, "visible": torch.ones(kp.shape[:2], dtype=torch.bool)}


def test_variants_share_initialisation_and_batches_and_differ_only_by_edges(tiny_config):
    from lmkcore.data.procedural import SKELETON

    config, train, test = _tiny(tiny_config), _data(16, 0), _data(8, 1)
    rows = {v: train_decoder(config, train, test, SKELETON, v, steps=3, batch_size=4) for v in ("skeleton", "none")}
    again = train_decoder(config, train, test, SKELETON, "skeleton", steps=3, batch_size=4)
    assert again["train_loss"] == rows["skeleton"]["train_loss"]  # seeded: the same run twice
    assert rows["none"]["train_loss"] != rows["skeleton"]["train_loss"]  # the edges reach the decoder
    for r in rows.values():
        assert all(r[k] > 0 for k in ("train_loss", "test_loss", "hidden_l1_near_skeleton", "hidden_l1_elsewhere"))
    with pytest.raises(ValueError, match="variant"):
        train_decoder(config, train, test, SKELETON, "wrong", steps=1)


def test_edge_oracle_runs_every_variant_on_a_data_set_with_a_skeleton(tiny_config):
    rows = edge_oracle(_tiny(tiny_config), "procedural", steps=2, batch_size=4, n_train=8, n_test=4)
    assert [r["variant"] for r in rows] == ["skeleton", "shuffled", "none"]


def test_command_writes_named_rows_and_a_table(tmp_path, capsys):
    tiny = ["resolution=32", "det_base=8", "det_down=2", "dec_base=8", "dec_depth=2", "block=8", "warmup=1"]
    main(["--steps", "2", "--batch-size", "4", "--variants", "skeleton,none", "--name", "tiny",
          "--n-train", "8", "--n-test", "4",
          "--reports", str(tmp_path), *tiny])
    runs = json.loads((tmp_path / "edge_oracle.json").read_text())
    assert [r["variant"] for r in runs["tiny"]["rows"]] == ["skeleton", "none"]
    assert runs["tiny"]["overrides"]["dec_base"] == 8
    assert "| tiny |" in (tmp_path / "edge_oracle.md").read_text()
