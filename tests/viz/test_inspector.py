"""The inspector driven as a person drives it: widget values and button clicks, asserting on the
`InspectorState` behind them (no kernel needed; rendering is matplotlib Agg to PNG bytes)."""
from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from lmkcore.viz.sources import find_checkpoints, resolve_checkpoints
from lmkcore.viz.inspector import inspect

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def ui(tiny_runs):
    """Every snapshot of both runs available; the newest run's last snapshot selected."""
    return inspect("", runs_dir=str(tiny_runs), n_fit=48)


def labels(ui, k: int) -> list[str]:
    return [lb for _, lb in ui.checkpoints.options if f"_k{k}_" in lb]


def test_opens_on_newest_checkpoint_with_every_snapshot_listed(ui, tiny_runs):
    assert len(ui.checkpoints.options) == 4  # 2 runs x snapshots at steps 1, 2
    shown = [text for text, _ in ui.checkpoints.options]  # short and distinct: the shared prefix shown once
    assert len(set(shown)) == 4 and all(t.endswith(("@1", "@2")) and len(t) < 20 for t in shown), shown
    assert "autolink_*_procedural" in ui.run_name.value and "model_0000002.pt" in ui.checkpoints.tooltip
    assert ui.state.selected == [labels(ui, 6)[-1]] and ui.state.selected[0].endswith("@2")
    assert bytes(ui.image.value).startswith(PNG)
    assert ui.state.drawn_layers == ["keypoints", "annotations"]
    assert ui.message.value == ""  # no untrained-model note


def test_slider_moves_to_a_new_image_with_new_keypoints(ui):
    label = ui.state.selected[0]
    kp0, png0 = ui.state.panels[0].keypoints.clone(), ui.image.value
    ui.slider.value = 5
    assert ui.state.index == 5
    assert not torch.allclose(ui.state.panels[0].keypoints, kp0)
    assert torch.allclose(ui.state.panels[0].keypoints, ui.state.keypoints(label, 5))
    assert ui.image.value != png0
    assert "image 5 / 999" in ui.info.value


def test_arrows_and_search_box(ui):
    ui.next.click()
    ui.next.click()
    assert ui.state.index == ui.slider.value == 2
    ui.prev.click()
    assert ui.state.index == 1
    ui.search.value = "17"
    assert ui.state.index == 17
    ui.search.value = "figure_2_000042"  # procedural items are named like the store would name them
    assert ui.state.index == 42
    ui.search.value = "001234"  # not an index in range: searched as a name
    assert ui.state.index == 42 and "nothing matches" in ui.message.value
    ui.search.value = "000137"
    assert ui.state.index == 137
    ui.slider.value = 42
    ui.search.value = "no such image"
    assert ui.state.index == 42 and "nothing matches" in ui.message.value
    ui.search.value = "9"
    ui.slider.value = 3
    assert ui.search.value == ""  # the slider moved on: the box no longer names the image shown
    ui.search.value = "9"
    ui.slider.value = 9
    ui.go.click()  # searches the box's text again
    assert ui.state.index == 9 and ui.search.value == "9"


def graph_segments(ui) -> int:
    """Segments of the learned graph drawn on the first row's image (a LineCollection)."""
    from matplotlib.collections import LineCollection

    from lmkcore.viz.panels import draw_panels

    ax = draw_panels(ui.state, ui.state.panels).axes[0]
    return sum(len(c.get_segments()) for c in ax.collections if isinstance(c, LineCollection))


def test_toggles_are_the_declared_layers_and_draw_them(ui):
    shown = [ly for ly, box in ui.toggles.items() if box.layout.display != "none"]
    # the fixed layers, then autolink's own, in its declared order
    assert shown == ["keypoints", "annotations", "regressed", *ui.state.method(ui.state.selected[0]).layers]
    assert "features" not in ui.toggles  # autolink declares no features
    for layer in ("heatmaps", "graph", "masked", "reconstruction", "edges"):
        ui.toggles[layer].value = True
        assert layer in ui.state.drawn_layers
    p = ui.state.panels[0]
    assert p.shown["heatmaps"].data.shape == (16, 16) and p.shown["graph"].data.shape == (6, 6)
    assert list(p.overlays()) == ["heatmaps", "graph"]
    assert ui.all_edges.layout.display is None  # offered: autolink declares a graph-kind layer
    assert graph_segments(ui) == 6 - 1  # the strongest K - 1 edges by default
    png = ui.image.value
    ui.all_edges.value = True
    assert ui.state.all_edges and ui.image.value != png and graph_segments(ui) == 6 * 5 // 2
    assert list(p.panes()) == ["edges", "masked", "reconstruction"] and p.panes()["masked"].data.shape == (3, 32, 32)
    ui.toggles["keypoints"].value = False
    ui.toggles["masked"].value = False
    assert "keypoints" not in ui.state.drawn_layers and "masked" not in ui.state.drawn_layers
    h, w = Image.open(io.BytesIO(bytes(ui.image.value))).size[::-1]
    assert w > 2 * h  # one row (one checkpoint): the image, edges and reconstruction columns
    ui.checkpoints.value = (labels(ui, 4)[-1], labels(ui, 6)[-1])
    h2, w2 = Image.open(io.BytesIO(bytes(ui.image.value))).size[::-1]
    assert w2 == w and h2 > 1.7 * h  # a second row, the same columns


def test_checkpoint_selector_shows_panels_side_by_side(ui):
    both_k = [labels(ui, 4)[-1], labels(ui, 6)[-1]]
    ui.checkpoints.value = tuple(both_k)
    assert [p.label for p in ui.state.panels] == both_k
    assert [len(p.keypoints) for p in ui.state.panels] == [4, 6]
    assert len(ui.keypoint.options) == 1 + 6  # "all" + the largest K
    ui.checkpoints.value = tuple(labels(ui, 4))  # early vs late snapshot of one run
    assert len(ui.state.panels) == 2
    ui.checkpoints.value = tuple(lb for _, lb in ui.checkpoints.options)
    assert len(ui.state.panels) == 4
    ui.checkpoints.value = ()
    assert [p.label for p in ui.state.panels] == ["data"] and ui.state.drawn_layers == ["annotations"]


def test_keypoint_dropdown_shows_its_heatmap_and_error(ui):
    label = ui.state.selected[0]
    ui.keypoint.value = 2
    p = ui.state.panels[0]
    assert "heatmaps" in ui.state.drawn_layers  # shown for the chosen keypoint even if the toggle is off
    assert torch.equal(p.shown["heatmaps"].data, ui.state.visuals(label, 0)["heatmaps"][2])
    name, err = p.keypoint_error
    assert name in ui.state.data.info.keypoint_names and math.isfinite(err) and err >= 0
    # the error is the distance to the nearest annotated landmark, in percent of the box size
    item = ui.state.item(0)
    d = (item["keypoints"] - p.keypoints[2]).norm(dim=-1) * (32 - 1) / 2  # pixels
    box = item["box"]
    assert err == pytest.approx(100 * float(d.min()) / float((box[2:] - box[:2]).max()), rel=1e-4)
    assert "keypoint 2: nearest" in ui.info.value
    ui.keypoint.value = -1
    assert ui.state.keypoint is None and ui.state.panels[0].keypoint_error is None


def test_regressed_landmarks_come_from_the_shared_protocol(ui):
    from lmkcore.eval import LinearFit

    ui.toggles["regressed"].value = True
    p = ui.state.panels[0]
    assert "regressed" in ui.state.drawn_layers
    assert p.regressed.shape == (14, 2) and math.isfinite(p.image_error) and p.image_error > 0
    reg = ui.state.regressor(p.label)
    assert isinstance(reg.fit, LinearFit) and reg.n_fit == 48
    assert "regressed error" in ui.info.value


def test_predictions_are_computed_per_block_and_cached(ui):
    label = ui.state.selected[0]
    for i in (1, 2, 15, 3):  # all in block 0
        ui.slider.value = i
    ui.toggles["graph"].value = True
    ui.toggles["graph"].value = False
    assert ui.state.computed[("keypoints", label, 0)] == 1
    assert ui.state.computed[("visuals", label, 0)] == 1
    ui.slider.value = 16  # next block
    assert ui.state.computed[("keypoints", label, 1)] == 1
    ui.slider.value = 0
    assert ui.state.computed[("keypoints", label, 0)] == 1


def test_no_checkpoint_is_an_error_not_a_named_method(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint under .*runs.*build"):
        inspect("", runs_dir=str(tmp_path / "runs"), resolution=32)


def test_untrained_comparison_is_built_from_the_checkpoints_method(tiny_runs):
    ui = inspect("", runs_dir=str(tiny_runs), n_fit=48, untrained=True, seed=3)
    trained = ui.state.method(ui.state.selected[0])
    assert ui.state.selected[1:] == [f"untrained {trained.name} k6"]
    fresh = ui.state.method("untrained autolink k6")
    assert type(fresh) is type(trained) and fresh.config == trained.config and not fresh.training
    assert "UNTRAINED" in ui.message.value and "seed 3" in ui.state.message
    assert [len(p.keypoints) for p in ui.state.panels] == [6, 6]
    again = inspect("", runs_dir=str(tiny_runs), untrained=True, seed=3).state.method("untrained autolink k6")
    state, other = fresh.state_dict(), again.state_dict()
    assert all(torch.equal(state[k], other[k]) for k in state)  # seeded
    assert not all(torch.equal(state[k], v) for k, v in trained.state_dict().items())  # not the trained weights


def test_a_method_object_and_a_plain_image_folder(tmp_path, tiny_untrained):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("cat.png", "dog.jpg", "owl.png"):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(folder / name)
    ui = inspect(tiny_untrained, data=str(folder))
    assert len(ui.state.data) == 3 and ui.slider.max == 2
    assert "regressed" not in ui.state.available_layers()  # nothing annotated to regress to
    ui.search.value = "owl"
    assert ui.state.index == 2 and ui.state.name() == "owl.png"
    assert ui.state.drawn_layers == ["keypoints"]
    ui.keypoint.value = 1
    assert ui.state.panels[0].keypoint_error is None and "heatmaps" in ui.state.drawn_layers


def test_checkpoint_specs(tiny_runs):
    run = find_checkpoints(tiny_runs)[0].path.parent
    available, selected = resolve_checkpoints(str(run), tiny_runs)
    assert [c.step for c in available] == [1, 2] and selected == available[-1:]
    available, selected = resolve_checkpoints(f"{run / 'model_0000001.pt'},{run}", tiny_runs)
    assert [c.step for c in selected] == [1, 2]
    assert len(resolve_checkpoints("all", tiny_runs)[1]) == 4
    with pytest.raises(FileNotFoundError):
        resolve_checkpoints(str(tiny_runs / "nope"), tiny_runs)


def test_a_new_method_plugs_in_through_the_interface_only():
    """A method the inspector has never seen: no heatmaps or graph, only features."""
    from dataclasses import dataclass

    from lmkcore.methods import Method

    @dataclass
    class Config:
        n_parts: int = 3
        resolution: int = 32

    class Corners(Method):
        name = "corners"
        config_class = Config
        layers = {"features": "features"}

        def keypoints(self, images):
            return torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.0, 0.5]]).expand(images.shape[0], 3, 2)

        def visuals(self, images):
            return {"features": images.mean(1, keepdim=True).expand(-1, 5, -1, -1)[:, :, ::4, ::4]}

    ui = inspect({"corners": Corners(Config())}, data="procedural", resolution=32)
    shown = [ly for ly, box in ui.toggles.items() if box.layout.display != "none"]
    assert shown == ["keypoints", "annotations", "regressed", "features"]
    ui.toggles["features"].value = True
    assert ui.state.drawn_layers == ["keypoints", "annotations", "features"]
    rgb = ui.state.panels[0].panes()["features"].data  # through the PCA
    assert rgb.shape == (3, 8, 8) and rgb.min() >= 0 and rgb.max() <= 1
    ui.keypoint.value = 0  # no heatmaps declared: error only
    assert not ui.state.panels[0].overlays() and ui.state.panels[0].keypoint_error is not None


def test_a_store_with_its_saved_splits(tmp_path, tiny_runs):
    from lmkcore.data import ProceduralSource, write_store

    names = [f"figure_5_{i:06d}" for i in range(24)]
    store = write_store(tmp_path / "p32.h5", ProceduralSource(n=24, size=32, seed=5), 32,
                        splits={"fit": names[:16], "val": names[16:]})
    ui = inspect("", data=str(store), split="val", runs_dir=str(tiny_runs), n_fit=16)
    assert len(ui.state.data) == 8
    ui.search.value = "000021"  # a store name, not an index
    assert ui.state.index == 5 and ui.state.name() == "figure_5_000021"
    ui.toggles["regressed"].value = True
    assert ui.state.regressor(ui.state.selected[0]).n_fit == 16 and math.isfinite(ui.state.panels[0].image_error)


def test_uploaded_images_go_through_the_selected_checkpoints(ui):
    import datetime
    import io

    import numpy as np
    from PIL import Image

    from lmkcore.viz.inspector import Upload

    up = Upload(ui)
    png = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(png, format="png")
    up.button.value = ({"name": "me.png", "type": "image/png", "size": len(png.getvalue()),
                        "content": memoryview(png.getvalue()), "last_modified": datetime.datetime.now()},)
    assert len(up.results.children) == 1 and len(up.results.children[0].children) == len(ui.state.selected)
    assert bytes(up.results.children[0].children[0].children[1].value).startswith(PNG)
    assert "1 image(s) through" in up.status.value
    up.button.value = ({"name": "notes.txt", "type": "text/plain", "size": 3, "content": memoryview(b"abc"),
                        "last_modified": datetime.datetime.now()},)
    assert "not a readable image" in up.status.value


def test_size_crop_numbers_and_save_view(ui, tmp_path):
    import json

    png0 = bytes(ui.image.value)
    ui.size.value = 2.0
    assert ui.state.panel_inches == 2.0 and len(bytes(ui.image.value)) < len(png0)  # smaller panels
    ui.crop.value = True
    ui.numbers.value = True
    assert ui.state.crop and ui.state.numbers and bytes(ui.image.value) != png0
    ui.save_dir.value = str(tmp_path / "views")
    ui.save.click()
    png, state = tmp_path / "views" / f"view_image{ui.state.index}.png", tmp_path / "views" / f"view_image{ui.state.index}.json"
    assert png.read_bytes().startswith(PNG) and "saved" in ui.status.value
    view = json.loads(state.read_text())
    assert view["crop"] and view["numbers"] and view["panel_inches"] == 2.0 and view["checkpoints"]
    ui.save.click()  # never overwritten: a second file
    assert (tmp_path / "views" / f"view_image{ui.state.index}_2.png").exists()


def test_controls_match_the_view(ui):
    ui.search.value = "3"
    assert ui.slider.value == 3
    ui.slider.value = 4
    assert ui.search.value == ""  # no stale query beside another image
    heat = [n for n, k in ui.state.method(ui.state.selected[0]).layers.items() if k == "heatmaps"]
    ui.keypoint.value = 1
    assert heat and all(ui.toggles[n].value for n in heat) and set(heat) <= ui.state.enabled
