"""report.html: rendered from report.json alone, self-contained, one inline SVG chart per verdict with a
sample, the summary and the decision matrix first, hostile strings escaped, non-finite numbers survived;
`trainprove report DIR` re-renders it. No timing assertions (bench/report.py measures speed)."""

from __future__ import annotations

import copy
import json
import math
import re
import xml.etree.ElementTree as ET

import pytest
from core_test_helpers import run_cli

from trainprove_core.accounting import Accounts
from trainprove_core.report import (
    LEGEND_ROW,
    RUG_BOTTOM,
    Y_TOP,
    H,
    render_html,
    verdict_svg,
    write_report,
)

TRAINED, NOT_TRAINED, INCONCLUSIVE = "trained-on-generator", "not-trained-on-generator", "inconclusive"
SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def verdict(suspect: str, test: str, decision: str, **extra) -> dict:
    """A record of the shape `_verdict_record` writes."""
    sample = extra.pop("sample", [0.88 + 0.004 * (i % 9) for i in range(30)])
    record = {
        "suspect": suspect,
        "test": test,
        "decision": decision,
        "statistic": 4.2,
        "threshold": 2.9,
        "p_value": 1e-4,
        "alpha": 0.05,
        "n": len(sample),
        "effect_size": 0.1,
        "explanation": f"{suspect}: {decision.replace('-', ' ')}; because.",
        "truth": None,
        "correct": None,
        "quantity": "batch accuracy on the validation set",
        "sample": sample,
        "suspect_value": 0.78 if decision == NOT_TRAINED else 0.9,
        "boundary": 0.85,
        "details": {"sd": 0.01, "side": "low"},
        "plugin": test,
        "distribution": "trainprove-tests",
        "version": "0.1.0",
    }
    record.update(extra)
    return record


def make_report() -> dict:
    verdicts = [
        verdict("alpha-net", "trainprove", TRAINED, truth=TRAINED, correct=True),
        verdict("alpha-net", "welch", NOT_TRAINED, truth=TRAINED, correct=False),
        verdict(
            "alpha-net",
            "threshold",
            TRAINED,
            sample=[],
            truth=TRAINED,
            correct=True,
            explanation="alpha-net: trained on generator; its accuracy (0.900) reaches the fixed threshold.",
        ),
        verdict("beta-net", "trainprove", NOT_TRAINED),
        verdict("beta-net", "welch", NOT_TRAINED),
        verdict(
            "beta-net",
            "threshold",
            INCONCLUSIVE,
            sample=[],
            suspect_value=None,
            boundary=None,
            statistic=None,
            threshold=None,
            p_value=None,
            explanation="beta-net: threshold declined: it needs probabilities and this suspect answers "
            "labels only.",
            details={"reason": "it needs probabilities", "declined": True},
        ),
    ]
    return {
        "trainprove_version": "0.1.0",
        "created": "2025-06-01T12:00:00+0000",
        "wall_seconds": 12.5,
        "task": {"classes": ["disc", "ring", "hbar"], "image_size": 16},
        "generator": {"use": "shapes", "identity": {"style": 0.0}},
        "shadow": {"images": 180, "model": "ab12", "validation_accuracy": 0.93},
        "validation": {"images": 300, "batches": 20, "batch_size": 15},
        "suspects": [
            {"name": "alpha-net", "use": "timm", "truth": TRAINED, "accuracy": 0.912, "queries_sent": 300},
            {"name": "beta-net", "use": "timm", "truth": None, "accuracy": 0.645, "queries_sent": 300},
            {
                "name": "dead-api",
                "use": "http",
                "truth": None,
                "error": "[suspect dead-api] http: 503 after 5 tries",
            },
        ],
        "verdicts": verdicts,
        "negative_control": {
            "source": "digits-real",
            "verdicts": [verdict("negative control (digits-real)", "trainprove", NOT_TRAINED)],
        },
        "positive_control": None,
        "warnings": ["negative control failed: welch judged it trained-on-generator (it is not)."],
        "errors": ["[suspect dead-api] http: 503 after 5 tries"],
        "timings": {"checking": 0.2, "image_sets": 3.0, "queries": {"alpha-net": 1.0, "beta-net": 2.0}},
        "manifest": {"audit_file": "audit.toml", "hashes": {"shadow_set": "ffee"}},
    }


def charts(page: str) -> list[str]:
    return SVG.findall(page)


def test_the_page_is_self_contained_with_one_svg_per_verdict_with_a_sample():
    report = make_report()
    page = render_html(report)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<img" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    assert "matplotlib" not in page and "data:image/png" not in page
    everything = report["verdicts"] + report["negative_control"]["verdicts"]
    with_sample = [v for v in everything if v["sample"]]
    assert len(charts(page)) == len(with_sample) == 5
    for svg in charts(page):  # each one parses on its own, as XML
        root = ET.fromstring(svg)
        assert root.get("role") == "img" and root.find("{http://www.w3.org/2000/svg}title") is not None
    assert page.count("<details class='v'") == len(everything)


def test_summary_comes_first_then_the_decision_matrix_then_warnings_details_manifest():
    page = render_html(make_report())
    order = [
        page.index(x)
        for x in ("class='summary'", 'id="verdicts"', 'id="warnings"', 'id="details"', 'id="manifest"')
    ]
    assert order == sorted(order)
    summary = re.search(r"<p class='summary'>(.*?)</p>", page, re.S).group(1)
    text = " ".join(re.sub(r"<[^>]+>", "", summary).split())
    assert "Generator shapes: 3 suspects × 3 tests = 6 verdicts" in text
    assert "2 trained on the generator, 3 not trained, 1 inconclusive" in text
    assert "1 warning, 1 error" in text
    per_test = re.search(r"<table class='per-test'>.*?</table>", page, re.S).group(0)
    assert per_test.count("<tr>") == 3 + 1  # header, and a row per test (the control's test is one of them)
    welch = re.search(r"<tr><th scope=\"row\">welch</th>.*?</tr>", per_test, re.S).group(0)
    assert "0 / 1" in welch and "1 (1 declined)" in per_test  # welch was wrong on its one known truth
    assert "negative passed" in per_test

    matrix = re.search(r'<table class="matrix">.*?</table>', page, re.S).group(0)
    head = re.search(r"<thead>(.*?)</thead>", matrix, re.S).group(1)
    assert [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>.*?</th>", head)] == [
        "suspect",
        "accuracy",
        "truth",
        "trainprove",
        "welch",
        "threshold",
    ]
    rows = re.findall(r"<tr>.*?</tr>", matrix.split("</thead>")[1], re.S)
    assert [re.search(r'<th scope="row">(.*?)</th>', r).group(1) for r in rows] == [
        "alpha-net",
        "beta-net",
        "dead-api",
        "negative control (digits-real)",
    ]
    alpha = rows[0]
    # Decisions are written out, with right/wrong marks: not colour alone. Each cell links to its details.
    assert ">trained ✓</a>" in alpha and ">not trained ✗</a>" in alpha and "0.912" in alpha
    assert 'class="d-t"' in alpha and 'class="d-n"' in alpha
    for target in re.findall(r'href="#(v\d+)"', matrix):
        assert f"id='{target}'" in page
    assert ">declined</a>" in rows[1]
    assert "not judged" in rows[2] and "503 after 5 tries" in rows[2]
    assert "Negative control" in page and "digits-real" in page
    assert "negative control failed: welch" in page


def test_a_verdict_without_a_sample_shows_its_explanation_and_the_suspects_accuracy():
    page = render_html(make_report())
    details = re.findall(r"<details class='v'.*?</details>", page, re.S)
    threshold = next(d for d in details if "alpha-net</b> · threshold" in d)
    assert "<svg" not in threshold
    assert "reaches the fixed threshold" in threshold
    assert "accuracy on the validation set 0.912" in threshold
    declined = next(d for d in details if "beta-net</b> · threshold" in d)
    assert "declined: it needs probabilities" in declined and "0.645" in declined


def test_hostile_strings_are_escaped():
    report = make_report()
    evil = "<script>alert('x')</script>"
    for v in report["verdicts"]:
        if v["suspect"] == "alpha-net":
            v["suspect"] = evil
            v["explanation"] = f"{evil}: </details><img src=x onerror=alert(1)>"
            v["quantity"] = '<b onclick="x">"accuracy"</b>'
    report["suspects"][0]["name"] = evil
    report["verdicts"][0]["test"] = '"><script>t</script>'
    report["generator"]["use"] = "<i>gen</i>"
    report["warnings"].append("<script>w</script>")
    report["errors"].append("<svg onload=alert(1)>")
    report["manifest"]["audit"] = {"note": "</pre><script>m</script>"}
    page = render_html(report)
    assert page.count("<script") == 1  # the page's own, at the end
    assert "<img" not in page and "<i>gen</i>" not in page and "<svg onload" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert len(charts(page)) == 5  # the hostile quantity did not open an element inside a chart
    for svg in charts(page):
        ET.fromstring(svg)


def test_null_and_infinite_numbers_are_shown_and_skipped_not_fatal(tmp_path):
    report = make_report()
    v = report["verdicts"][0]
    v.update(
        statistic=math.inf,
        threshold=None,
        p_value=math.nan,
        effect_size=-math.inf,
        suspect_value=math.inf,
        boundary=None,
        sample=[0.9, math.inf, None, math.nan, 0.91, "x", 0.92],
    )
    report["verdicts"][1].update(sample=[math.nan, math.inf], suspect_value=None)  # nothing finite to draw
    page = render_html(report)
    assert "statistic ∞" in page and "p NaN" in page and "effect size −∞" in page
    svg = verdict_svg(v)
    assert svg is not None and "4 non-finite values not drawn" in svg and "suspect: no value" in svg
    ET.fromstring(svg)
    assert verdict_svg(report["verdicts"][1]) is None
    assert len(charts(page)) == 4

    # Through report.json (Python's json writes Infinity and NaN) and back.
    write_report(report, tmp_path, html=False)
    again = json.loads((tmp_path / "report.json").read_text())
    assert render_html(again) == page


def test_the_chart_fits_its_x_range_to_the_data_and_keeps_lines_off_the_legend():
    v = verdict(
        "s",
        "trainprove",
        NOT_TRAINED,
        sample=[0.90 + 0.002 * i for i in range(25)],
        suspect_value=0.8,
        boundary=0.87,
    )
    svg = verdict_svg(v)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    x_ticks = [float(t.text) for t in root.iter(f"{ns}text") if t.get("y") == str(RUG_BOTTOM + 16)]
    assert x_ticks and 0.78 <= min(x_ticks) and max(x_ticks) <= 0.96  # not 0..1
    assert root.get("viewBox") == f"0 0 600 {H + LEGEND_ROW}"  # this legend takes two rows
    legend_rows = {float(t.get("y")) for t in root.iter(f"{ns}text") if t.text and "suspect" in t.text}
    (body,) = [g for g in root.findall(f"{ns}g") if (g.get("transform") or "").startswith("translate")]
    shift = float(body.get("transform").split()[1].rstrip(")"))
    lines = list(body.iter(f"{ns}line"))
    assert len(lines) == 2  # the boundary and the suspect
    for line in lines:  # no line reaches the legend, above the plot area
        assert min(float(line.get("y1")), float(line.get("y2"))) + shift >= Y_TOP - 4 + shift
        assert max(legend_rows) < min(float(line.get("y1")), float(line.get("y2"))) + shift - 4
    # The y axis has counts.
    y_labels = [t.text for t in body.iter(f"{ns}text") if t.get("text-anchor") == "end"]
    assert y_labels[0] == "0" and "count" in svg


def test_a_report_json_of_an_older_layout_still_renders():
    minimal = {
        "generator": {"use": "g"},
        "verdicts": [{"suspect": "a", "test": "t", "decision": TRAINED, "explanation": "a: because."}],
    }
    page = render_html(minimal)
    assert "a: because." in page and "<svg" not in page
    assert "Generator <b>g</b>: 0 suspects × 1 test = 1 verdict" in page


def test_write_report_records_the_report_time_the_counts_and_the_wall_time(tmp_path):
    accounts = Accounts()
    with accounts.phase("checking"):
        with accounts.phase("queries"):  # an inner phase is charged to itself, not to the outer one
            accounts.add("queries_sent", 5)
    report = make_report()
    json_path, html_path = write_report(report, tmp_path, accounts=accounts)
    written = json.loads(json_path.read_text())
    phases = [
        "checking",
        "generation",
        "training",
        "model_loading",
        "queries",
        "decisions",
        "report",
        "other",
    ]
    assert list(written["timings"]) == phases and written["counts"]["queries_sent"] == 5
    assert written["timings"]["report"] > 0 and written["wall_seconds"] >= 0 and html_path.exists()
    assert sum(written["timings"].values()) == pytest.approx(written["wall_seconds"], abs=0.05)
    assert write_report(make_report(), tmp_path / "j", html=False)[1] is None
    assert not (tmp_path / "j" / "report.html").exists()


def test_details_are_open_in_a_small_report_and_collapsed_in_a_large_one():
    small = render_html(make_report())
    assert small.count("<details class='v' id='v") == small.count("' open><summary>")
    big = make_report()
    big["verdicts"] = [copy.deepcopy(big["verdicts"][0]) | {"suspect": f"s{i}"} for i in range(40)]
    page = render_html(big)
    assert page.count("<details class='v'") == 41 and "' open><summary>" not in page


def test_trainprove_report_re_renders_report_html_from_report_json(tmp_path):
    write_report(make_report(), tmp_path, html=False)
    before = (tmp_path / "report.json").read_bytes()
    assert not (tmp_path / "report.html").exists()
    done = run_cli("report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "7 verdicts" not in done.stdout and "6 verdicts in" in done.stdout
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'class="matrix"' in page and len(charts(page)) == 5
    assert (tmp_path / "report.json").read_bytes() == before  # re-rendering leaves the JSON alone

    (tmp_path / "empty").mkdir()
    missing = run_cli("report", str(tmp_path / "empty"))
    assert missing.returncode == 2 and "report.json: no such file" in missing.stderr


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]"])
def test_trainprove_report_names_a_broken_report_json(tmp_path, bad):
    (tmp_path / "report.json").write_text(bad)
    done = run_cli("report", str(tmp_path))
    assert done.returncode == 2 and "report.json" in done.stderr and "Traceback" not in done.stderr


def test_audit_no_html_writes_report_json_with_timings_and_report_renders_it(tmp_path, plugins, suspect_pool):
    """`trainprove audit --no-html` (through click, with the test kit's `shapes` generator registered)."""
    from click.testing import CliRunner

    from trainprove_core.cli import cli

    audit = tmp_path / "audit.toml"
    lines = [
        "[task]",
        'classes = ["disc", "ring", "hbar"]',
        "image_size = 16",
        "[generator]",
        'use = "shapes"',
        "[shadow]",
        'prompt = "a {label}"',
        "per_class = 60",
        'arch = "test_resnet"',
        "epochs = 12",
        "batch_size = 64",
        "hflip = false",
        "crop_scale = [0.7, 1.0]",
        "[validation]",
        'prompt = "a photo of a {label}"',
        "per_class = 100",
        "batch_size = 15",
        "[[suspect]]",
        'name = "s"',
        'use = "timm"',
        f'checkpoint = "{suspect_pool["same"]}"',
    ]
    audit.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    args = ("audit", str(audit), "--out", str(out), "--store", str(tmp_path / "st"), "--no-progress")
    done = CliRunner().invoke(cli, [*args, "--no-html"], obj={"plugins": plugins})
    assert done.exit_code == 0, done.output
    assert not (out / "report.html").exists() and f"trainprove report {out}" in done.output
    report = json.loads((out / "report.json").read_text())
    timings, counts = report["timings"], report["counts"]
    assert all(timings[k] > 0 for k in ("checking", "generation", "training", "queries", "decisions"))
    assert counts["images_made"] == 3 * (60 + 100) and counts["models_trained"] == 1
    assert counts["queries_sent"] == 2 * 300 and counts["verdicts_made"] == 1  # shadow and suspect
    assert report["suspects"][0]["seconds"] > 0
    assert (
        "audit: 1 suspect, 1 verdict" in done.output and "queries 600 sent" in done.output
    )  # the summary line
    # The console states the finding in the page's words: the governing rule, a sentence per suspect.
    assert "finding, by the rule trainprove (by default the audit's first test governs" in done.output
    assert re.search(r"\n  s: (not )?trained on shapes's images, by the rule trainprove\. p = ", done.output)

    rendered = run_cli("report", str(out))
    assert rendered.returncode == 0, rendered.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert len(charts(page)) == 1 and "model loading" in page and "images made 480" in page


def test_index_links_every_audit_and_shows_decisions_or_the_attribution_matrix(tmp_path):
    from trainprove_core.report import render_index

    a, b = make_report(), make_report()
    b["generator"]["use"] = "glyphs"
    for v in b["verdicts"]:
        v["decision"] = NOT_TRAINED
    audits = [("shapes", "shapes/report.html", a), ("glyphs", "glyphs/report.html", b)]
    page = render_index(audits)
    assert 'href="shapes/report.html"' in page and 'href="glyphs/report.html"' in page
    matrix = re.search(r"<h2 id=\"m1\">trainprove: suspect × audit</h2>.*?</table>", page, re.S).group(0)
    alpha = re.search(r"<tr><th scope=\"row\">alpha-net</th>.*?</tr>", matrix).group(0)
    assert 'href="shapes/report.html#v0"' in alpha and ">trained ✓</a>" in alpha and "not trained" in alpha
    grouped = render_index(audits, groups={"alpha-net": "shapes", "beta-net": "glyphs"})
    rows = re.findall(
        r"<tr><th scope=\"row\">(\w+)</th>(.*?)</tr>", grouped.split('id="m1"')[1].split("</table>")[0]
    )
    assert [(name, re.findall(r">(\d+/\d+)<", cells)) for name, cells in rows] == [
        ("shapes", ["1/1", "0/1"]),
        ("glyphs", ["0/1", "0/1"]),
    ]
    evil = make_report()
    evil["generator"]["use"] = "<script>x</script>"
    assert "<script>x" not in render_index([("e", "e/report.html", evil)])


def test_trainprove_report_on_a_folder_of_runs_writes_an_index(tmp_path):
    for name in ("one", "two"):
        write_report(make_report(), tmp_path / name, html=False)
    done = run_cli("report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    assert (
        'href="one/report.html"' in page and 'href="two/report.html"' in page and "2 reports" in done.stdout
    )


def test_trainprove_report_pdf_without_chromium_says_so_in_one_line_and_keeps_the_page(tmp_path):
    import os

    write_report(make_report(), tmp_path, html=False)
    (tmp_path / "bin").mkdir()
    done = run_cli("report", str(tmp_path), "--pdf", env={**os.environ, "PATH": str(tmp_path / "bin")})
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "report.pdf needs a headless Chromium on PATH" in done.stderr
    assert (tmp_path / "report.html").exists() and not (tmp_path / "report.pdf").exists()
