"""The docs hold together: every relative link in README.md and docs/*.md points to a file that exists, every
``#anchor`` to a heading of its target (GitHub's anchors), each doc starts with a title, and the README stays short."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = sorted((REPO / "docs").glob("*.md"))
PAGES = [REPO / "README.md", *DOCS]
README_MAX_LINES = 330

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")


def _prose(path: Path) -> list[tuple[int, str]]:
    """The file's lines outside fenced code blocks, numbered from 1."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its text lowercased, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = CODE_SPAN.sub(lambda m: m.group(2), heading)
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor GitHub makes for the headings of a Markdown file (a repeated one gets -1, -2, ...)."""
    made, counts = set(), {}
    for _, line in _prose(path):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = counts.get(base, 0)
            counts[base] = count + 1
            made.add(f"{base}-{count}" if count else base)
    return made


def links(path: Path) -> list[tuple[int, str]]:
    """(line, target) of every inline link and image in the file's prose, code spans left out."""
    found = []
    for number, line in _prose(path):
        for match in LINK.finditer(CODE_SPAN.sub("", line)):
            found.append((number, match.group(1)))
    return found


def test_slug_follows_github():
    assert slug("Write modes: replace, append and merge") == "write-modes-replace-append-and-merge"
    assert slug("Files from other writers (the parquet-testing corpus)") == \
        "files-from-other-writers-the-parquet-testing-corpus"
    assert slug("`status`") == "status"
    assert slug("Parquet → PostgreSQL, exactly once") == "parquet--postgresql-exactly-once"
    assert slug("snake_case and [a link](x.md)") == "snake_case-and-a-link"


def test_there_are_docs():
    assert DOCS, "docs/*.md is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_and_anchor_resolves(page):
    broken = []
    for number, target in links(page):
        if not target or SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        destination = (page.parent / unquote(path)).resolve() if path else page
        where = f"{page.relative_to(REPO)}:{number}: {target}"
        if not destination.exists():
            broken.append(f"{where} - no such file")
        elif anchor and destination.suffix == ".md" and unquote(anchor) not in anchors(destination):
            broken.append(f"{where} - no heading '#{anchor}' in {destination.relative_to(REPO)}")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_each_doc_starts_with_a_title_and_a_sentence(page):
    lines = page.read_text().splitlines()
    assert lines[0].startswith("# "), f"{page.name} does not start with a '# ' title"
    assert len(lines) > 2 and not lines[1] and lines[2].strip() and not lines[2].startswith("#"), \
        f"{page.name}: the title is not followed by a sentence on what the doc covers"


def test_the_readme_is_short():
    count = len((REPO / "README.md").read_text().splitlines())
    assert count <= README_MAX_LINES, f"README.md has {count} lines, at most {README_MAX_LINES}: move detail to docs/"
