"""Layers are drawn by their declared kind: a method defined here, with one layer of each kind and
names viz has never seen, renders in the inspector and in the figures; each kind's drawing and
its pure helpers (PCA to RGB, covariance ellipses, strongest graph edges) checked in closed form."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass

import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from lmkcore.data import open_dataset
from lmkcore.methods import Method
from lmkcore.methods.base import LAYER_KINDS
from lmkcore.viz import figures
from lmkcore.viz.draw import draw_graph
from lmkcore.viz.layers import (Layer, covariance_ellipses, draw_covariances, draw_overlay, draw_points, pca_rgb,
                                per_image)
from lmkcore.viz.panels import draw_panels, legend_items
from lmkcore.viz.state import InspectorState, declared_layers

PNG = b"\x89PNG\r\n\x1a\n"
KP = torch.tensor([[-0.5, -0.5], [0.5, -0.25], [0.0, 0.5]])  # (K=3, 2)


@dataclass
class EveryKindConfig:
    n_parts: int = 3
    resolution: int = 32


class EveryKind(Method):
    """Fixed keypoints and one layer of every kind, under names of its own (tiny tensors)."""

    name = "everykind"
    config_class = EveryKindConfig
    layers = {"heat": "heatmaps", "links": "graph", "spread": "covariances", "clusters": "points",
              "recon": "image", "mask": "map", "feats": "features"}

    def keypoints(self, images):
        return KP.expand(images.shape[0], -1, -1)  # (B, K, 2)

    def visuals(self, images):
        b = images.shape[0]
        g = torch.linspace(-1, 1, 8)
        yy, xx = torch.meshgrid(g, g, indexing="ij")  # (8, 8)
        heat = torch.exp(-((xx - KP[:, 0, None, None]) ** 2 + (yy - KP[:, 1, None, None]) ** 2) / 0.1)  # (K, 8, 8)
        points = torch.tensor([[-0.8, -0.8, 0], [0.8, -0.8, 1], [0.8, 0.8, 2], [-0.8, 0.8, -1]])  # (4, 3)
        return {
            "heat": heat.expand(b, -1, -1, -1),  # (B, K, 8, 8)
            "links": torch.tensor([[0, 1.0, 0.2], [1.0, 0, 0.5], [0.2, 0.5, 0]]),  # (K, K), shared
            "spread": torch.diag_embed(torch.tensor([0.04, 0.01])).expand(b, 3, 2, 2),  # (B, K, 2, 2)
            "clusters": points.expand(b, -1, -1),  # (B, 4, 3)
            "recon": images.flip(-1),  # (B, 3, H, W)
            "mask": images.mean(1, keepdim=True),  # (B, 1, H, W)
            "feats": torch.stack([xx, yy, xx * yy, xx + yy], 0).expand(b, -1, -1, -1),  # (B, 4, 8, 8)
        }


def test_the_test_method_has_every_kind():
    assert sorted(EveryKind.layers.values()) == sorted(LAYER_KINDS)


@pytest.fixture(scope="module")
def val32():
    return open_dataset("procedural", "val", 32)


@pytest.fixture
def state(val32):
    return InspectorState(val32, {"every": EveryKind(EveryKindConfig())}, block=4)


def test_every_kind_renders_in_the_inspector(state):
    assert state.available_layers() == ["keypoints", "annotations", *EveryKind.layers]
    for name in EveryKind.layers:
        state.toggle(name, True)
    png = state.render()
    assert png.startswith(PNG)
    assert state.drawn_layers == ["keypoints", "annotations", *EveryKind.layers]
    p = state.panels[0]
    assert list(p.overlays()) == ["heat", "links", "spread", "clusters"]  # drawing order, by kind
    assert list(p.panes()) == ["recon", "mask", "feats"]
    assert p.shown["heat"].data.shape == (8, 8) and p.shown["links"].data.shape == (3, 3)
    assert p.shown["spread"].data.shape == (3, 2, 2) and p.shown["clusters"].data.shape == (4, 3)
    assert p.shown["feats"].data.shape == (3, 8, 8)  # PCA to RGB
    with Image.open(io.BytesIO(png)) as im:
        w, h = im.size
    assert w > 3 * h  # one row: the image and three pane columns
    with pytest.raises(KeyError, match="unknown layer 'edges'"):
        state.toggle("edges", True)  # another method's word: not declared here


def test_chosen_keypoint_shows_its_own_map(state):
    state.choose_keypoint(1)
    state.compose()
    heat = state.panels[0].shown["heat"].data
    assert "heat" in state.drawn_layers and torch.equal(heat, state.visuals("every", 0)["heat"][1])


def test_legend_names_only_what_is_drawn(state):
    state.toggle("links", True)
    state.toggle("clusters", True)
    state.toggle("annotations", False)
    panels = state.compose()
    texts = [t for t, _ in legend_items(panels)]
    assert texts[:3] == ["kp 0", "kp 1", "kp 2"]  # keypoint colour swatches
    assert texts[3:] == ["links (graph, strongest K-1 edges)", "clusters (points, colour: label)"]
    fig = draw_panels(state, panels)
    assert sorted(t.get_text() for t in fig.legends[0].get_texts()) == sorted(texts)
    state.toggle("keypoints", False)
    state.toggle("clusters", False)
    assert [t for t, _ in legend_items(state.compose(), all_edges=True)] == ["links (graph, all edges)"]
    state.all_edges = True
    assert state.legend() == ["links (graph, all edges)"] and state.view()["legend"] == state.legend()


def test_every_kind_in_the_figures(tmp_path, val32):
    methods = {"every": EveryKind(EveryKindConfig()), "also": EveryKind(EveryKindConfig())}
    path = figures.layers_figure(methods, val32, tmp_path / "layers.png", index=2, panel_inches=1.5, dpi=50)
    with Image.open(path) as im:
        w, h = im.size
    assert w == (1 + 3) * 75 and h > 2 * 75  # image + 3 panes, a row per checkpoint
    path = figures.skeleton_figure(methods["every"], val32, tmp_path / "skeleton.png", n=2, dpi=40)
    assert path.is_file()


def test_a_layer_named_like_a_fixed_one_is_refused():
    class Clash(EveryKind):
        layers = {"keypoints": "points"}

    with pytest.raises(ValueError, match="reserves"):
        declared_layers(Clash(EveryKindConfig()))


# the kinds' helpers, closed form

def test_pca_rgb_recovers_three_patterns_from_a_rotation():
    g = torch.arange(8, dtype=torch.float64) - 3.5
    yy, xx = torch.meshgrid(g, g, indexing="ij")
    pats = torch.stack([xx, yy, xx * yy]).reshape(3, -1)  # orthogonal, zero mean
    pats = pats / pats.norm(dim=1, keepdim=True) * torch.tensor([[3.0], [2.0], [1.0]], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    feats = (q @ pats).reshape(6, 8, 8) + 5.0  # (C=6, 8, 8): a rotation of the patterns, offset
    rgb = pca_rgb(feats)  # (3, 8, 8)
    assert rgb.shape == (3, 8, 8) and rgb.dtype == feats.dtype
    for c in range(3):  # channel c is pattern c (largest variance first), up to sign, min-max scaled
        p = pats[c].reshape(8, 8)
        up, down = (p - p.min()) / (p.max() - p.min()), (p.max() - p) / (p.max() - p.min())
        assert torch.allclose(rgb[c], up, atol=1e-9) or torch.allclose(rgb[c], down, atol=1e-9)
    batch = pca_rgb(torch.stack([feats, feats]))  # fitted on the batch: the same here
    assert batch.shape == (2, 3, 8, 8) and torch.allclose(batch[1], rgb, atol=1e-9)
    two = pca_rgb(feats[:2])  # fewer than 3 channels: the missing ones are 0
    assert two[2].abs().max() == 0 and two[:2].amax() == 1
    with pytest.raises(ValueError, match="pca_rgb"):
        pca_rgb(torch.zeros(8, 8))


def test_ellipse_axes_of_a_diagonal_covariance():
    size = 33  # normalised length 1 = 16 pixels
    major, minor, angle = covariance_ellipses(torch.diag_embed(torch.tensor([[0.04, 0.01], [0.01, 0.04]])), size)
    assert torch.allclose(major, torch.tensor([12.8, 12.8])) and torch.allclose(minor, torch.tensor([6.4, 6.4]))
    assert angle[0] == pytest.approx(0.0, abs=1e-6) and abs(float(angle[1])) == pytest.approx(90.0)
    t = math.radians(30)
    r = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    major, minor, angle = covariance_ellipses((r @ torch.diag(torch.tensor([0.09, 0.01])) @ r.T)[None], size, 1.0)
    assert float(major[0]) == pytest.approx(2 * 0.3 * 16, rel=1e-5) and float(minor[0]) == pytest.approx(2 * 0.1 * 16)
    assert float(angle[0]) == pytest.approx(30.0, abs=1e-4)
    ax = Figure().subplots()
    coll = draw_covariances(ax, KP, torch.diag_embed(torch.full((3, 2), 0.01)), size)
    assert len(coll.get_offsets()) == 3


def test_graph_draws_the_strongest_k_minus_1_edges_by_default_and_all_on_request():
    k = 5
    w = torch.rand(k, k, generator=torch.Generator().manual_seed(1))
    kp = torch.rand(k, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    ax = Figure().subplots()
    coll = draw_graph(ax, kp, w, 32)
    assert len(coll.get_segments()) == k - 1
    sym = torch.maximum(w, w.T)
    i, j = torch.triu_indices(k, k, 1)
    best = torch.argsort(sym[i, j], descending=True)[: k - 1]
    pix = (kp + 1) / 2 * 31
    expect = torch.stack([pix[i[best]], pix[j[best]]], 1).numpy()
    assert all(abs(s - e).max() < 1e-5 for s, e in zip(coll.get_segments(), expect))  # strongest first
    widths, alphas = coll.get_linewidths(), coll.get_colors()[:, 3]
    assert list(widths) == sorted(widths, reverse=True) and alphas[0] == 1.0 and alphas[-1] < 1.0  # by weight
    assert tuple(coll.get_colors()[0, :3]) != (1.0, 1.0, 1.0)  # a colour of its own
    assert len(draw_overlay(ax, Layer("graph", w), 32, kp, all_edges=True).get_segments()) == k * (k - 1) // 2


def test_points_coloured_by_label_and_per_image_slicing():
    ax = Figure().subplots()
    pts = torch.tensor([[0.0, 0.0, 0], [0.5, 0.5, 0], [-0.5, 0.5, 3], [0.2, -0.2, -1]])
    cols = draw_points(ax, pts, 32).get_facecolors()[:, :3]
    assert (cols[0] == cols[1]).all() and not (cols[0] == cols[2]).all()  # same label, same colour
    assert tuple(cols[3]) == pytest.approx((0.6, 0.6, 0.6))  # no label: grey
    g = torch.rand(3, 3)
    assert per_image("graph", g, 1) is g and torch.equal(per_image("graph", g.expand(2, 3, 3), 1), g)
    assert per_image("points", pts.expand(2, 4, 3), 1).shape == (4, 3)


def test_run_figures_by_kind_and_without_a_graph(tmp_path, val32):
    import matplotlib.pyplot as plt

    from lmkcore.viz.runs import draw_detections, keypoint_grid, reconstructions

    m = EveryKind(EveryKindConfig())  # declares a graph layer but offers no graph(): None
    images = torch.stack([val32[i]["image"] for i in range(3)])
    fig = reconstructions(m, images, n=3)
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    assert titles == ["input", "recon", "mask", "feats"]  # the pane kinds, in declared order
    plt.close(fig)
    plt.close(keypoint_grid(m, images, cols=3))
    assert draw_detections(m, val32, tmp_path / "det", limit=2) == 2
