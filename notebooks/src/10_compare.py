# %% [markdown]
# # 10 · Every method side by side
# Reads what the evaluations wrote (`lmkcore.viz.compare`): the headline rows of
# `report_dir/benchmarks.json` per data set, the forward and backward cumulative error curves and
# the few-shot fits of every `report_dir/*/metrics.json`, and every method's keypoints on the same
# images where its checkpoint is still under the workbook (runs/); absent ones are skipped with a
# note. Nothing trains or evaluates here: run notebook 07 (or `python -m lmkcore.bench`) first.
# With AutoLink alone it shows AutoLink and the floors (mean shape, untrained model).
# Run headless: `papermill notebooks/10_compare.ipynb out.ipynb -p datasets mtfl`.

# %% tags=["parameters"]
report_dir: str = "reports"  # reads report_dir/benchmarks.json and report_dir/*/metrics.json
root: str = "."  # workbook root: the reports' checkpoint paths (runs/...) and data paths are relative to it
datasets: str = ""  # comma-separated data sets to show ("": every data set in benchmarks.json)
methods: str = ""  # comma-separated methods to show ("": all; the mean-shape floor is method "mean-shape")
split: str = "val"  # split whose first images show the keypoints
n_images: int = 4  # images (rows) in each keypoint figure
few_shot_metric: str = "nme"  # metric of the few-shot plot (nme, or pck@0.2 on box-normalised data)
diagnostics: bool = False  # add the methods' own checks (diag:edge_gain, ...) to the tables
out_dir: str = ""  # also save the figures as PNGs here ("": show only)

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
import io
from pathlib import Path

import pandas as pd
from IPython.display import Image, Markdown, display

from lmkcore.viz import compare

pd.set_option("display.max_columns", 40)
pd.set_option("display.width", 200)
keep = [m.strip() for m in methods.split(",") if m.strip()] or None
rows = compare.read_benchmarks(report_dir)
reports = compare.read_reports(report_dir, methods=keep)
shown = [d.strip() for d in datasets.split(",") if d.strip()] or compare.datasets_of(rows)
save = Path(out_dir) if out_dir else None
if save:
    save.mkdir(parents=True, exist_ok=True)


def show(fig, name: str) -> None:
    """Display a figure as a PNG (and save it as out_dir/<name>.png when out_dir is set)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    if save:
        (save / f"{name}.png").write_bytes(buf.getvalue())
    display(Image(data=buf.getvalue()))


print(f"{len(reports)} reports of methods {sorted({r.get('method') for r in reports})}; data sets {shown}")

# %% [markdown]
# ## Headline numbers
# One line per report on the full fit set (few-shot fits are below), in percent; NME is normalised
# by the data set's normaliser (inter-ocular distance on MTFL, the box elsewhere).

# %%
for d in shown:
    display(Markdown(f"### {d}"))
    table = compare.headline_table(rows, d, methods=keep, diagnostics=diagnostics)
    display(table if not table.empty else Markdown("no rows"))

# %% [markdown]
# ## Cumulative error curves
# Forward (discovered keypoints -> annotations, solid) and backward (annotations -> keypoints,
# dashed): the fraction of test images whose error is at most t.

# %%
for d in shown:
    fig = compare.curve_figure(reports, d)
    if fig is None:
        display(Markdown(f"{d}: no report with curves"))
    else:
        show(fig, f"compare_curves_{d}")

# %% [markdown]
# ## Few-shot fits
# The same linear map fit on fewer images (the protocol's `few_shot`): how much annotation each
# method's keypoints need.

# %%
for d in shown:
    fig = compare.few_shot_figure(reports, d, few_shot_metric)
    if fig is None:
        display(Markdown(f"{d}: no report with few-shot fits"))
    else:
        show(fig, f"compare_few_shot_{d}")

# %% [markdown]
# ## Keypoints on the same images
# One figure per data spec the trained reports used (a store, or a procedural variant), columns:
# the annotations, then each report whose checkpoint is present.

# %%
for d in shown:
    for data in compare.report_data(reports, d):
        notes: list[str] = []
        try:
            fig = compare.keypoint_figure(reports, data, split=split, n=n_images, root=root, notes=notes)
        except (FileNotFoundError, OSError) as e:  # the data itself is not on this machine
            fig, notes = None, notes + [f"data {data!r} cannot be opened ({type(e).__name__}: {e})"]
        if fig is not None:
            show(fig, f"compare_keypoints_{Path(data).stem}")
        display(Markdown(f"**{data}**: " + ("; ".join(notes) if notes else "every checkpoint shown")))
