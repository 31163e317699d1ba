"""Notebook 09 in JupyterLab, in headless Chromium: run all cells, move the slider, toggle a
layer, see the image change; the screenshot goes to reports/figures/inspector.png.
The steps live in `tests/browser_check.py` (also runnable on its own to debug)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

import browser_check

SCREENSHOT = Path(__file__).resolve().parent.parent / "reports" / "figures" / "inspector.png"


@pytest.mark.browser
def test_inspector_in_jupyterlab(tmp_path):
    if not Path(browser_check.CHROMIUM).exists():
        pytest.skip(f"{browser_check.CHROMIUM} is missing (Debian: apt-get install -y chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    t0 = time.monotonic()
    seen = browser_check.run(SCREENSHOT, keep=tmp_path / "root", timeout_s=60)
    assert seen["readout_before"] == "0" and seen["readout_after"] == "1"
    assert seen["image_changed"]
    assert "image 1 / 999" in seen["info"] and "heatmaps" in seen["info"]
    assert "UNTRAINED" not in seen["message"]  # the tiny trained run was found
    assert SCREENSHOT.stat().st_size > 10_000
    assert time.monotonic() - t0 < 120
