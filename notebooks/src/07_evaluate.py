# %% [markdown]
# # 07 · Evaluate: one protocol for every method
# Discovered keypoints of each checkpoint -> linear map without intercept (ridge by 5-fold CV on
# the fit set only) -> annotated landmarks; forward and backward errors, cumulative error curves,
# per-landmark errors and few-shot fits, in percent, with metrics chosen by the data's
# normalisation (`lmkcore.eval`). Writes `reports/<run>/metrics.json` and figures;
# `lmkcore.eval.report.collect` (run by `python -m lmkcore.bench`) turns every report into
# `reports/benchmarks.md`. Run headless:
# `papermill notebooks/07_evaluate.ipynb out.ipynb -p checkpoints runs/<run>/last.pt`.

# %% tags=["parameters"]
checkpoints: str = ""  # comma-separated checkpoint paths or run directories (empty: newest under runs_dir)
runs_dir: str = "runs"  # where training runs live (searched when checkpoints is "")
data: str = "procedural"  # store path or "procedural": the fit set (and the test set unless test_data)
fit_split: str = "fit"  # split of `data` the regressor is fit on
test_split: str = "val"  # split scored (of `data`, or of `test_data` when it has this split)
test_data: str = ""  # a separate test store (empty: test_split of data)
n_fit: int = 0  # annotated images the regressor is fit on, a seeded subset (0: all)
few_shot: str = "1%,50,10"  # further fit-set sizes, comma-separated (empty: none)
max_test: int = 0  # score only the first N test images, for quick runs (0: all)
ridge: str = "cv"  # "cv" (k-fold CV on the fit set) or a fixed relative ridge, e.g. "0"
seed: int = 0  # few-shot subsets and CV folds
device: str = "auto"  # auto | cpu | cuda
batch_size: int = 64  # images per forward pass
report_dir: str = "reports"  # reports/<run>/metrics.json and figures go here
profile: str = ""  # benchmark profile recorded in metrics.json (empty: ad hoc)

# %%
from lmkcore.params import checked

globals().update(checked(globals()))  # a misspelled name, a wrong type or a bad boolean: an error naming it

# %%
import json

from IPython.display import Image, Markdown, display

from lmkcore.eval import evaluate_checkpoint
from lmkcore.eval.report import write_report
from lmkcore.runs import resolve_checkpoints

paths = [c.path for c in resolve_checkpoints(checkpoints, runs_dir, required=True)[1]]  # (available, selected)
sizes = [s.strip() for s in few_shot.split(",") if s.strip()]
print("\n".join(map(str, paths)))

# %%
reports = []
for path in paths:
    result = evaluate_checkpoint(path, data, fit_split, test_split, test_data or None, n_fit=n_fit or None,
                                 few_shot=sizes, seed=seed, ridge=ridge if ridge == "cv" else float(ridge),
                                 max_test=max_test or None, batch_size=batch_size, device=device)
    reports.append(write_report(result, report_dir, profile=profile))
    print(reports[-1], {k: round(v, 2) for k, v in result["metrics"].items()})

# %% [markdown]
# ## Numbers (percent), headline and few-shot fits

# %%
lines = []
for out in reports:
    m = json.loads((out / "metrics.json").read_text())
    if not lines:
        lines = ["| report | fit images | " + " | ".join(m["metrics"]) + " |", "|---" * (2 + len(m["metrics"])) + "|"]
    for fit in [m] + m["few_shot"]:
        values = " | ".join(f"{v:.2f}" for v in fit["metrics"].values())
        lines.append(f"| {out.name} | {fit['fit_images']} | {values} |")
display(Markdown("\n".join(lines)))

# %% [markdown]
# ## Cumulative error curves, per-landmark errors, predictions on test images

# %%
for out in reports:
    display(Markdown(f"### {out.name}"))
    for name in ("curves", "per_landmark", "predictions"):
        if (out / f"{name}.png").exists():
            display(Image(filename=str(out / f"{name}.png")))
