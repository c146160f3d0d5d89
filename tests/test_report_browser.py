"""report.html and index.html in a real headless browser (Chromium from Debian packages; `make install`
installs it where it can): the page loads, its script runs, every verdict is on it, and the console has
no error. Skipped, saying why, where no Chromium is installed."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_report import make_report

from trainprove_core.report import render_html, render_index

BROWSER = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium on this machine (apt-get install chromium; `make install` does it as root)",
)
CONSOLE = re.compile(r"CONSOLE\(\d+\)\]? ?\"?(.*)|Uncaught .*|ERROR:.*console", re.I)


def load(page: Path, tmp_path: Path, fragment: str = "") -> tuple[str, list[str]]:
    """The DOM after the page's scripts ran, and every console message Chromium logged."""
    done = subprocess.run(
        [
            BROWSER,
            "--headless",
            "--no-sandbox",  # tests may run as root, where Chromium refuses its sandbox
            "--disable-gpu",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=3000",
            "--dump-dom",
            page.resolve().as_uri() + fragment,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return done.stdout, console


def test_the_console_check_sees_an_error_in_a_broken_page(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<!doctype html><title>x</title><p>x</p><script>notDefined()</script>")
    dom, console = load(broken, tmp_path)
    assert "<p>x</p>" in dom and any("notDefined" in line for line in console), console


def test_report_html_loads_with_every_verdict_and_no_console_error(tmp_path):
    report = make_report()
    report["verdicts"] += [copy.deepcopy(report["verdicts"][0]) | {"suspect": f"s{i}"} for i in range(20)]
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    everything = report["verdicts"] + report["negative_control"]["verdicts"]
    dom, console = load(page, tmp_path, "#v7")
    assert console == [], console
    for i, v in enumerate(everything):
        assert f'id="v{i}"' in dom and f"<b>{v['suspect']}</b>" in dom
    # The page's script ran: the verdict the URL names is opened (the others stay collapsed).
    assert re.search(r'<details class="v" id="v7" open="">', dom)
    assert not re.search(r'<details class="v" id="v8" open="">', dom)
    assert dom.count("<svg") == sum(1 for v in everything if v["sample"])


def test_index_html_loads_and_links_every_audit(tmp_path):
    a, b = make_report(), make_report()
    b["generator"]["use"] = "glyphs"
    page = tmp_path / "index.html"
    page.write_text(render_index([("shapes", "shapes/report.html", a), ("glyphs", "glyphs/report.html", b)]))
    dom, console = load(page, tmp_path)
    assert console == [], console
    assert 'href="shapes/report.html"' in dom and 'href="glyphs/report.html"' in dom
    assert 'href="glyphs/report.html#v1"' in dom  # a cell links to the verdict's details
