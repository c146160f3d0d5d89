"""Every Markdown table of README.md and docs/ renders as a table (GitHub Flavored Markdown's rules): a
header row, a separator row of as many cells, and rows of as many cells, with no paragraph between the
header and its rows and no text line glued under the last row (GFM would swallow it as a row)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
SEPARATOR_CELL = re.compile(r"^\s*:?-+:?\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def cells(line: str) -> list[str]:
    """The cells of a table line: split at pipes that are not escaped (GFM splits inside code spans too),
    without the optional outer pipes."""
    text = line.strip()
    text = text[1:] if text.startswith("|") else text
    text = text[:-1] if text.endswith("|") and not text.endswith("\\|") else text
    return re.split(r"(?<!\\)\|", text)


def is_separator(line: str) -> bool:
    return "|" in line and all(SEPARATOR_CELL.match(c) for c in cells(line))


def table_faults(text: str) -> list[str]:
    """What is wrong with the tables of one Markdown text, one sentence per fault, with its line."""
    lines, faults, fenced = text.splitlines(), [], False
    rows: list[tuple[int, str]] = []  # the current run of lines that start with a pipe

    def close(run: list[tuple[int, str]], after: str | None) -> None:
        if not run:
            return
        start, header = run[0]
        if len(run) < 2 or not is_separator(run[1][1]):
            faults.append(f"line {start}: table rows without a header and separator row above them")
            return
        width = len(cells(header))
        for number, line in run[1:]:
            if len(cells(line)) != width:
                faults.append(f"line {number}: {len(cells(line))} cells, the header has {width}")
        if len(run) == 2:
            faults.append(f"line {start}: a table header with no rows under it")
        if after is not None:
            faults.append(f"line {run[-1][0] + 1}: text right under a table is read as one of its rows")

    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            close(rows, None)
            rows, fenced = [], not fenced
            continue
        if fenced:
            continue
        if line.lstrip().startswith("|"):
            rows.append((number, line))
            continue
        close(rows, line if line.strip() and rows else None)
        rows = []
    close(rows, None)
    return faults


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_table_renders(document):
    faults = table_faults(document.read_text(encoding="utf-8"))
    assert not faults, f"{document.relative_to(ROOT)}: " + "; ".join(faults)


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        ("| a | b |\n|---|---|\n| 1 | 2 |\n", None),
        ("| a | b |\n|:--|--:|\n| `x \\| y` | 2 |\n\ntext\n", None),
        ("```\n| not | a table\n```\n", None),
        ("| a | b |\n|---|---|\nA paragraph.\n\n| 1 | 2 |\n", "a table header with no rows under it"),
        ("| a | b |\n|---|---|\nA paragraph.\n\n| 1 | 2 |\n", "line 5: table rows without a header"),
        ("| a | b |\n|---|---|---|\n| 1 | 2 |\n", "line 2: 3 cells, the header has 2"),
        ("| a | b |\n|---|---|\n| 1 | 2 | 3 |\n", "line 3: 3 cells"),
        ("| a | b |\n|---|---|\n| `x | y` | 2 |\n", "line 3: 3 cells"),
        ("| a | b |\n|---|---|\n| 1 | 2 |\nglued\n", "line 4: text right under a table"),
    ],
)
def test_the_checker_finds_broken_tables(text, fault):
    faults = table_faults(text)
    if fault is None:
        assert faults == []
    else:
        assert any(fault in f for f in faults), faults
