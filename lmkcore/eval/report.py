"""Reports: one `reports/<name>/metrics.json` (+ figures) per evaluation, and the generated
`reports/benchmarks.md` / `benchmarks.json` that `collect` builds from all of them.

benchmarks.json is a list of rows, one per (report, fit-set size, metric)::

    {"method", "kind" (trained | untrained | floor), ["evaluation": "head" (absent: keypoints)], "dataset",
     "split", "K", "metric" (nme | pck@0.2 | pck@0.1 | backward_nme | keypoint_spread | diag:<a method's
     check, e.g. edge_gain, skeleton_recall>), "value" (percent), "fit_images", "n_fit",
     "few_shot" (false for the headline fit), "normalisation", "resolution", "steps", "wall_s",
     "images_per_s", "peak_memory_mb", "profile", "commit", "run", "report"}

A method evaluated both ways ("keypoints": linear regression from its keypoints; "head": a supervised
head on its features) has two reports (the head's name ends in `_head`), hence two sets of rows; a
head has no backward_nme / keypoint_spread rows (not defined for it).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from .graph import GRAPH_FIT

GENERATOR = "python -m lmkcore.bench (or lmkcore.eval.report.collect('reports'))"
META = ("method", "kind", "dataset", "split", "K", "normalisation", "resolution", "steps", "wall_s",
        "images_per_s", "peak_memory_mb", "profile", "commit", "run")
FORWARD = {"bbox": ("pck@0.2", "pck@0.1", "nme"), "interocular": ("nme",), "image_size": ("nme",)}
LABEL = {"nme": {"bbox": "NME % box", "interocular": "NME % IOD", "image_size": "NME % image"},
         "pck@0.2": "PCK@0.2 %", "pck@0.1": "PCK@0.1 %", "backward_nme": "backward NME %",
         "keypoint_spread": "kp. spread %"}


DIAG = "diag:"  # prefix of the rows of a method's diagnostics (`Method.diagnostics`), shown in their own column


def report_name(result: dict) -> str:
    """Directory name of a result: the run name for trained models (`<experiment>_<stage>` for a stage of a
    recipe), `floor_...` for floors; `_head` for
    the supervised-head evaluation (the keypoints evaluation keeps the plain name)."""
    ds = f"{result.get('dataset')}-{result.get('resolution')}"
    if result.get("kind") == "floor":
        name = f"floor_{result['method']}_{ds}"
    elif result.get("kind") == "untrained":
        name = f"floor_{result['method']}-untrained_k{result['K']}_{ds}"
    else:
        name = result.get("run") or f"{result.get('method')}_k{result.get('K')}_{ds}"
        if result.get("experiment") and result.get("run"):  # a stage of a recipe: its run name alone is not unique
            name = f"{result['experiment']}_{result['run']}"
    if result.get("evaluation", "keypoints") != "keypoints":
        name += f"_{result['evaluation']}"
    if result.get("n_fit", "all") != "all":
        name += f"_fit{result['n_fit'].replace('%', 'pc')}"
    if result.get("test_data") or result.get("split") not in (None, "val"):
        name += f"_on-{result.get('split')}"
    return name


def write_report(result: dict, report_dir: str | Path = "reports", *, name: str | None = None, test_data=None,
                 profile: str | None = None, figures: bool = True) -> Path:
    """Write `report_dir/<name>/metrics.json` (and figures); returns that directory."""
    from .plots import save_all

    out = Path(report_dir) / (name or report_name(result))
    if isinstance(result.get("config"), dict):  # a config's absolute paths, whatever the field's name (`save_path`,
        # self-training's `superpoint` weights)
        result = {**result, "config": {k: _portable(v) if isinstance(v, str) and Path(v).is_absolute() else v
                                       for k, v in result["config"].items()}}
    if result.get("kind") == "trained" and (out / "metrics.json").is_file():
        old = json.loads((out / "metrics.json").read_text())
        if old.get("kind") == "trained":  # another setting raises; another run of this setting moves aside
            check_same_setting(out / "metrics.json", old, result)
            keep_earlier_run(out, old, result)
    out.mkdir(parents=True, exist_ok=True)
    if profile is not None:
        result = {**result, "profile": profile}
    paths = {k: _portable(result[k]) for k in ("checkpoint", "data", "test_data") if result.get(k)}
    (out / "metrics.json").write_text(json.dumps({**result, **paths}, indent=1, default=_plain))
    if figures:
        if test_data is None and result.get("data"):
            from .gather import open_test_set

            test_data = open_test_set(result["data"], result.get("split"), result.get("test_data"),
                                      result.get("resolution") or 64)[0]
        save_all(result, out, test_data)
    return out


def _recorded(old: dict) -> dict:
    """The config an old report's run trained with: for a method this process knows, every field, a field added
    since taking the value that keeps the old behaviour (`methods.base.recorded_config`); else as recorded."""
    from ..methods import METHODS
    from ..methods.base import recorded_config

    cls, config = METHODS.get(old.get("method") or ""), old.get("config") or {}
    return recorded_config(cls.config_class, config) if cls is not None and config else config


def setting_diff(old: dict, new: dict) -> dict:
    """{field: (old, new)} where two results' runs were trained differently: the method's config fields both
    record, the trainer's precision (`bf16`) and batch size, as metrics.json holds them. A config field the old
    report lacks (recorded before it existed) is compared at the value that kept the old behaviour where the
    method is known (`_recorded`); a field of an unknown method, or a trainer option, one of them lacks is not."""
    new = json.loads(json.dumps(new, default=_plain))  # tuples as lists, as `old` was read
    recorded = json.loads(json.dumps(_recorded(old), default=_plain))
    pairs = {**{f"config.{k}": (v, new["config"][k]) for k, v in recorded.items()
                if k in (new.get("config") or {})},
             **{k: (old[k], new[k]) for k in ("bf16", "batch_size") if old.get(k) is not None and new.get(k) is not None}}
    return {k: (a, b) for k, (a, b) in pairs.items() if a != b}


def check_same_setting(metrics: Path, old: dict, result: dict) -> None:
    """A trained run's report (`old`, read from `metrics`) is replaced only by a run of the same setting (scored
    again, or trained further; a run of another commit moves it aside, `keep_earlier_run`): a run of another
    setting under the same name (a recipe that changed only trainer options, such as bf16) raises instead of
    silently taking the old report's place. Floors (untrained, mean shape) follow the recipe (`write_report`)."""
    diff = setting_diff(old, result)
    if diff:
        raise FileExistsError(f"{metrics} holds a run of another setting (field: (that report, this run)) {diff}; "
                              f"move that report aside (e.g. `git mv {metrics.parent} {metrics.parent}_old`) or "
                              "write to another report_dir")


def keep_earlier_run(out: Path, old: dict, result: dict) -> Path | None:
    """Move the report in `out` (`old`, a trained run's) aside, to `<out>_<its commit>`, when `result` is another
    training run of the same setting (its training commit differs: the recipe run again); a run scored again (same
    commit) replaces its own report. Where the report went, or None. Two runs of one recipe differ by run-to-run
    noise (reports/fgbg), so neither may silently take the other's place."""
    if not old.get("commit") or old.get("commit") == result.get("commit"):
        return None
    aside = out.with_name(f"{out.name}_{old['commit']}")
    n = 2
    while aside.exists():
        aside, n = out.with_name(f"{out.name}_{old['commit']}-{n}"), n + 1
    out.rename(aside)
    print(f"{out} held an earlier run (commit {old['commit']}, {old.get('steps')} steps): kept as {aside}")
    return aside


def _portable(path) -> str:
    """A path as reports record it, so that no machine's absolute paths land in reports/: relative to the
    working directory when inside it, else its folder and name (`data/mtfl-80.h5`, `<run>/last.pt`)."""
    p = Path(path)
    if not p.is_absolute():
        return str(p)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(Path(*p.parts[-2:]))


def _plain(x):
    return x.item() if hasattr(x, "item") else str(x)


def rows_of(m: dict, report: str) -> list[dict]:
    """benchmarks.json rows of one metrics.json: every scalar metric, headline and few-shot, the method's
    diagnostics and, where it has a skeleton check, its precision and recall."""
    meta = {k: m.get(k) for k in META}
    if m.get("evaluation", "keypoints") != "keypoints":  # absent = keypoints: older reports' rows stay as they were
        meta["evaluation"] = m["evaluation"]
    meta["normalisation"] = (m.get("normalisation") or "").partition(":")[0]
    out = []
    for i, fit in enumerate([m] + list(m.get("few_shot") or [])):
        for metric, value in fit["metrics"].items():
            if value is None:  # not defined for this evaluation (e.g. a backward error without keypoints)
                continue
            out.append({**meta, "metric": metric, "value": value, "fit_images": fit.get("fit_images"),
                        "n_fit": fit.get("n_fit", "all"), "few_shot": i > 0, "report": report})
    diagnostics = dict(m.get("diagnostics") or {})  # the method's own checks (not percent of a normaliser)
    if m.get("skeleton"):  # a learned graph against the data's skeleton (`eval.graph`), in percent
        diagnostics.update({f"skeleton_{k}": 100 * m["skeleton"][k] for k in ("precision", "recall")})
    if m.get("masks"):  # a predicted foreground against the reference (`eval.masks`), IoU in percent
        diagnostics.update({f"mask_{k}": 100 * m["masks"][k] for k in ("iou", "iou_constant", "iou_permuted")})
    for name, value in diagnostics.items():
        out.append({**meta, "metric": DIAG + name, "value": value, "fit_images": m.get("fit_images"),
                    "n_fit": m.get("n_fit", "all"), "few_shot": False, "report": report})
    return out


def collect(reports_dir: str | Path = "reports") -> list[dict]:
    """Read every `reports_dir/*/metrics.json`; write benchmarks.json and benchmarks.md; return rows."""
    reports_dir = Path(reports_dir)
    rows = []
    for p in sorted(reports_dir.glob("*/metrics.json")):
        try:
            rows += rows_of(json.loads(p.read_text()), p.parent.name)
        except (ValueError, KeyError, TypeError) as e:
            print(f"collect: skipping {p} ({type(e).__name__}: {e})")
    reports_dir.mkdir(parents=True, exist_ok=True)
    (reports_dir / "benchmarks.json").write_text(json.dumps(rows, indent=1))
    (reports_dir / "benchmarks.md").write_text(markdown(rows, reports_dir))
    return rows


def _fmt(v, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _time(s) -> str:
    if s is None:
        return "-"
    return f"{s / 60:.1f} min" if s >= 60 else f"{s:.0f} s"


def _head(row: dict) -> str:
    """The label suffix of a row of the supervised-head evaluation ("" for keypoints)."""
    return " [head]" if row.get("evaluation", "keypoints") == "head" else ""


def markdown(rows: list[dict], reports_dir: Path) -> str:
    """The benchmark page: one table per (dataset, split), a few-shot table, then figures."""
    lines = [f"<!-- Generated by `{GENERATOR}`; do not edit by hand. -->", "", "# Benchmarks", "",
             "Protocol: `lmkcore.eval` (linear map without intercept from discovered keypoints in [0, 1], "
             "ridge by 5-fold CV on the fit set, visible landmarks only; backward = annotations -> keypoints, "
             "same normaliser; kp. spread = backward error of predicting the mean keypoints). All numbers "
             "in percent. Floors: mean shape of the fit set, and an untrained (seeded) model. Diagnostics: a "
             "method's own checks on the first test batch (AutoLink `edge_gain`: % by which its reconstruction "
             "loss rises when the decoder is given another image's keypoints; near 0 = the edge map is ignored; "
             "`skeleton_precision` / `skeleton_recall`: % of the learned graph's strongest K - 1 edges that link "
             "adjacent joints / % of the skeleton's edges they recover, keypoints mapped to joints by regression, "
             f"on {GRAPH_FIT:,} fit images; metrics.json `skeleton`; `mask_iou`: % IoU of a predicted foreground "
             "with the true figure, or on people with capsules along the annotated bones, beside two chance "
             "levels, an all-foreground mask (`mask_iou_constant`) and the masks of other images "
             "(`mask_iou_permuted`); metrics.json `masks`; part-based and fgbg `part_spread` / `part_size`: RMS "
             "distance of the part means from their centroid / a part map's RMS standard deviation, % of the image "
             "side; a spread far below the size = the parts collapsed onto one blob).", ""]
    if any(_head(r) for r in rows):
        lines[-2] += (" [head]: a supervised head on the method's frozen features (`lmkcore.eval.head`, early "
                      "stopping on held-out fit images); it has no backward error; (untrained) [head]: the same "
                      "head on the untrained network's features.")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["split"]), []).append(r)
    if not groups:
        lines.append("No evaluation reports yet.")
    for (dataset, split), rs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        norm = rs[0]["normalisation"] or "image_size"
        fwd = FORWARD.get(norm, ("nme",))
        metrics = list(fwd) + ["backward_nme", "keypoint_spread"]
        heads = [LABEL[k][norm] if isinstance(LABEL[k], dict) else LABEL[k] for k in metrics]
        lines += [f"## {dataset} ({split})", "",
                  "| method | K | fit images | res | steps | " + " | ".join(heads)
                  + " | train time | img/s | peak MB | diagnostics | profile | commit |",
                  "|" + "---|" * (len(heads) + 11)]
        table: dict[tuple, dict] = {}
        for r in rs:
            if not r["few_shot"]:
                key = (r["kind"] != "trained", r["method"], r["K"] or 0, r["report"])
                table.setdefault(key, {**r, "values": {}})["values"][r["metric"]] = r["value"]
        for key in sorted(table, key=lambda k: tuple(map(str, k[:2])) + (k[2], k[3])):
            r = table[key]
            label = r["report"] if r["kind"] == "trained" else r["method"] + {
                "untrained": " (untrained)", "floor": " (floor)"}.get(r["kind"], "") + _head(r)
            cells = [f"[{label}]({r['report']}/metrics.json)", _fmt(r["K"]), _fmt(r["fit_images"]),
                     _fmt(r["resolution"]), _fmt(r["steps"])] + [_fmt(r["values"].get(k)) for k in metrics] + [
                _time(r["wall_s"]), _fmt(r["images_per_s"], 1), _fmt(r["peak_memory_mb"], 0),
                ", ".join(f"{k[len(DIAG):]} {_fmt(v)}" for k, v in r["values"].items() if k.startswith(DIAG)) or "-",
                _fmt(r["profile"]), _fmt(r["commit"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
        few = [r for r in rs if r["metric"] == fwd[0]]
        sizes = list(dict.fromkeys(r["n_fit"] for r in few if r["few_shot"]))  # in the order evaluated
        if sizes:
            label = LABEL[fwd[0]][norm] if isinstance(LABEL[fwd[0]], dict) else LABEL[fwd[0]]
            lines += [f"Few-shot: {label} by fit-set size (images in brackets; headline = the table above):", "",
                      "| method | K | headline | " + " | ".join(sizes) + " |", "|" + "---|" * (3 + len(sizes))]
            by: dict[tuple, dict] = {}
            for r in few:
                key = (r["kind"] != "trained", r["kind"], r["method"], _head(r), r["K"] or 0, r["report"])
                by.setdefault(key, {})["headline" if not r["few_shot"] else r["n_fit"]] = (r["value"], r["fit_images"])
            for key in sorted(by, key=lambda k: (str(k[0]), k[2] + k[3], k[4], k[5])):  # as the table above
                v, (_, kind, method, head, k, _) = by[key], key
                if len(v) == 1:  # evaluated with the headline fit only
                    continue
                cell = lambda s: f"{_fmt(v[s][0])} ({v[s][1]})" if s in v else "-"  # noqa: E731
                label = method + {"untrained": " (untrained)", "floor": " (floor)"}.get(kind, "") + head
                lines.append(f"| {label} | {k or '-'} | {cell('headline')} | " + " | ".join(map(cell, sizes)) + " |")
            lines.append("")
    figs = sorted((reports_dir / "figures").glob("*.png"))
    if figs:
        lines += ["## Figures", ""] + [f"![{p.stem}](figures/{p.name})" for p in figs] + [""]
    return "\n".join(lines)


def metric_unit(metric: str, normalisation: str) -> str:
    """What a protocol number means: errors in % of the data set's normaliser, PCK in % of landmarks."""
    norm = {"interocular": "inter-ocular distance", "bbox": "box size", "image_size": "image size"}.get(
        (normalisation or "").split(":")[0], normalisation or "the normaliser")
    if metric.startswith("pck@"):
        return f"% of landmarks within {metric[4:]} x {norm}"
    if metric.startswith("diag:"):
        return "% (the method's own check)"
    return f"% of {norm}"


def metrics_table(results: dict[str, dict]) -> str:
    """A Markdown table of protocol results side by side (a run beside its floors, say): a row per metric with
    its unit, a column per result (`{column title: result}`); a metric a result lacks is '-'."""
    names = list(dict.fromkeys(k for r in results.values() for k in r.get("metrics", {})))
    norm = next((r.get("normalisation", "") for r in results.values()), "")
    head = "| metric | unit | " + " | ".join(results) + " |\n|---|---|" + "---|" * len(results)
    rows = [f"| {m} | {metric_unit(m, norm)} | " + " | ".join(_fmt(r.get("metrics", {}).get(m))
                                                              for r in results.values()) + " |" for m in names]
    fit = "| fit images | | " + " | ".join(str(r.get("fit_images", "-")) for r in results.values()) + " |"
    return "\n".join([head, *rows, fit])

