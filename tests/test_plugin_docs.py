"""docs/plugins/ holds a page per built-in plugin distribution, generated from the options the plugins
declare (`python -m trainprove_core.docgen docs/plugins`); these tests fail when a page is missing or
stale, and say how to refresh."""

from __future__ import annotations

import sys

import pytest
from fake_dists import RICH_OPTIONS, write_distribution

from trainprove_core import docgen

DOCS = docgen.ROOT / "docs" / "plugins"


def test_every_builtin_distribution_has_a_current_page():
    try:
        pages = docgen.render_pages()
    except SystemExit as exc:  # a plugin under plugins/ that is not installed (yet)
        pytest.fail(f"cannot generate docs/plugins/: {exc}")
    assert {"trainprove.md", "trainprove-timm.md", "index.md"} <= set(pages)
    assert set(pages) == {f"{d}.md" for d in docgen.builtin_distributions()} | {"index.md"}
    problems = docgen.compare(pages, DOCS)
    assert not problems, (
        "docs/plugins/ does not match what the plugins declare: "
        + "; ".join(problems)
        + f". Refresh it with: .venv/bin/{docgen.REFRESH}"
    )


def test_the_index_links_every_page():
    index = (DOCS / "index.md").read_text()
    for dist in docgen.builtin_distributions():
        assert f"]({dist}.md)" in index


def test_check_mode_names_a_stale_or_missing_page_and_the_refresh_command(tmp_path, capsys):
    some = ["--distribution", "trainprove", "--distribution", "trainprove-timm"]
    assert docgen.main([str(tmp_path), *some]) == 0
    assert docgen.main([str(tmp_path), *some, "--check"]) == 0
    page = tmp_path / "trainprove-timm.md"
    page.write_text(page.read_text().replace("| `epochs` |", "| `epoch` |"))
    (tmp_path / "trainprove.md").unlink()
    capsys.readouterr()
    assert docgen.main([str(tmp_path), *some, "--check"]) == 1
    err = capsys.readouterr().err
    assert "trainprove-timm.md is stale" in err and "trainprove.md is missing" in err
    refresh = f"python -m trainprove_core.docgen {tmp_path.as_posix()} {' '.join(some)}"
    assert f"refresh with: {refresh}" in err


def test_a_third_party_distribution_gets_a_page_of_its_keys(tmp_path, monkeypatch):
    write_distribution(tmp_path / "site", "tpx-rich", "tpx_rich", RICH_OPTIONS)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        assert docgen.main([str(tmp_path / "out"), "--distribution", "tpx-rich"]) == 0
    finally:
        sys.modules.pop("tpx_rich", None)
    page = (tmp_path / "out" / "tpx-rich.md").read_text()
    assert "## Suspect adapters" in page and '[[suspect]]\nname = "my-suspect"\nuse = "rich"' in page
    assert "| `endpoint` | str | **required** | where the model answers. |" in page
    assert '| `mode` | str | `"fast"` | how to ask. One of `"fast"`, `"careful"`. |' in page
    assert "| `token_env` | str | none | **Secret**:" in page
    assert "| `extra` | table | `{ a = 1 }` |" in page
    assert '`[task] classes` must be exactly `"zero"`, `"one"`, in this order' in page
    assert "| `share` | float | `0.5` | a bounded number. From 0.0 to 1.0. |" in page
    assert "[tpx-rich.md](tpx-rich.md)" in (tmp_path / "out" / "index.md").read_text()
