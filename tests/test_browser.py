"""Notebook 09 in JupyterLab, in headless Chromium: run all cells, move the slider, toggle a
layer, see the image change. The steps live in `tests/browser_check.py`; run it on its own to
debug or to refresh the committed screenshot reports/figures/inspector.png (the test writes its
screenshot to a temporary folder and leaves the working tree alone)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import browser_check


@pytest.mark.browser
def test_inspector_in_jupyterlab(tmp_path):
    if not Path(browser_check.CHROMIUM).exists():
        pytest.skip(f"{browser_check.CHROMIUM} is missing (Debian: apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    t0 = time.monotonic()
    screenshot = tmp_path / "inspector.png"
    seen = browser_check.run(screenshot, keep=tmp_path / "root", timeout_s=60)
    assert seen["readout_before"] == "0" and seen["readout_after"] == "1"
    assert seen["image_changed"]
    assert "image 1 / 999" in seen["info"] and "heatmaps" in seen["info"]
    assert "UNTRAINED" not in seen["message"]  # the trained run was found (the main job's, in CI)
    labels = seen["labels"]
    assert len(labels) >= 2 and len(set(labels)) == len(labels) and all(len(lb) <= 24 for lb in labels), labels
    assert seen["controls_in_view"]  # every layer on, the controls still on screen
    # the legend names only what is drawn: nothing unticked, and the toggled layer once it is on
    for key in ("before", "all"):
        assert browser_check.legend_layers(seen[f"legend_{key}"]) <= set(seen[f"checked_{key}"]), seen
    assert "heatmaps" in browser_check.legend_layers(seen["legend_layer"])
    assert "heatmaps" not in browser_check.legend_layers(seen["legend_before"])
    assert "saved" in seen["status"] and any(p.endswith(".png") for p in seen["saved"]) \
        and any(p.endswith(".json") for p in seen["saved"])
    assert screenshot.stat().st_size > 10_000
    assert time.monotonic() - t0 < 120
