"""Interactive exploration in JupyterLab: `inspect(checkpoints, data)` -> an ipywidgets inspector.

    from lmkcore.viz.inspector import inspect
    inspect("runs/autolink_k10_procedural-64_5000", data="procedural", split="val")

An image slider and a search box (index or name), a multi-select of checkpoints shown side by
side on the same image (a row each), toggles for the layers the selected methods declare (plus
keypoints, annotations, regressed), and a keypoint chooser that shows its heatmap and its error.
The widgets only drive an `InspectorState` (`lmkcore.viz.state`); each change re-renders it to a
PNG shown in an `ipywidgets.Image`, so the same code runs in a kernel, in tests and headless.
"""
from __future__ import annotations

import html
import time

import ipywidgets as w

from ..checkpoint import load_method
from ..methods import Method
from ..runs import short_labels
from .sources import (Checkpoint, has_annotations, method_label, method_resolution, open_images,
                      resolve_checkpoints, untrained_like)
from .state import InspectorState

NO_CHECKPOINT = ("no checkpoint under {runs_dir!r} (checkpoints={spec!r}): train one (python -m lmkcore.train ...), "
                 "pass checkpoints= (files or run directories), or pass a method object, e.g. "
                 "inspect(lmkcore.methods.build(<name>, ...)) for an untrained one")
UNTRAINED_NOTE = ("UNTRAINED models ({labels}) are shown beside the checkpoints: the same method class and config, "
                  "random weights (seed {seed}), not learned ones.")


class Inspector:
    """The widgets around an `InspectorState`; display it in a notebook cell (`.widget`)."""

    def __init__(self, state: InspectorState, save_dir: str = "reports/figures/inspector"):
        self.state = state
        self._quiet = False
        n = len(state.data)
        self.slider = w.IntSlider(value=state.index, min=0, max=n - 1, description="image", continuous_update=False,
                                  layout=w.Layout(width="420px"))
        self.prev = w.Button(description="<", tooltip="previous image", layout=w.Layout(width="36px"))
        self.next = w.Button(description=">", tooltip="next image", layout=w.Layout(width="36px"))
        self.search = w.Text(placeholder="index or name", description="find", continuous_update=False,
                             layout=w.Layout(width="240px"))
        self.go = w.Button(description="go", layout=w.Layout(width="48px"))
        shared, short = short_labels(list(state.sources))  # "@1000", "@1250": the shared run name shown once
        self.checkpoints = w.SelectMultiple(options=[(short[lb], lb) for lb in state.sources],
                                            value=tuple(state.selected), rows=min(6, max(2, len(state.sources))),
                                            description="checkpoints", layout=w.Layout(width="460px"),
                                            tooltip="\n".join(f"{short[lb]}: {getattr(src, 'path', lb)}"
                                                              for lb, src in state.sources.items()))
        self.run_name = w.HTML(f"<span title='{html.escape(shared)}'>run <code>{html.escape(shared)}</code></span>"
                               if shared else "")
        self.toggles: dict[str, w.Checkbox] = {}  # every layer name seen so far; shown: the available ones
        self.toggle_box = w.HBox()
        self.all_edges = w.Checkbox(value=state.all_edges, description="all edges", indent=False,
                                    tooltip="graph layers: every edge, not only the strongest K-1",
                                    layout=w.Layout(width="auto"))
        self.keypoint = w.Dropdown(description="keypoint", layout=w.Layout(width="200px"))
        self.size = w.FloatSlider(value=state.panel_inches, min=1.5, max=6.0, step=0.5, description="size",
                                  continuous_update=False, readout_format=".1f", layout=w.Layout(width="260px"),
                                  tooltip="inches per panel")
        self.crop = w.Checkbox(value=state.crop, description="crop to subject", indent=False,
                               layout=w.Layout(width="auto"))
        self.numbers = w.Checkbox(value=state.numbers, description="numbers", indent=False,
                                  tooltip="write each keypoint's number beside it", layout=w.Layout(width="auto"))
        self.save = w.Button(description="save view", tooltip="the view as PNG and its state as JSON",
                             layout=w.Layout(width="90px"))
        self.save_dir = w.Text(value=save_dir, description="to", layout=w.Layout(width="300px"))
        self.status = w.HTML()  # "computing…" while a view takes long to draw
        self.image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))  # native size
        self.info = w.HTML()
        self.message = w.HTML()
        for name, widget in (("slider", self.slider), ("search", self.search), ("checkpoints", self.checkpoints),
                             ("keypoint", self.keypoint), ("image", self.image), ("info", self.info),
                             ("message", self.message)):
            widget.add_class(f"lmk-{name}")
        self.slider.observe(self._on_index, "value")
        self.prev.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(+1))
        self.search.observe(lambda _: self._on_search(), "value")
        self.go.on_click(lambda _: self._on_search())
        self.checkpoints.observe(self._on_checkpoints, "value")
        self.all_edges.observe(self._on_all_edges, "value")
        self.keypoint.observe(self._on_keypoint, "value")
        self.size.observe(lambda ch: self._set("panel_inches", float(ch["new"])), "value")
        self.crop.observe(lambda ch: self._set("crop", bool(ch["new"])), "value")
        self.numbers.observe(lambda ch: self._set("numbers", bool(ch["new"])), "value")
        self.save.on_click(lambda _: self._on_save())
        for name, widget in (("size", self.size), ("crop", self.crop), ("numbers", self.numbers),
                             ("save", self.save), ("status", self.status)):
            widget.add_class(f"lmk-{name}")
        # controls first and side by side, the (possibly tall) image last: the controls stay in view
        self.widget = w.VBox([
            self.message,
            w.HBox([self.prev, self.slider, self.next, self.search, self.go]),
            self.run_name,
            w.HBox([self.checkpoints, w.VBox([self.keypoint, self.size, w.HBox([self.crop, self.numbers])])]),
            self.toggle_box,
            w.HBox([self.save, self.save_dir, self.status]),
            self.info,
            self.image,
        ])
        self.widget.add_class("lmk-inspector")
        self._sync_controls()
        self.refresh()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # handlers
    def _on_index(self, change) -> None:
        self.state.set_index(change["new"])
        if self.search.value and self.state.find(self.search.value) != self.state.index:
            self.search.value = ""  # the find box never names another image than the one shown
        self.refresh()

    def _step(self, delta: int) -> None:
        self.slider.value = min(self.slider.max, max(self.slider.min, self.slider.value + delta))

    def _on_search(self) -> None:
        if not self.search.value.strip():  # cleared (by hand or after the slider moved on): nothing to find
            return
        i = self.state.find(self.search.value)
        if i is None:
            self._note(f"nothing matches {self.search.value!r}", error=True)
        elif i == self.slider.value:
            self.refresh()
        else:
            self.slider.value = i  # -> _on_index

    def _on_checkpoints(self, change) -> None:
        try:
            self.state.select(change["new"])
            self._sync_controls()
        except Exception as e:  # e.g. a checkpoint that does not load: say so, keep the widget
            self._note(f"{type(e).__name__}: {e}", error=True)
            return
        self.refresh()

    def _on_toggle(self, layer: str, on: bool) -> None:
        self.state.toggle(layer, on)
        if layer == "regressed" and on and self.state.fit_data is not None:
            self._note(f"fitting the protocol's linear map on up to {self.state.n_fit} images of the fit split "
                       "(once per checkpoint) ...")
        if not self._quiet:
            self.refresh()

    def _on_all_edges(self, change) -> None:
        self.state.all_edges = bool(change["new"])
        self.refresh()

    def _set(self, attribute: str, value) -> None:
        setattr(self.state, attribute, value)
        self.refresh()

    def _on_save(self) -> None:
        try:
            png, state = self.state.save_view(self.save_dir.value)
        except Exception as e:  # a folder that cannot be written: say so
            self._note(f"{type(e).__name__}: {e}", error=True)
            return
        self.status.value = f"saved {html.escape(str(png))} and {html.escape(state.name)}"

    def _on_keypoint(self, change) -> None:
        self.state.choose_keypoint(change["new"])
        if self.state.keypoint is not None:  # one keypoint's map is drawn: its heatmaps toggle says so
            quiet, self._quiet = self._quiet, True
            try:
                for lb in self.state.selected:
                    for name, kind in self.state.method(lb).layers.items():
                        if kind == "heatmaps" and name in self.toggles:
                            self.toggles[name].value = True
                            self.state.toggle(name, True)
            finally:
                self._quiet = quiet
        if not self._quiet:
            self.refresh()

    # views
    def _sync_controls(self) -> None:
        """Toggles: the fixed layers and the union of the selected methods' declared layer names (a
        checkbox is made the first time a name appears and hidden while no selected method has it);
        "all edges" where a graph-kind layer is declared; keypoint choices up to the largest K."""
        self._quiet = True
        try:
            have = self.state.available_layers()
            for ly in have:
                if ly not in self.toggles:
                    box = w.Checkbox(value=ly in self.state.enabled, description=ly, indent=False,
                                     layout=w.Layout(width="auto"))
                    box.observe(lambda ch, ly=ly: self._on_toggle(ly, ch["new"]), "value")
                    self.toggles[ly] = box
            for ly, box in self.toggles.items():
                box.layout.display = None if ly in have else "none"
            graphs = any(k == "graph" for lb in self.state.selected for k in self.state.method(lb).layers.values())
            self.all_edges.layout.display = None if graphs else "none"
            self.toggle_box.children = [*self.toggles.values(), self.all_edges]
            k = self.state.n_keypoints()
            self.keypoint.options = [("all", -1)] + [(f"keypoint {i}", i) for i in range(k)]
            keep = self.state.keypoint if self.state.keypoint is not None and self.state.keypoint < k else -1
            self.keypoint.value = keep
            self.state.choose_keypoint(keep)
        finally:
            self._quiet = False

    def _note(self, text: str, error: bool = False) -> None:
        colour = "#b00020" if error else "#8a6d00"
        base = self._banner()
        self.message.value = base + (f'<div style="color:{colour}">{html.escape(text)}</div>' if text else "")

    def _banner(self) -> str:
        m = self.state.message
        return (f'<div style="background:#fff3cd;border:1px solid #e0c36a;padding:4px 8px;color:#5c4400">'
                f"{html.escape(m)}</div>") if m else ""

    def refresh(self) -> None:
        """Re-render the current view into the image widget (errors show in the message line). The status
        says "computing…" meanwhile (widget updates reach the page at once, before the drawing ends)."""
        self.status.value = "<i>computing…</i>"
        t0 = time.perf_counter()
        try:
            self.image.value = self.state.render()
        except Exception as e:  # keep the widget alive; say what went wrong
            self.status.value = ""
            self._note(f"{type(e).__name__}: {e}", error=True)
            return
        took = time.perf_counter() - t0
        self.status.value = f"<small>drawn in {took:.1f} s</small>" if took > 0.5 else ""
        self._note("")
        s = self.state
        legend = "legend: " + ("; ".join(s.legend()) or "nothing drawn")  # the figure's, as text (hover)
        lines = [f"image {s.index} / {len(s.data) - 1}: <b>{html.escape(s.name())}</b> &nbsp; "
                 f'<span class="lmk-legend" title="{html.escape(legend)}">layers: '
                 f"{', '.join(s.drawn_layers) or 'none'}</span>"]
        for p in s.panels:
            facts = []
            if p.image_error is not None:
                facts.append(f"regressed error {p.image_error:.2f}%")
            if p.keypoint_error is not None:
                facts.append(f"keypoint {s.keypoint}: nearest {html.escape(p.keypoint_error[0])} "
                             f"at {p.keypoint_error[1]:.2f}%")
            if facts:
                lines.append(f"{html.escape(p.label)}: " + ", ".join(facts))
        self.info.value = "<br>".join(lines)


def inspect(checkpoints="", data: str = "procedural", split: str | None = "val", *, runs_dir: str = "runs",
            fit_split: str | None = "fit", n_fit: int = 500, block: int = 16, device: str = "cpu",
            resolution: int | None = None, untrained: bool = False, seed: int = 0,
            save_dir: str = "reports/figures/inspector") -> Inspector:
    """An inspector for checkpoints on a data set.

    checkpoints: "" (the newest under `runs_dir`, every run there selectable), "all", comma-separated
        checkpoint files or run directories, or a `Method` / `{label: Method}` (e.g. untrained). No
        checkpoint found is an error (FileNotFoundError): viz never picks a method by name.
    untrained: also show, for each method class and K among the selected checkpoints,
        the same method with fresh weights (seeded by `seed`), labelled "untrained <name> k<K>", with
        a visible note saying so.
    data: 'procedural', a store (.h5) or a folder of images; split: the split browsed.
    fit_split / n_fit: where the regressed landmarks' linear map is fitted (annotated data only).
    resolution: image size for 'procedural' and image folders (default: the first checkpoint's).
    """
    message = ""
    if isinstance(checkpoints, Method):
        checkpoints = {method_label(checkpoints): checkpoints}
    if isinstance(checkpoints, dict):
        sources: dict[str, Checkpoint | Method] = dict(checkpoints)
        selected = list(sources)[:1]
    else:
        available, chosen = resolve_checkpoints(checkpoints, runs_dir)
        sources = {c.label: c for c in available}
        selected = [c.label for c in chosen]
        if not sources:
            raise FileNotFoundError(NO_CHECKPOINT.format(runs_dir=runs_dir, spec=checkpoints))
    for lb in selected:  # load the selected now: the first one's resolution decides the data's
        if isinstance(sources[lb], Checkpoint):
            sources[lb] = load_method(sources[lb].path)
    if untrained:
        fresh = {}
        for lb in selected:
            m = untrained_like(sources[lb], seed)
            fresh.setdefault(method_label(m), m)  # one per label ("untrained <name> k<K>")
        sources.update(fresh)
        selected += list(fresh)
        message = UNTRAINED_NOTE.format(labels=", ".join(fresh), seed=seed)
        print(message)
    first = sources[selected[0]] if selected else next(iter(sources.values()))
    if isinstance(first, Checkpoint):
        first = load_method(first.path)
    res = resolution or method_resolution(first)
    images = open_images(data, split, res)
    fit_data = None
    if has_annotations(images) and fit_split:
        try:
            fit_data = open_images(data, fit_split, res)
        except KeyError:  # a store without that split: no regressed landmarks
            pass
    state = InspectorState(images, sources, selected, fit_data=fit_data, n_fit=n_fit, block=block, device=device,
                           message=message)
    return Inspector(state, save_dir=save_dir)


class Upload:
    """Your own photos (or a short video) through the checkpoints selected in an `Inspector`: a file-upload
    widget and a row of annotated images per file and checkpoint (`lmkcore.detect`, as its command line)."""

    def __init__(self, inspector: Inspector, *, every: int = 10, max_frames: int = 8, width: int = 320):
        self.inspector, self.every, self.max_frames, self.width = inspector, every, max_frames, width
        self.button = w.FileUpload(accept="image/*,video/*", multiple=True, description="your images")
        self.numbers = w.Checkbox(value=False, description="numbers", indent=False, layout=w.Layout(width="auto"))
        self.status = w.HTML("choose photos or a short video: each goes through the checkpoints selected above")
        self.results = w.VBox()
        self.button.observe(lambda _: self.run(), "value")
        self.widget = w.VBox([w.HBox([self.button, self.numbers]), self.status, self.results])
        self.widget.add_class("lmk-upload")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def images(self, name: str, content: bytes):
        """(name, RGB uint8) of an uploaded file: an image, or every `every`-th frame of a video."""
        import tempfile
        from pathlib import Path

        from ..detect import read_inputs

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(name).name
            path.write_bytes(content)
            yield from read_inputs([str(path)], every=self.every, max_frames=self.max_frames)

    def run(self) -> None:
        import io

        from PIL import Image

        from ..detect import detect_image
        from .draw import annotate

        state = self.inspector.state
        files = list(self.button.value)
        self.status.value = f"<i>computing… {len(files)} file(s) x {len(state.selected)} checkpoint(s)</i>"
        rows = []
        try:
            for f in files:
                for name, image in self.images(f["name"], bytes(f["content"])):
                    cells = []
                    for label in state.selected:
                        d = detect_image(state.method(label), image)
                        png = io.BytesIO()
                        Image.fromarray(annotate(image, d["points"], visible=d["visible"], graph=d["graph"],
                                                 numbers=self.numbers.value)).save(png, format="png")
                        cells.append(w.VBox([w.HTML(f"<small>{html.escape(name)} · {html.escape(label)}</small>"),
                                             w.Image(value=png.getvalue(), format="png",
                                                     layout=w.Layout(width=f"{self.width}px"))]))
                    rows.append(w.HBox(cells))
        except Exception as e:  # a file that is not an image or video: say so, keep the widget
            self.status.value = f"<span style='color:#b00'>{html.escape(f'{type(e).__name__}: {e}')}</span>"
            return
        self.results.children = rows
        self.status.value = f"{len(rows)} image(s) through {len(state.selected)} checkpoint(s)"
