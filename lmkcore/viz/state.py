"""The inspector's state: which image, which checkpoints, which layers; predictions cached by block.

A plain class, driven by the widgets in `lmkcore.viz.inspector` and testable without a kernel.
Methods are used only through the shared interface (`keypoints`, `visuals`, `layers`), so a new
method shows up here without changes. Predictions are computed for a block of `block` images at
once and cached per (kind, checkpoint, block); a redraw never runs a network.

    state = InspectorState(data, {"run@500": Checkpoint(...), "untrained": method}, ["run@500"])
    state.set_index(3); state.toggle("heatmaps", True); png = state.render()
"""
from __future__ import annotations

import io
from collections import Counter, OrderedDict
from dataclasses import dataclass, field

import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..checkpoint import load_method
from ..methods import Method
from . import protocol
from .inputs import Checkpoint, batch, has_annotations, item_names

# Layers in display order. Overlays are drawn on the image; the others get a row of their own.
LAYERS = ("keypoints", "annotations", "regressed", "graph", "heatmaps", "masked", "reconstruction", "edges",
          "features")
ROW_LAYERS = ("masked", "reconstruction", "edges", "features")


@dataclass
class Panel:
    """What one checkpoint's column shows for the current image."""

    label: str
    layers: list[str] = field(default_factory=list)
    keypoints: Tensor | None = None  # (K, 2)
    regressed: Tensor | None = None  # (L, 2)
    image_error: float | None = None  # mean regressed-landmark error on this image
    keypoint_error: tuple[str, float] | None = None  # (nearest landmark, normalised distance)
    heatmap: Tensor | None = None  # (h, w) drawn over the image
    rows: dict[str, Tensor] = field(default_factory=dict)  # row layer -> (C, H, W)
    graph: Tensor | None = None  # (K, K)


class InspectorState:
    def __init__(self, data: Dataset, sources: dict[str, Checkpoint | Method], selected: list[str] | None = None,
                 *, fit_data: Dataset | None = None, n_fit: int = 500, block: int = 16, cache_blocks: int = 64,
                 device: str = "cpu", message: str = ""):
        if len(data) == 0:
            raise ValueError("the data set is empty")
        self.data, self.sources, self.fit_data, self.n_fit = data, dict(sources), fit_data, n_fit
        self.block, self.cache_blocks, self.device = block, cache_blocks, torch.device(device)
        self.message = message
        self.annotated = has_annotations(data)
        self.index = 0
        self.selected: list[str] = list(selected if selected is not None else list(self.sources)[:1])
        self.enabled: set[str] = {"keypoints", "annotations"}
        self.keypoint: int | None = None  # chosen keypoint (None: all)
        self.drawn_layers: list[str] = []  # layers drawn by the last compose / render
        self.panels: list[Panel] = []
        self.computed: Counter = Counter()  # (kind, label, block) -> times computed (cache misses)
        self._cache: OrderedDict = OrderedDict()
        self._methods: dict[str, Method] = {}
        self._regressors: dict[str, protocol.Regressor | None] = {}
        self._names: list[str] | None = None
        self._fit_subset: Dataset | None = None

    # what the widgets set
    def set_index(self, i: int) -> None:
        if not 0 <= int(i) < len(self.data):
            raise IndexError(f"image {i} is outside 0..{len(self.data) - 1}")
        self.index = int(i)

    def find(self, query: str) -> int | None:
        """An index from a query: an index in range, else the first item whose name contains the text."""
        q = str(query).strip()
        if not q:
            return None
        if q.isdigit() and int(q) < len(self.data):
            return int(q)
        if self._names is None:
            self._names = item_names(self.data)
        q = q.lower()
        return next((i for i, n in enumerate(self._names) if q in n.lower()), None)

    def name(self, i: int | None = None) -> str:
        if self._names is None:
            self._names = item_names(self.data)
        return self._names[self.index if i is None else i]

    def select(self, labels) -> None:
        unknown = [lb for lb in labels if lb not in self.sources]
        if unknown:
            raise KeyError(f"unknown checkpoint(s) {unknown}; known: {list(self.sources)}")
        self.selected = list(labels)

    def toggle(self, layer: str, on: bool = True) -> None:
        if layer not in LAYERS:
            raise KeyError(f"unknown layer {layer!r}; layers: {LAYERS}")
        (self.enabled.add if on else self.enabled.discard)(layer)

    def choose_keypoint(self, k: int | None) -> None:
        self.keypoint = None if k is None or k < 0 else int(k)

    # what there is to show
    def method(self, label: str) -> Method:
        if label not in self._methods:
            src = self.sources[label]
            m = src if isinstance(src, Method) else load_method(src.path)
            self._methods[label] = m.to(self.device).eval()
        return self._methods[label]

    def available_layers(self) -> list[str]:
        """keypoints and annotations always; regressed where there is a fit split; plus every layer
        a selected method declares."""
        have = {"keypoints", "annotations"}
        if self.annotated and self.fit_data is not None and self.selected:
            have.add("regressed")
        for lb in self.selected:
            have.update(self.method(lb).layers)
        return [ly for ly in LAYERS if ly in have]

    def n_keypoints(self) -> int:
        return max((self.method(lb).n_keypoints for lb in self.selected), default=0)

    # predictions, by block
    def _block(self, kind: str, label: str | None, i: int, compute):
        b = i // self.block
        key = (kind, label, b)
        if key in self._cache:
            self._cache.move_to_end(key)
        else:
            idx = range(b * self.block, min(len(self.data), (b + 1) * self.block))
            self._cache[key] = compute(idx)
            self.computed[key] += 1
            while len(self._cache) > self.cache_blocks:
                self._cache.popitem(last=False)
        return self._cache[key], i - b * self.block

    def item(self, i: int) -> dict:
        items, j = self._block("items", None, i, lambda idx: batch(self.data, idx))
        return {k: v[j] for k, v in items.items()}

    @torch.no_grad()
    def keypoints(self, label: str, i: int) -> Tensor:
        """`(K, 2)` keypoints of checkpoint `label` on image `i`."""
        def run(idx):
            return self.method(label).keypoints(self._images(idx)).float().cpu()
        kp, j = self._block("keypoints", label, i, run)
        return kp[j]

    @torch.no_grad()
    def visuals(self, label: str, i: int) -> dict[str, Tensor]:
        """The method's visual layers on image `i`: per-image tensors, and the shared graph `(K, K)`."""
        def run(idx):
            return {k: v.float().cpu() for k, v in self.method(label).visuals(self._images(idx)).items()}
        vis, j = self._block("visuals", label, i, run)
        return {k: (v[j] if v.dim() == 4 else v) for k, v in vis.items()}

    def _images(self, idx) -> Tensor:
        items, _ = self._block("items", None, idx[0], lambda ix: batch(self.data, ix))
        return items["image"].to(self.device)

    def regressor(self, label: str) -> protocol.Regressor | None:
        """The protocol's linear map for this checkpoint, fitted once on the fit split."""
        if label not in self._regressors:
            if not (self.annotated and self.fit_data is not None):
                return None
            if self._fit_subset is None:
                self._fit_subset = protocol.fit_subset(self.fit_data, self.n_fit)
            self._regressors[label] = protocol.fit_on(self.method(label), self._fit_subset)
        return self._regressors[label]

    def _box(self, item: dict) -> Tensor:
        return item["box"] if "box" in item else torch.zeros(4)

    def image_error(self, label: str, i: int) -> float | None:
        """Mean regressed-landmark error on image i (percent of the data set's normaliser)."""
        reg, item = self.regressor(label), self.item(i)
        if reg is None or not item["visible"].any():
            return None
        pred = reg(self.keypoints(label, i)[None])
        per = protocol.landmark_errors(pred, item["keypoints"][None], item["visible"][None], self._box(item)[None],
                                       self.data)
        return float(protocol.image_errors(per)[0])

    def keypoint_error(self, label: str, i: int, k: int) -> tuple[str, float] | None:
        """Keypoint k's distance to its nearest annotated landmark on image i (percent, data set's normaliser)."""
        item = self.item(i)
        if "keypoints" not in item or not item["visible"].any():
            return None
        kp = self.keypoints(label, i)
        if k >= len(kp):
            return None
        j, err = protocol.nearest_landmark(kp[k], item["keypoints"], item["visible"], self._box(item), self.data)
        return self.data.info.keypoint_names[j], err

    # composing and drawing
    def compose(self) -> list[Panel]:
        """The panels for the current image and settings (computes what is not cached yet)."""
        item, i = self.item(self.index), self.index
        panels, drawn = [], []
        show = self.enabled | ({"heatmaps"} if self.keypoint is not None else set())
        if not self.selected:
            p = Panel("data")
            if "annotations" in show and "keypoints" in item:
                p.layers.append("annotations")
            panels.append(p)
        for label in self.selected:
            m, p = self.method(label), Panel(label)
            declared = set(m.layers)
            p.keypoints = self.keypoints(label, i)
            wants_vis = declared & show & {"graph", "heatmaps", *ROW_LAYERS}
            vis = self.visuals(label, i) if wants_vis else {}
            if "heatmaps" in wants_vis and "heatmaps" in vis:
                heat = vis["heatmaps"]  # (K, h, w)
                if self.keypoint is not None and self.keypoint < len(heat):
                    p.heatmap = heat[self.keypoint]
                else:
                    p.heatmap = (heat / heat.amax((1, 2), keepdim=True).clamp_min(1e-12)).amax(0)
                p.layers.append("heatmaps")
            if "graph" in wants_vis and "graph" in vis:
                p.graph = vis["graph"]
                p.layers.append("graph")
            if "annotations" in show and "keypoints" in item:
                p.layers.append("annotations")
            if "regressed" in show and (reg := self.regressor(label)) is not None:
                p.regressed = reg(p.keypoints[None])[0]
                p.image_error = self.image_error(label, i)
                p.layers.append("regressed")
            if "keypoints" in show:
                p.layers.append("keypoints")
            if self.keypoint is not None:
                p.keypoint_error = self.keypoint_error(label, i, self.keypoint)
            for row in ROW_LAYERS:
                if row in wants_vis and row in vis:
                    v = vis[row]  # (C, H, W); features: their norm over channels
                    p.rows[row] = v.norm(dim=0, keepdim=True) if row == "features" else v
                    p.layers.append(row)
            panels.append(p)
        for p in panels:
            drawn += [ly for ly in p.layers if ly not in drawn]
        self.panels, self.drawn_layers = panels, [ly for ly in LAYERS if ly in drawn]
        return panels

    def render(self, dpi: int = 90) -> bytes:
        """The current view as PNG bytes (matplotlib Agg; works headless)."""
        from .panels import draw_panels

        panels = self.compose()
        buf = io.BytesIO()
        draw_panels(self, panels).savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()
