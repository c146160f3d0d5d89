"""Reports: `report.json` for machines and `report.html` for people (self-contained, plots inline)."""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

COLOURS = {
    "trained-on-generator": "#b2182b",
    "not-trained-on-generator": "#2166ac",
    "inconclusive": "#777777",
}


def write_report(report: dict[str, Any], out_dir: Path, html: bool = True) -> tuple[Path, Path | None]:
    """Write `report.json` and (unless `html` is false) `report.html` into `out_dir`; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    if not html:
        return json_path, None
    html_path = out_dir / "report.html"
    html_path.write_text(render_html(report), encoding="utf-8")
    return json_path, html_path


def verdict_plot(verdict: dict[str, Any]) -> str | None:
    """A PNG (base64) of the reference sample, the suspect's value and the decision boundary, or None
    when the verdict carries no sample."""
    sample = verdict.get("sample") or []
    if not sample:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 1.9), dpi=100)
    ax.hist(
        sample,
        bins=min(20, max(5, len(sample) // 2)),
        color="#bbbbbb",
        edgecolor="#888888",
        label="shadow model, per batch",
    )
    value = verdict.get("suspect_value")
    if value is not None:
        ax.axvline(value, color=COLOURS.get(verdict["decision"], "black"), linewidth=2.5, label="suspect")
    boundary = verdict.get("boundary")
    if boundary is not None:
        ax.axvline(boundary, color="black", linestyle="--", linewidth=1.2, label="critical value")
    ax.set_xlabel(verdict.get("quantity") or "value", fontsize=8)
    ax.set_yticks([])
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="upper left", frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return html.escape(str(value))


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f2f2f2}.decision{font-weight:600}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;margin:1em 0}
.warn{background:#fff4e5;border-color:#f0b45b}code{background:#f4f4f4;padding:0 3px}
"""


def render_html(report: dict[str, Any]) -> str:
    """The human report: summary, verdict table, one card with a plot per verdict, errors, manifest."""
    gen = report.get("generator", {})
    parts = [
        f"<h1>trainprove audit — generator <code>{_fmt(gen.get('use'))}</code></h1>",
        "<p>TrainProVe asks whether each suspect classifier was trained on images from this generator: the "
        "suspect's accuracy on fresh images from the generator is compared with a shadow model trained on "
        "the generator's own images. A suspect far below the shadow was not trained on it.</p>",
        _table(
            ["task", "shadow set", "validation set", "shadow accuracy", "wall time"],
            [
                [
                    f"{len(report['task']['classes'])} classes, {report['task']['image_size']}px",
                    f"{report['shadow']['images']} images",
                    f"{report['validation']['images']} images in {report['validation']['batches']} batches",
                    _fmt(report["shadow"]["validation_accuracy"]),
                    f"{report.get('wall_seconds', 0):.1f} s",
                ]
            ],
        ),
    ]
    for warning in report.get("warnings", []):
        parts.append(f"<div class='card warn'>{html.escape(warning)}</div>")
    rows = []
    for v in report["verdicts"]:
        colour = COLOURS.get(v["decision"], "black")
        truth = v.get("truth")
        mark = "" if v.get("correct") is None else (" ✓" if v["correct"] else " ✗")
        rows.append(
            [
                html.escape(v["suspect"]),
                html.escape(v["test"]),
                f"<span class='decision' style='color:{colour}'>{html.escape(v['decision'])}</span>",
                _fmt(v.get("statistic"), 2),
                _fmt(v.get("threshold"), 2),
                _fmt(v.get("p_value"), 4),
                _fmt(v.get("suspect_value")),
                (html.escape(truth) + mark) if truth else "—",
            ]
        )
    parts.append("<h2>Verdicts</h2>")
    parts.append(
        _table(["suspect", "test", "decision", "statistic", "critical", "p", "suspect value", "truth"], rows)
    )
    controls = (
        (
            report.get("negative_control"),
            "Negative control",
            "A model trained like the shadow, but on images from <code>{}</code>: it must come out "
            "<code>not-trained-on-generator</code>; where a test accuses it, that test's accusations here "
            "are reported inconclusive.",
            "source",
        ),
        (
            report.get("positive_control"),
            "Positive control",
            "A model trained on the generator's own images by <code>{}</code>, with a recipe unlike the "
            "shadow's: it must come out <code>trained-on-generator</code>; where a test clears it, that "
            "test's clearings here are reported inconclusive.",
            "trainer",
        ),
    )
    for control, title, text, key in controls:
        if not control:
            continue
        parts.append(f"<h2>{title}</h2><p>{text.format(html.escape(str(control[key])))}</p>")
        parts.append(
            _table(
                ["test", "decision", "statistic", "critical"],
                [
                    [
                        html.escape(v["test"]),
                        html.escape(v["decision"]),
                        _fmt(v.get("statistic"), 2),
                        _fmt(v.get("threshold"), 2),
                    ]
                    for v in control["verdicts"]
                ],
            )
        )
    if report.get("errors"):
        parts.append("<h2>Errors</h2>")
        parts.extend(f"<div class='card warn'>{html.escape(e)}</div>" for e in report["errors"])
    parts.append("<h2>Details</h2>")
    for v in report["verdicts"]:
        plot = verdict_plot(v)
        img = f"<img alt='plot' src='data:image/png;base64,{plot}'>" if plot else ""
        parts.append(
            f"<div class='card'><b>{html.escape(v['suspect'])}</b> · {html.escape(v['test'])} "
            f"({html.escape(v.get('distribution') or '')} {html.escape(v.get('version') or '')})"
            f"<p>{html.escape(v['explanation'])}</p>{img}</div>"
        )
    manifest = json.dumps(report.get("manifest", {}), indent=2, default=str)
    parts.append(f"<h2>Manifest</h2><pre>{html.escape(manifest)}</pre>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>trainprove report</title>"
        f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>"
    )
