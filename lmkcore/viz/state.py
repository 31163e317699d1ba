"""The inspector's state: which image, which checkpoints, which layers; predictions cached by block.

A plain class, driven by the widgets in `lmkcore.viz.inspector` and testable without a kernel.
Methods are used only through the shared interface (`keypoints`, `visuals`, `layers`): the layer
toggles are the fixed ones (keypoints, annotations, regressed) plus the union of the selected
methods' declared layer names, and each layer is drawn by its declared kind (`lmkcore.viz.layers`),
so a new method shows up here without changes. Predictions are computed for a block of `block`
images at once and cached per (kind, checkpoint, block); a redraw never runs a network.

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
from .layers import OVERLAY_KINDS, PANE_KINDS, Layer, per_image, prepare
from .regressor import Regressor, fit_on, fit_subset, image_errors, landmark_errors, nearest_landmark
from .sources import Checkpoint, batch, has_annotations, item_names

# Layers every view offers, whatever the method; a method's own layers follow in its declared order.
FIXED_LAYERS = ("keypoints", "annotations", "regressed")


@dataclass
class Panel:
    """What one checkpoint's row shows for the current image."""

    label: str
    layers: list[str] = field(default_factory=list)  # names drawn, fixed and declared
    keypoints: Tensor | None = None  # (K, 2)
    regressed: Tensor | None = None  # (L, 2)
    image_error: float | None = None  # mean regressed-landmark error on this image
    keypoint_error: tuple[str, float] | None = None  # (nearest landmark, normalised distance)
    shown: dict[str, Layer] = field(default_factory=dict)  # declared layer name -> what is drawn (prepared)

    def overlays(self) -> dict[str, Layer]:
        """The shown layers drawn over the image, in drawing order (heatmaps under graph under ...)."""
        return dict(sorted(((n, ly) for n, ly in self.shown.items() if ly.kind in OVERLAY_KINDS),
                           key=lambda t: OVERLAY_KINDS.index(t[1].kind)))

    def panes(self) -> dict[str, Layer]:
        """The shown layers with a panel of their own, in declared order."""
        return {n: ly for n, ly in self.shown.items() if ly.kind in PANE_KINDS}


def declared_layers(method: Method) -> dict[str, str]:
    """A method's `layers` {name: kind}, checked against the fixed names the inspector draws itself."""
    clash = sorted(set(method.layers) & set(FIXED_LAYERS))
    if clash:
        raise ValueError(f"{type(method).__name__}.layers names {clash}, which the inspector reserves "
                         f"({FIXED_LAYERS}); give those layers other names")
    return dict(method.layers)


def compose_layers(method_layers: dict[str, str], vis: dict[str, Tensor], names, keypoint: int | None = None
                   ) -> dict[str, Layer]:
    """One image's declared layers `names` (of `method_layers`, {name: kind}) from its visuals
    (per-image tensors), prepared for drawing (`layers.prepare`); names the method did not return
    are skipped."""
    return {n: Layer(k, prepare(k, vis[n].float(), keypoint)) for n, k in method_layers.items()
            if n in names and n in vis}


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
        self.all_edges = False  # graph layers: every edge, not only the strongest K - 1
        self.panel_inches = 3.0  # size of one panel of the grid (the inspector's size control)
        self.crop = False  # zoom each panel onto the subject (the keypoints and annotations, with a margin)
        self.numbers = False  # write each keypoint's number beside it
        self.drawn_layers: list[str] = []  # layers drawn by the last compose / render
        self.panels: list[Panel] = []
        self.computed: Counter = Counter()  # (kind, label, block) -> times computed (cache misses)
        self._cache: OrderedDict = OrderedDict()
        self._methods: dict[str, Method] = {}
        self._regressors: dict[str, Regressor | None] = {}
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
        """Turn a layer on or off: a fixed one or one that a selected (or earlier loaded) method declares."""
        known = self.known_layers()
        if layer not in known:
            raise KeyError(f"unknown layer {layer!r}; layers: {known}")
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

    def known_layers(self) -> list[str]:
        """The fixed layers, then every layer name a selected or already loaded method declares."""
        names = list(FIXED_LAYERS)
        for lb in [*self.selected, *self._methods]:
            names += [n for n in declared_layers(self.method(lb)) if n not in names]
        return names

    def available_layers(self) -> list[str]:
        """keypoints always; annotations where the data has them; regressed where there is a fit split; then the union of
        the layer names the selected methods declare (in their declared order)."""
        have = ["keypoints"] + (["annotations"] if self.annotated else [])  # no box for what a folder lacks
        if self.annotated and self.fit_data is not None and self.selected:
            have.append("regressed")
        for lb in self.selected:
            have += [n for n in declared_layers(self.method(lb)) if n not in have]
        return have

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
        """The method's declared visual layers on image `i` (`layers.per_image`: a graph `(K, K)` is shared)."""
        kinds = declared_layers(self.method(label))

        def run(idx):
            vis = self.method(label).visuals(self._images(idx))
            return {k: v.detach().float().cpu() for k, v in vis.items() if k in kinds}
        vis, j = self._block("visuals", label, i, run)
        return {k: per_image(kinds[k], v, j) for k, v in vis.items()}

    def _images(self, idx) -> Tensor:
        items, _ = self._block("items", None, idx[0], lambda ix: batch(self.data, ix))
        return items["image"].to(self.device)

    def regressor(self, label: str) -> Regressor | None:
        """The protocol's linear map for this checkpoint, fitted once on the fit split."""
        if label not in self._regressors:
            if not (self.annotated and self.fit_data is not None):
                return None
            if self._fit_subset is None:
                self._fit_subset = fit_subset(self.fit_data, self.n_fit)
            self._regressors[label] = fit_on(self.method(label), self._fit_subset)
        return self._regressors[label]

    def _box(self, item: dict) -> Tensor:
        return item["box"] if "box" in item else torch.zeros(4)

    def image_error(self, label: str, i: int) -> float | None:
        """Mean regressed-landmark error on image i (percent of the data set's normaliser)."""
        reg, item = self.regressor(label), self.item(i)
        if reg is None or not item["visible"].any():
            return None
        pred = reg(self.keypoints(label, i)[None])
        per = landmark_errors(pred, item["keypoints"][None], item["visible"][None], self._box(item)[None],
                                       self.data)
        return float(image_errors(per)[0])

    def keypoint_error(self, label: str, i: int, k: int) -> tuple[str, float] | None:
        """Keypoint k's distance to its nearest annotated landmark on image i (percent, data set's normaliser)."""
        item = self.item(i)
        if "keypoints" not in item or not item["visible"].any():
            return None
        kp = self.keypoints(label, i)
        if k >= len(kp):
            return None
        j, err = nearest_landmark(kp[k], item["keypoints"], item["visible"], self._box(item), self.data)
        return self.data.info.keypoint_names[j], err

    # composing and drawing
    def compose(self) -> list[Panel]:
        """The panels for the current image and settings (computes what is not cached yet). A chosen
        keypoint shows the heatmaps-kind layers (its own map) even where their toggles are off."""
        item, i = self.item(self.index), self.index
        panels = []
        if not self.selected:
            p = Panel("data")
            if "annotations" in self.enabled and "keypoints" in item:
                p.layers.append("annotations")
            panels.append(p)
        for label in self.selected:
            m, p = self.method(label), Panel(label)
            kinds = declared_layers(m)
            p.keypoints = self.keypoints(label, i)
            wanted = {n for n, k in kinds.items()
                      if n in self.enabled or (k == "heatmaps" and self.keypoint is not None)}
            vis = self.visuals(label, i) if wanted else {}
            p.shown = compose_layers(kinds, vis, wanted, self.keypoint)
            if "annotations" in self.enabled and "keypoints" in item:
                p.layers.append("annotations")
            if "regressed" in self.enabled and (reg := self.regressor(label)) is not None:
                p.regressed = reg(p.keypoints[None])[0]
                p.image_error = self.image_error(label, i)
                p.layers.append("regressed")
            if "keypoints" in self.enabled:
                p.layers.append("keypoints")
            if self.keypoint is not None:
                p.keypoint_error = self.keypoint_error(label, i, self.keypoint)
            p.layers += list(p.shown)
            panels.append(p)
        order = self.known_layers()
        drawn = {ly for p in panels for ly in p.layers}
        self.panels, self.drawn_layers = panels, [ly for ly in order if ly in drawn]
        return panels

    def render(self, dpi: int = 90) -> bytes:
        """The current view as PNG bytes (matplotlib Agg; works headless)."""
        from .panels import draw_panels

        panels = self.compose()
        buf = io.BytesIO()
        draw_panels(self, panels, panel_inches=self.panel_inches).savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def legend(self) -> list[str]:
        """The legend's entries for the panels last composed: what is drawn, and only that."""
        from .panels import legend_items

        return [text for text, _ in legend_items(self.panels, all_edges=self.all_edges)]

    def view(self) -> dict:
        """What is shown, as JSON-able data: enough to reproduce the view (`save_view`)."""
        def path(src) -> str:
            return str(getattr(src, "path", None) or (getattr(src, "checkpoint_info", None) or {}).get("path") or "")

        return {"index": self.index, "name": self.name(), "checkpoints": {
                    lb: path(self.sources[lb]) or lb for lb in self.selected},
                "layers": [ly for ly in self.known_layers() if ly in self.enabled], "drawn": list(self.drawn_layers),
                "legend": self.legend(),
                "keypoint": self.keypoint, "all_edges": self.all_edges, "panel_inches": self.panel_inches,
                "crop": self.crop, "numbers": self.numbers}

    def save_view(self, folder, stem: str | None = None) -> tuple:
        """The current view as `<stem>.png` and its state as `<stem>.json` in `folder` (never overwriting: a
        number is added to the stem); the two paths."""
        import json
        from pathlib import Path

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or f"view_image{self.index}"
        png, n = folder / f"{stem}.png", 1
        while png.exists() or png.with_suffix(".json").exists():
            n += 1
            png = folder / f"{stem}_{n}.png"
        png.write_bytes(self.render(dpi=150))
        png.with_suffix(".json").write_text(json.dumps(self.view(), indent=2))
        return png, png.with_suffix(".json")
