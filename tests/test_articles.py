"""The per-state article file: an update copies untouched lines and parses only what it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from index.articles import ArticleLines, read_articles, write_articles
from index.manifest import UnusableIndex
from index.types import Article


def article(article_id: str, text: str) -> Article:
    return Article.from_record({"id": article_id, "title": f"About {article_id}", "text": text})


ODD_IDS = ["plain", 'with "quotes" and \\ slash', "ünïcödé", "line\u2028separator", "a:b:c"]


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "old.jsonl"
    write_articles(path, [article(i, f"Text of {i}.\u2028Second line.") for i in ODD_IDS])
    return path


def test_rewrite_copies_untouched_lines_replaces_removes_and_appends(
    tmp_path: Path, old_file: Path
) -> None:
    new = tmp_path / "new.jsonl"
    changed = article(ODD_IDS[1], "A corrected text.")
    ArticleLines(old_file).rewrite(new, [changed, article("fresh", "Brand new.")], {ODD_IDS[2]})
    got = read_articles(new)
    assert list(got) == [ODD_IDS[0], ODD_IDS[3], ODD_IDS[4], ODD_IDS[1], "fresh"]
    assert got[ODD_IDS[1]].text == "A corrected text."
    old_lines = old_file.read_text(encoding="utf-8").split("\n")
    new_lines = new.read_text(encoding="utf-8").split("\n")
    assert new_lines[:3] == [old_lines[0], old_lines[3], old_lines[4]]  # byte for byte


def test_read_parses_only_the_named_articles(old_file: Path) -> None:
    got = ArticleLines(old_file).read({ODD_IDS[1], ODD_IDS[3], "absent"})
    assert sorted(got) == sorted([ODD_IDS[1], ODD_IDS[3]])
    assert got[ODD_IDS[3]] == read_articles(old_file)[ODD_IDS[3]]


def test_a_damaged_line_is_named(old_file: Path) -> None:
    lines = old_file.read_text(encoding="utf-8").split("\n")
    lines[2] = '{"title": "no id first"}'
    old_file.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(UnusableIndex, match=r"old\.jsonl:3: corrupt article record"):
        ArticleLines(old_file)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UnusableIndex, match="missing"):
        ArticleLines(tmp_path / "gone.jsonl")
