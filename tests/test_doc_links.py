"""Every relative link in README.md and docs/ points at a file or folder that exists (anchors are not
checked): a reader who follows a link from the docs lands somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# [text](target) and [text](target "title"), skipping images' own syntax only in that the target is checked
# the same way; reference-style definitions `[id]: target` too.
INLINE = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE = re.compile(r"`[^`\n]*`")


def _documents() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "egg-info" not in p.parts)
    return [ROOT / "README.md", *docs]


def _relative_links(text: str) -> list[str]:
    text = CODE.sub("", FENCE.sub("", text))  # links in code are examples, not links
    targets = INLINE.findall(text) + REFERENCE.findall(text)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:|^#|^//", t, re.I)]


def _broken(document: Path) -> list[str]:
    broken = []
    for target in _relative_links(document.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not path:
            continue
        resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (document.parent / path)
        if not resolved.exists():
            broken.append(target)
    return broken


@pytest.mark.parametrize("document", _documents(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(document):
    assert not _broken(document), f"{document.relative_to(ROOT)} links to missing files: {_broken(document)}"


def test_the_link_finder_finds_links(tmp_path):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("")
    page.write_text(
        "[ok](there.md) [ok too](there.md#a-section) [web](https://example.org) [anchor](#here)\n"
        "[gone](missing.md) `[code](not-a-link.md)`\n```\n[fenced](also-not.md)\n```\n[ref]: gone-too.md\n"
    )
    assert _broken(page) == ["missing.md", "gone-too.md"]
