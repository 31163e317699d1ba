"""`python -m lmkcore.detect`: photos, folders and videos through checkpoints, annotated images and keypoints out."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from lmkcore.detect import detect_image, main
from lmkcore.viz.draw import annotate, keypoint_colours, strongest_edges


class Corners:
    """A stand-in method: keypoints at the top-left and bottom-right corners; the second one not confident."""

    confidence_threshold = 0.5
    checkpoint_info = {"resolution": 16}

    def keypoints(self, x):
        assert x.shape[-2:] == (16, 16)  # the image is resized whole to the training resolution
        return torch.tensor([[[-1.0, -1.0], [1.0, 1.0]]])

    def confidence(self, x):
        return torch.tensor([[0.9, 0.1]])

    def graph(self):
        return None


def test_keypoints_map_back_to_the_original_pixels():
    d = detect_image(Corners(), np.zeros((40, 80, 3), np.uint8))  # H 40, W 80
    np.testing.assert_allclose(d["points"][0], [0.0 + 0.5 * 80 / 16 - 0.5, 0.5 * 40 / 16 - 0.5], atol=1e-5)
    np.testing.assert_allclose(d["points"][1], [80 - 0.5 * 80 / 16 - 0.5, 40 - 0.5 * 40 / 16 - 0.5], atol=1e-5)
    assert d["visible"].tolist() == [True, False] and d["graph"] is None


def test_annotate_draws_each_visible_keypoint_in_its_colour_and_the_strongest_edges():
    img = np.zeros((64, 64, 3), np.uint8)
    pts = np.array([[10.0, 10.0], [50.0, 50.0], [10.0, 50.0]])
    out = annotate(img, pts, visible=[True, True, False])
    colours = (keypoint_colours(3) * 255).round()
    assert np.abs(out[10, 10].astype(float) - colours[0]).max() <= 2
    assert np.abs(out[50, 50].astype(float) - colours[1]).max() <= 2
    assert out[50, 10].max() == 0 and img.max() == 0  # the invisible one is not drawn; the input is untouched
    g = np.array([[0, 3, 1], [3, 0, 2], [1, 2, 0]], float)
    i, j, rel = strongest_edges(g)  # K - 1 = 2 edges, strongest first
    assert list(zip(i, j)) == [(0, 1), (1, 2)] and rel[0] == 1.0
    assert annotate(img, pts, graph=g)[30, 30].max() > 0  # the 0-1 edge crosses (30, 30)


def test_the_command_line_takes_files_folders_and_videos(tmp_path, procedural32, tiny_config):
    import cv2

    from lmkcore.methods import build
    from lmkcore.train import TrainConfig, train

    r = train(build("autolink", **tiny_config), procedural32, TrainConfig(
        steps=1, batch_size=4, num_workers=0, out_dir=str(tmp_path / "runs"), run_name="run", progress=False,
        tensorboard=False))
    rng = np.random.default_rng(0)
    (tmp_path / "folder").mkdir()
    for name in ("a.png", "folder/b.jpg", "folder/c.png"):
        Image.fromarray(rng.integers(0, 255, (48, 72, 3), dtype=np.uint8)).save(tmp_path / name)
    video = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (40, 30))
    for _ in range(5):
        video.write(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    video.release()
    main(["--checkpoint", str(r.run_dir), "--out", str(tmp_path / "out"), "--every", "2", "--numbers",
          str(tmp_path / "a.png"), str(tmp_path / "folder"), str(tmp_path / "clip.avi")])
    out = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len([n for n in out if n.endswith(".png")]) == 3 + 3  # 3 images + frames 0, 2, 4
    record = json.loads((tmp_path / "out" / "keypoints.json").read_text())
    (label,) = record["a"]
    pts = np.array(record["a"][label]["points"])
    assert pts.shape == (tiny_config["n_parts"], 2) and (pts[:, 0] > -1).all() and (pts[:, 0] < 72).all()
    assert Image.open(tmp_path / "out" / f"a__{label}.png").size == (72, 48)  # drawn on the original image
    with pytest.raises(SystemExit, match="nothing.png: no such image, folder or video"):
        main(["--checkpoint", str(r.run_dir), "--out", str(tmp_path / "out"), str(tmp_path / "nothing.png")])
    with pytest.raises(SystemExit, match="neither a file nor a run directory"):
        main(["--checkpoint", str(tmp_path / "runs" / "nope"), str(tmp_path / "a.png")])
