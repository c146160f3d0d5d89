"""report.html and index.html in a real headless browser (Chromium from Debian packages; `make install`
installs it where it can): the page loads, its script runs, every verdict is on it, and the console has
no error; printed (`trainprove report DIR --pdf`, and the page as a browser prints it), the PDF holds every
verdict's explanation, chart and finding. Skipped, saying why, where no Chromium is installed."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from core_test_helpers import run_cli
from test_report import make_report

from trainprove_core.report import print_pdf, render_html, render_index, write_report
from trainprove_core.report.finding import findings, governing_test
from trainprove_core.report.reading import as_report

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


def pdf_text(pdf: Path) -> str:
    """The PDF's text, whitespace collapsed and ligatures undone (what a reader can search)."""
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the PDF (the dev extra installs it)")
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    for ligature, letters in (("\ufb01", "fi"), ("\ufb02", "fl"), ("\ufb00", "ff"), ("\ufb03", "ffi")):
        text = text.replace(ligature, letters)
    return re.sub(r"-\s+(?=\d)", "-", " ".join(text.split()))  # "1.00e-" at a line's end, "04" next


def words(text: str) -> str:
    return " ".join(text.split())


def big_report() -> dict:
    """More verdicts than the page opens on screen: every detail is collapsed until printed."""
    report = make_report()
    report["verdicts"] += [copy.deepcopy(report["verdicts"][0]) | {"suspect": f"s{i}"} for i in range(20)]
    for i, v in enumerate(report["verdicts"]):
        v["explanation"] = f"{v['suspect']}: explanation number {i} of this report, written out in full."
    return report


def test_trainprove_report_pdf_holds_every_explanation_chart_and_finding(tmp_path):
    report = big_report()
    write_report(report, tmp_path, html=False)
    done = run_cli("report", str(tmp_path), "--pdf")
    assert done.returncode == 0, done.stderr
    assert f"pdf: {tmp_path / 'report.pdf'}" in done.stdout
    assert "' open><summary>" not in (tmp_path / "report.html").read_text()  # collapsed on screen
    text = pdf_text(tmp_path / "report.pdf")
    everything = report["verdicts"] + report["negative_control"]["verdicts"]
    for v in everything:
        assert words(v["explanation"]) in text, v["explanation"]
    assert text.count("reference sample, n = 30") == sum(1 for v in everything if v["sample"])  # the charts
    typed = as_report(report)
    for found in findings(typed, governing_test(typed)):
        assert words(found.sentence) in text, found.sentence
    assert "The audit file (secrets masked)" in text and "shadow_set ffee" in text  # the manifest, opened


def test_a_browser_printing_the_page_opens_every_detail(tmp_path):
    """The page as written (details collapsed), printed as a browser prints it: the print stylesheet and
    the `beforeprint` script open every detail."""
    report = big_report()
    page = tmp_path / "report.html"
    page.write_text(render_html(report), encoding="utf-8")
    assert "' open><summary>" not in page.read_text()
    pdf = print_pdf(page.read_text(encoding="utf-8"), tmp_path / "screen.pdf")
    text = pdf_text(pdf)
    for v in report["verdicts"]:
        assert words(v["explanation"]) in text, v["explanation"]


def test_the_fleet_and_runs_index_prints_to_index_pdf(tmp_path):
    for name in ("one", "two"):
        write_report(make_report(), tmp_path / name, html=False)
    done = run_cli("report", str(tmp_path), "--pdf")
    assert done.returncode == 0, done.stderr
    assert "trainprove: suspect × audit" in pdf_text(tmp_path / "index.pdf")
