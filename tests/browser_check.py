"""End-to-end check of notebook 09 as a person uses it: JupyterLab in headless Chromium.

    python tests/browser_check.py [--screenshot reports/figures/inspector.png] [--keep DIR]
                                  [--run RUN_DIR --data STORE.h5 --layer LAYER]

The committed reports/figures/inspector.png is the part-based MTFL run of the cpu benchmark:
    python tests/browser_check.py --run runs/cpu/partbased_k10_mtfl-64_5000_static_cov_r64_bn8_pixel \
        --data data/mtfl-80.h5 --layer parts --timeout 120

1. A scratch root with `09_inspect.ipynb` and a trained run in `runs/` (`--run`, else the main job's
   procedural run, else a tiny 2-step AutoLink run).
2. JupyterLab on 127.0.0.1, a free port, a random token, its config / data / runtime dirs in
   the scratch root (the venv's `python3` kernel stays visible through `sys.prefix`).
3. Chromium (Debian's `/usr/bin/chromium`, driven by Playwright; nothing is downloaded) opens
   the notebook, runs all cells from the Run menu, waits for the slider and the image, moves
   the slider with the keyboard and checks that the image changes; then a screenshot.
4. The server is shut down (REST, then SIGTERM to its own process group) whatever happens.
Every wait has a timeout; none assumes speed.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "notebooks" / "09_inspect.ipynb"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
TINY = dict(n_parts=4, resolution=32, det_base=8, det_down=2, det_up=1, dec_base=8, dec_depth=2, block=8, warmup=1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def real_run() -> Path | None:
    """The newest run the main job trained in this clone (`runs/`, notebook 02 on the procedural figures)."""
    from lmkcore.runs import find_checkpoints

    found = find_checkpoints(REPO / "runs")
    procedural = [c for c in found if "procedural" in c.path.parent.name]
    return procedural[0].path.parent if procedural else None


def setup_root(root: Path, run: Path | None = None, data: str = "") -> str:
    """The notebook and a trained run: `run` if given, else the main job's real run where this clone has one
    (its snapshots and last.pt), else a tiny 2-step run (snapshots at 1 and 2). Which one: the returned "real"
    or "tiny". `data` (a store) is injected as the notebook's `data` parameter, as papermill would."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from lmkcore.data import open_dataset
    from lmkcore.methods import build
    from lmkcore.train import TrainConfig, train

    import torch

    nb = load_notebook_node(str(NOTEBOOK))
    if data:
        nb = parameterize_notebook(nb, {"data": str(Path(data).resolve())})
    nbformat.write(nb, root / NOTEBOOK.name)
    run = run or real_run()
    if run is not None:
        dest = root / "runs" / run.name
        dest.mkdir(parents=True, exist_ok=True)
        for f in [*run.glob("*.pt"), run / "config.json", run / "summary.json"]:
            if f.is_file():
                shutil.copy(f, dest / f.name)
        return "real"
    torch.manual_seed(0)
    train(build("autolink", **TINY), open_dataset("procedural", "train", 32),
          TrainConfig(steps=2, batch_size=4, num_workers=0, out_dir=str(root / "runs"), progress=False,
                      tensorboard=False, ckpt_every=1))
    return "tiny"


def jupyter_env(root: Path) -> dict:
    env = dict(os.environ)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"), ("MPLCONFIGDIR", "mpl")):
        (root / ".jupyter" / sub).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / ".jupyter" / sub)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    # no news / update pop-ups over the notebook
    labconfig = root / ".jupyter" / "config" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    (labconfig / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    return env


def start_server(root: Path, port: int, token: str, log) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--ServerApp.token={token}",
           "--ServerApp.ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", "--LabApp.news_url=None", "--LabApp.extension_manager=readonly",
           "--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate"]
    return subprocess.Popen(cmd, cwd=root, env=jupyter_env(root), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_ready(url: str, token: str, proc: subprocess.Popen, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"JupyterLab did not answer at {url} within {timeout:.0f} s")


def stop_server(url: str, token: str, proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            req = urllib.request.Request(f"{url}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(req, timeout=5).close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server's own session: it and its kernels
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def drive(url: str, token: str, screenshot: Path, timeout_s: float = 60.0, layer: str = "heatmaps") -> dict:
    """Open the notebook, run all cells, move the slider; returns what was seen."""
    from playwright.sync_api import sync_playwright

    ms = int(timeout_s * 1000)
    seen: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{url}/lab/tree/{NOTEBOOK.name}?token={token}", timeout=ms)
            page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for(timeout=ms)
            page.wait_for_function(  # the notebook's kernel is connected and idle
                "() => Array.from(document.querySelectorAll('.jp-StatusBar-TextItem'))"
                ".some(e => /\\| Idle/.test(e.textContent) && !/No Kernel/.test(e.textContent))", timeout=ms)
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click(timeout=ms)
            page.get_by_text("Run All Cells", exact=True).click(timeout=ms)
            image = page.locator(".lmk-image").first
            image.wait_for(state="visible", timeout=ms)
            page.wait_for_function("() => { const i = document.querySelector('.lmk-image');"
                                   " return i && i.src && i.naturalWidth > 0; }", timeout=ms)
            handle = page.locator(".lmk-slider .noUi-handle").first
            handle.wait_for(state="visible", timeout=ms)
            seen["message"] = page.locator(".lmk-message").first.inner_text(timeout=ms)
            before = image.get_attribute("src")
            readout = page.locator(".lmk-slider .widget-readout").first
            seen["readout_before"] = readout.inner_text(timeout=ms)
            seen["legend_before"] = legend_title(page)  # the legend's entries (the layers line's tooltip)
            seen["checked_before"] = checked(page)
            handle.focus()
            handle.press("ArrowRight")
            page.wait_for_function(
                "(b) => { const i = document.querySelector('.lmk-image'); return i && i.src !== b && i.naturalWidth > 0; }",
                arg=before, timeout=ms)
            seen["readout_after"] = readout.inner_text(timeout=ms)
            seen["image_changed"] = image.get_attribute("src") != before
            # a toggle of a layer the method declares (AutoLink's "heatmaps"): it is drawn and the image is redrawn
            before = image.get_attribute("src")
            tick(page.locator(".lmk-inspector .widget-checkbox", has_text=layer).locator("input"), ms)
            page.wait_for_function(
                "(b) => { const i = document.querySelector('.lmk-image'); return i && i.src !== b && i.naturalWidth > 0; }",
                arg=before, timeout=ms)
            page.locator(".lmk-info", has_text=layer).wait_for(timeout=ms)
            seen["info"] = page.locator(".lmk-info").first.inner_text(timeout=ms)
            seen["legend_layer"] = legend_title(page)
            # checkpoint choices: short and distinct (the shared run name shown once)
            seen["labels"] = page.locator(".lmk-checkpoints select option").all_inner_texts()
            # every layer on: the controls stay in the viewport, the image below them
            before = image.get_attribute("src")
            for box in page.locator(".lmk-inspector .widget-checkbox input").all():
                if box.is_visible() and not box.is_checked():
                    tick(box, ms)
            page.wait_for_function(
                "(b) => { const i = document.querySelector('.lmk-image'); return i && i.src !== b && i.naturalWidth > 0; }",
                arg=before, timeout=ms)
            seen["legend_all"], seen["checked_all"] = legend_title(page), checked(page)
            seen["controls_in_view"] = page.evaluate(
                "() => { document.querySelector('.lmk-inspector').scrollIntoView({block: 'start'});"
                " return ['.lmk-slider', '.lmk-checkpoints', '.lmk-save', '.lmk-size'].every(s => {"
                " const r = document.querySelector(s).getBoundingClientRect();"
                " return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && r.right <= window.innerWidth; }); }")
            page.locator(".lmk-save button, button.lmk-save").first.click(timeout=ms)
            page.locator(".lmk-status", has_text="saved").wait_for(timeout=ms)
            seen["status"] = page.locator(".lmk-status").first.inner_text(timeout=ms)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot))
            _shrink(screenshot)
        finally:
            browser.close()
    return seen


def tick(box, ms: float, tries: int = 3) -> None:
    """Check a widget's checkbox. JupyterLab redraws a widget as its state comes back from the kernel, which
    can swallow a click made meanwhile (Playwright: "Clicking the checkbox did not change its state"); such a
    click is made again, any other error is raised."""
    from playwright.sync_api import Error

    for attempt in range(tries):
        try:
            return box.check(timeout=ms)
        except Error as e:
            if "did not change its state" not in str(e) or attempt == tries - 1:
                raise
            box.page.wait_for_timeout(250)


def checked(page) -> list[str]:
    """The labels of the ticked layer boxes."""
    return [box.inner_text().strip() for box in page.locator(".lmk-inspector .widget-checkbox").all()
            if box.locator("input").is_checked()]


def legend_title(page) -> str | None:
    """The legend's entries as the inspector gives them in text: the tooltip of its layers line."""
    legend = page.locator(".lmk-info .lmk-legend").first
    legend.wait_for(state="attached")
    return legend.get_attribute("title")


def legend_layers(title: str | None) -> set[str]:
    """The layer names in the legend tooltip ("legend: kp 0; ...; heatmaps (maps); ..."): keypoint
    swatches count as "keypoints", an overlay entry by the name before its kind."""
    entries = (title or "").removeprefix("legend: ").split("; ")
    return {"keypoints" if e.startswith("kp ") else e.split(" (")[0] for e in entries if e and e != "nothing drawn"}


def _shrink(path: Path) -> None:
    """A palette PNG (256 colours): a screenshot of a few dozen KB instead of a few hundred."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def run(screenshot: Path, keep: Path | None = None, timeout_s: float = 60.0, run_dir: Path | None = None,
        data: str = "", layer: str = "heatmaps") -> dict:
    root = Path(tempfile.mkdtemp(prefix="lmk-browser-")) if keep is None else keep
    root.mkdir(parents=True, exist_ok=True)
    kind = setup_root(root, run_dir, data)
    port, token = free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    with open(root / "jupyter.log", "wb") as log:
        proc = start_server(root, port, token, log)
        try:
            wait_ready(url, token, proc, timeout=timeout_s)
            seen = drive(url, token, screenshot, timeout_s, layer)
            seen["run"] = kind
            seen["saved"] = sorted(str(p.relative_to(root)) for p in (root / "reports" / "figures" / "inspector").glob("*"))
            return seen
        except Exception as e:
            tail = (root / "jupyter.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{type(e).__name__}: {e}\n--- jupyter.log (tail) ---\n{tail}") from e
        finally:
            stop_server(url, token, proc)
            if keep is None:
                shutil.rmtree(root, ignore_errors=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--screenshot", default=str(REPO / "reports" / "figures" / "inspector.png"))
    ap.add_argument("--keep", default=None, help="use (and keep) this scratch root")
    ap.add_argument("--run", default=None, help="a run directory to inspect (default: the newest procedural run"
                    " under runs/, else a tiny one)")
    ap.add_argument("--data", default="", help="a store (.h5) to browse (default: the procedural figures)")
    ap.add_argument("--layer", default="heatmaps", help="a layer of the run's method to toggle (part-based: parts)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds for each wait")
    a = ap.parse_args(argv)
    if a.run and not Path(a.run).is_dir():
        ap.error(f"--run {a.run}: not a directory")
    if a.data and not Path(a.data).is_file():
        ap.error(f"--data {a.data}: no such file")
    t = time.time()
    seen = run(Path(a.screenshot), Path(a.keep) if a.keep else None, a.timeout, Path(a.run) if a.run else None,
               a.data, a.layer)
    print(json.dumps({**seen, "seconds": round(time.time() - t, 1)}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
