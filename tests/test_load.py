from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from index.load import LoadResult, load_sources
from index.types import Article, Problem
from tests.conftest import shared_data


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_bytes(content.encode("utf-8"))
    return path


def jsonl(path: Path, *records: Any) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def by_id(result: LoadResult) -> dict[str, Article]:
    return {a.id: a for a in result.articles}


def only_problem(result: LoadResult) -> Problem:
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


# --- JSON Lines -------------------------------------------------------------------


def test_jsonl_field_mapping(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "news.jsonl",
        {
            "id": 7,
            "headline": "  Bridge closes  ",
            "body": "Line one.\r\nLine two.\n",
            "link": "https://example.org/a",
            "pubDate": "Sat, 02 Mar 2024 10:00:00 +0000",
            "authors": ["Ann Lee", "Bo Chen"],
            "outlet": "Coast Times",
            "genre": "news",
            "words": 4,
            "score": 0.5,
            "featured": True,
            "tags": ["a", "b"],
            "extra": None,
        },
    )
    result = load_sources([path])
    assert result.problems == []
    assert result.files == [path.as_posix()]
    (article,) = result.articles
    assert article.id == "7"
    assert article.title == "Bridge closes"
    assert article.text == "Line one.\nLine two.\n"
    assert article.url == "https://example.org/a"
    assert article.date == "2024-03-02T10:00:00+00:00"
    assert article.author == "Ann Lee, Bo Chen"
    assert article.source == "Coast Times"
    assert dict(article.metadata) == {
        "genre": "news",
        "words": 4,
        "score": 0.5,
        "featured": True,
        "tags": '["a", "b"]',
    }
    assert article.origin == f"{path.as_posix()}:1"


def test_ndjson_and_blank_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.ndjson",
        '\n{"id": "a", "text": "Alpha."}\n\n   \n{"id": "b", "text": "Beta."}\n',
    )
    result = load_sources([path])
    assert result.problems == []
    assert [a.id for a in result.articles] == ["a", "b"]
    assert result.articles[1].origin.endswith("a.ndjson:5")


def test_malformed_line_is_reported_and_the_rest_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.jsonl",
        '{"id": "a", "text": "Alpha."}\n{"id": "b", "text": \n{"id": "c", "text": "Gamma."}\n',
    )
    result = load_sources([path])
    assert [a.id for a in result.articles] == ["a", "c"]
    problem = only_problem(result)
    assert problem.where == f"{path.as_posix()}:2"
    assert problem.message.startswith("line 2: invalid JSON (")
    assert "feed.jsonl:2" in str(problem)


def test_non_object_line(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '["not", "an", "object"]\n{"text": "Fine."}\n')
    result = load_sources([path])
    assert len(result.articles) == 1
    problem = only_problem(result)
    assert problem.where.endswith("a.jsonl:1")
    assert "expected a JSON object, got an array" in problem.message


def test_line_separator_inside_text_does_not_split_records(tmp_path: Path) -> None:
    text = "First\u2028second\u2029third"
    path = write(
        tmp_path / "a.jsonl", json.dumps({"id": "a", "text": text}, ensure_ascii=False) + "\n"
    )
    result = load_sources([path])
    assert result.problems == []
    assert result.articles[0].text == text


# --- JSON -------------------------------------------------------------------------


def test_json_array_and_wrapped_list(tmp_path: Path) -> None:
    write(tmp_path / "a.json", json.dumps([{"id": "a", "text": "Alpha."}]))
    write(tmp_path / "b.json", json.dumps({"data": [{"id": "b", "content": "Beta."}]}))
    write(tmp_path / "c.json", json.dumps({"items": [{"id": "c", "text": "Gamma."}]}))
    write(tmp_path / "d.json", json.dumps({"articles": [{"id": "d", "text": "Delta."}]}))
    result = load_sources([tmp_path])
    assert result.problems == []
    assert [a.id for a in result.articles] == ["a", "b", "c", "d"]
    assert result.articles[0].origin == f"{(tmp_path / 'a.json').as_posix()}:[0]"


def test_json_items_report_their_index(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", json.dumps([{"text": "Fine."}, "junk", {"title": "No text"}]))
    result = load_sources([path])
    assert len(result.articles) == 1
    wheres = [p.where for p in result.problems]
    assert wheres == [f"{path.as_posix()}:[1]", f"{path.as_posix()}:[2]"]


def test_json_invalid_and_wrong_shape(tmp_path: Path) -> None:
    write(tmp_path / "bad.json", '[{"text": "x"},')
    write(tmp_path / "shape.json", '{"results": []}')
    result = load_sources([tmp_path])
    assert result.articles == []
    messages = {Path(p.where).name: p.message for p in result.problems}
    assert messages["bad.json"].startswith("invalid JSON (line 1")
    assert "'articles', 'data' or 'items'" in messages["shape.json"]


MULTIHOP: list[dict[str, Any]] = [
    {
        "title": "200+ of the best deals from Amazon's Cyber Monday sale",
        "author": "Chris Velazco",
        "source": "Mashable",
        "published_at": "2023-11-27T08:45:59+00:00",
        "category": "entertainment",
        "url": "https://mashable.com/article/cyber-monday-deals-amazon-2023",
        "body": "Cyber Monday is officially here, and so are the deals.\n\nAmazon has many.",
    },
    {
        "title": "ASX set to open higher",
        "author": None,
        "source": "The Sydney Morning Herald",
        "published_at": "2023-11-27T22:14:45+00:00",
        "category": "business",
        "url": "https://www.smh.com.au/business/markets/asx-set-to-open-higher",
        "body": "Australian shares are set to open higher.",
    },
]


def test_multihop_corpus_shape(tmp_path: Path) -> None:
    path = write(tmp_path / "corpus.json", json.dumps(MULTIHOP))
    result = load_sources([path])
    assert result.problems == []
    first, second = result.articles
    url_hash = hashlib.sha256(MULTIHOP[0]["url"].encode()).hexdigest()[:16]
    assert first.id == f"url-{url_hash}"
    assert first.title == MULTIHOP[0]["title"]
    assert first.text == MULTIHOP[0]["body"]
    assert first.author == "Chris Velazco"
    assert first.source == "Mashable"
    assert first.date == "2023-11-27T08:45:59+00:00"
    assert dict(first.metadata) == {"category": "entertainment"}
    assert second.author == ""
    assert second.origin.endswith("corpus.json:[1]")


# --- CSV / TSV --------------------------------------------------------------------


def test_csv_rows_and_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "a.csv",
        "\ufeffid,title,text,date,section,\n"
        'a,First,"Alpha, with a comma.",2024-03-02,world,\n'
        'b,Second,"Two\nlines.",,,\n'
        "c,Third,Gamma.,2 March 2024,sport,\n",
    )
    result = load_sources([path])
    assert result.problems == []
    a, b, c = result.articles
    assert (a.id, a.title, a.text, a.date) == ("a", "First", "Alpha, with a comma.", "2024-03-02")
    assert dict(a.metadata) == {"section": "world"}
    assert b.text == "Two\nlines." and b.date is None and dict(b.metadata) == {}
    assert a.origin == f"{path.as_posix()}:2"
    assert b.origin == f"{path.as_posix()}:3"
    assert c.origin == f"{path.as_posix()}:5"  # the quoted newline took a line
    assert c.date == "2024-03-02"


def test_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "a.tsv", "id\tbody\tpublisher\nx\tSome text.\tWire\n")
    (article,) = load_sources([path]).articles
    assert (article.id, article.text, article.source) == ("x", "Some text.", "Wire")


def test_csv_problems(tmp_path: Path) -> None:
    write(tmp_path / "empty.csv", "")
    write(tmp_path / "notext.csv", "id,title\na,Alpha\n")
    write(tmp_path / "wide.csv", "id,text\na,Alpha.,surplus\nb,Beta.\n")
    result = load_sources([tmp_path])
    assert [a.id for a in result.articles] == ["b"]
    problems = {Path(p.where).name: p for p in result.problems}
    assert "header row is required" in problems["empty.csv"].message
    assert problems["notext.csv:1"].field == "text"
    assert "3 fields" in problems["wide.csv:2"].message


# --- text and Markdown ------------------------------------------------------------


def test_txt_title_from_first_short_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "story.txt", "\nCouncil backs bridge\n\n\nThe council voted.\n\nMore.\n"
    )
    (article,) = load_sources([path]).articles
    assert article.title == "Council backs bridge"
    assert article.text == "The council voted.\n\nMore.\n"
    assert article.id == "story"
    assert article.origin == path.as_posix()


def test_txt_without_title_line_uses_stem(tmp_path: Path) -> None:
    long_line = "word " * 60
    write(tmp_path / "a.txt", "No blank line after this\nso it is body.\n")
    write(tmp_path / "b.txt", f"{long_line}\n\nBody.\n")
    articles = by_id(load_sources([tmp_path]))
    assert articles["a"].title == "a"
    assert articles["a"].text == "No blank line after this\nso it is body.\n"
    assert articles["b"].title == "b"
    assert articles["b"].text.startswith(long_line)


def test_markdown_heading_and_front_matter(tmp_path: Path) -> None:
    write(tmp_path / "docs/plain.md", "# Harbour news\n\nThe harbour reopened.\n")
    write(
        tmp_path / "docs/sub/fm.markdown",
        "---\n"
        "id: custom-id\n"
        "title: From front matter\n"
        "date: 2024-03-02\n"
        "url: https://example.org/fm\n"
        "source: Coast Times\n"
        "author: Ann Lee\n"
        "tags: [x, y]\n"
        "---\n"
        "\n"
        "Body text.\n",
    )
    write(tmp_path / "docs/sub/nohead.md", "Just text, *no* heading.\n")
    result = load_sources([tmp_path / "docs"])
    assert result.problems == []
    articles = by_id(result)
    assert set(articles) == {"plain", "custom-id", "sub/nohead"}
    plain = articles["plain"]
    assert (plain.title, plain.text) == ("Harbour news", "The harbour reopened.\n")
    fm = articles["custom-id"]
    assert fm.title == "From front matter"
    assert fm.text == "Body text.\n"
    assert fm.date == "2024-03-02"
    assert (fm.url, fm.source, fm.author) == ("https://example.org/fm", "Coast Times", "Ann Lee")
    assert dict(fm.metadata) == {"tags": '["x", "y"]'}
    assert articles["sub/nohead"].title == "nohead"


def test_markdown_bad_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path / "a.md", "---\ntitle: [unclosed\n---\nBody.\n")
    result = load_sources([path])
    assert result.articles == []
    assert "invalid front matter" in only_problem(result).message


def test_seed_file_loads_with_its_headline() -> None:
    seed = shared_data("seed")
    result = load_sources([seed])
    assert result.problems == []
    assert result.articles
    for article in result.articles:
        first_line = (seed / f"{article.id}.txt").read_text(encoding="utf-8").split("\n")[0]
        assert article.title == first_line.strip()
        assert not article.text.startswith(("\n", article.title))
    titles = [a.title for a in result.articles]
    assert any(t.startswith("NATO Warns of Imminent Russian Offensive") for t in titles)


# --- HTML -------------------------------------------------------------------------

HTML = """<!DOCTYPE html>
<html><head>
<title>Council approves new bridge</title>
<meta name="author" content="Jane Doe">
<meta property="article:published_time" content="2024-03-02T10:00:00+01:00">
<script>var tracking = "SCRIPTJUNK"; function track() {}</script>
<style>body { color: red }</style>
</head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/world">World NAVJUNK</a></li></ul></nav>
<header><div class="menu">Subscribe now MENUJUNK</div></header>
<article>
<h1>Council approves new bridge</h1>
<p>The city council voted on Tuesday to approve the construction of a new bridge across
the river, ending a debate that had lasted more than a decade.</p>
<p>Supporters said the bridge would cut commuting times for thousands of residents, while
opponents worried about the cost, estimated at 40 million euros.</p>
<p>Construction is expected to begin next spring and to take three years.</p>
</article>
<footer>Copyright 2019 FOOTERJUNK. All rights reserved.</footer>
<script>console.log("SCRIPTJUNK2")</script>
</body></html>
"""


def test_html_main_text_only(tmp_path: Path) -> None:
    path = write(tmp_path / "page.html", HTML)
    result = load_sources([path])
    assert result.problems == []
    (article,) = result.articles
    assert article.title == "Council approves new bridge"
    assert article.id == "page"
    assert article.text.startswith("The city council voted on Tuesday")
    assert "three years" in article.text
    for junk in ("SCRIPTJUNK", "NAVJUNK", "MENUJUNK", "FOOTERJUNK", "<", "color: red"):
        assert junk not in article.text
    assert article.author == "Jane Doe"
    assert article.date == "2024-03-02"


def test_html_without_main_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "empty.htm", "<html><head><title>Nothing</title></head><body></body></html>"
    )
    result = load_sources([path])
    assert result.articles == []
    problem = only_problem(result)
    assert problem.field == "text"
    assert "no main text" in problem.message


# --- bad input --------------------------------------------------------------------


def test_non_utf8_file(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.txt", "Caf\u00e9 news\n\nBody.\n".encode("latin-1"))
    write(tmp_path / "ok.txt", "Fine\n\nBody.\n")
    result = load_sources([tmp_path])
    assert [a.id for a in result.articles] == ["ok"]
    problem = only_problem(result)
    assert problem.where == path.as_posix()
    assert "not valid UTF-8 (byte offset 3)" in problem.message


def test_bom_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", b"\xef\xbb\xbf" + b'{"id": "a", "text": "Caf\xc3\xa9."}\n')
    result = load_sources([path])
    assert result.problems == []
    assert result.articles[0].text == "Caf\u00e9."


def test_nul_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", b"Title\n\nBody\x00more.\n")
    result = load_sources([path])
    assert result.articles == []
    assert "NUL byte (byte offset 11)" in only_problem(result).message


@pytest.mark.parametrize(
    ("record", "field", "words"),
    [
        ({"id": "a", "text": ""}, "text", "missing or empty text"),
        ({"id": "a", "text": "   \n "}, "text", "missing or empty text"),
        ({"id": "a", "title": "No body"}, "text", "missing or empty text"),
        ({"id": "a", "text": ["not", "a", "string"]}, "text", "not a string"),
        ({"id": ["x"], "text": "Alpha."}, "id", "not a string or integer"),
    ],
)
def test_records_that_are_skipped(
    tmp_path: Path, record: dict[str, Any], field: str, words: str
) -> None:
    path = jsonl(tmp_path / "a.jsonl", record, {"id": "ok", "text": "Fine."})
    result = load_sources([path])
    assert [a.id for a in result.articles] == ["ok"]
    problem = only_problem(result)
    assert problem.where == f"{path.as_posix()}:1"
    assert problem.field == field
    assert words in problem.message


def test_bad_date_keeps_the_article(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "a.jsonl", {"id": "a", "text": "Alpha.", "date": "sometime soon"})
    result = load_sources([path])
    (article,) = result.articles
    assert article.date is None
    problem = only_problem(result)
    assert problem.field == "date"
    assert "'sometime soon'" in problem.message
    assert "kept without a date" in problem.message


def test_duplicate_ids(tmp_path: Path) -> None:
    first = jsonl(tmp_path / "a.jsonl", {"id": "x", "text": "Original."}, {"id": "y", "text": "Y."})
    jsonl(tmp_path / "b.jsonl", {"id": "y", "text": "Y."}, {"id": "x", "text": "Changed."})
    result = load_sources([tmp_path])
    assert [(a.id, a.text) for a in result.articles] == [("x", "Original."), ("y", "Y.")]
    problem = only_problem(result)  # the identical "y" is dropped silently
    assert problem.where == f"{(tmp_path / 'b.jsonl').as_posix()}:2"
    assert problem.message == (
        f"duplicate id 'x' with different text; first seen at {first.as_posix()}:1, kept that one"
    )


def test_stable_ids_without_an_id(tmp_path: Path) -> None:
    path = jsonl(
        tmp_path / "a.jsonl",
        {"id": "  ", "text": "No id here.", "url": " https://example.org/u "},
        {"text": "No id or url."},
    )
    result = load_sources([path])
    with_url, bare = result.articles
    assert with_url.id == "url-" + hashlib.sha256(b"https://example.org/u").hexdigest()[:16]
    assert bare.id == "sha-" + hashlib.sha256(b"No id or url.").hexdigest()[:16]
    assert [a.id for a in load_sources([path]).articles] == [with_url.id, bare.id]


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    result = load_sources([missing])
    assert result.articles == [] and result.files == []
    problem = only_problem(result)
    assert problem.where == missing.as_posix()
    assert "no such file" in problem.message


def test_unsupported_extension(tmp_path: Path) -> None:
    named = write(tmp_path / "notes.docx", "whatever")
    write(tmp_path / "dir/readme.rst", "skipped silently")
    write(tmp_path / "dir/a.txt", "Kept\n\nBody.\n")
    result = load_sources([named, tmp_path / "dir"])
    assert [a.id for a in result.articles] == ["a"]
    problem = only_problem(result)
    assert problem.where == named.as_posix()
    assert "unsupported file type .docx" in problem.message


def test_directory_walk_is_sorted_and_skips_hidden(tmp_path: Path) -> None:
    write(tmp_path / "b.txt", "B\n\nBody b.\n")
    write(tmp_path / "a/z.txt", "Z\n\nBody z.\n")
    write(tmp_path / "a/c.md", "# C\n\nBody c.\n")
    write(tmp_path / ".hidden.txt", "H\n\nHidden.\n")
    write(tmp_path / ".git/x.txt", "G\n\nHidden.\n")
    result = load_sources([tmp_path])
    assert result.problems == []
    assert [a.id for a in result.articles] == ["a/c", "a/z", "b"]
    assert result.files == [(tmp_path / p).as_posix() for p in ("a/c.md", "a/z.txt", "b.txt")]


def test_same_file_named_twice_is_read_once(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "a.jsonl", {"id": "a", "text": "Alpha."})
    result = load_sources([path, tmp_path, str(path)])
    assert result.files == [path.as_posix()]
    assert len(result.articles) == 1 and result.problems == []


# --- the shared datasets ----------------------------------------------------------


def shared_file(relative: str) -> Path:
    return shared_data(relative)


def test_news_sample_loads_with_dates() -> None:
    result = load_sources([shared_file("news-sample/articles.jsonl")])
    assert result.problems == []
    assert len(result.articles) == 43
    assert all(a.date and len(a.date) == 10 for a in result.articles)
    assert all(a.title and a.url and a.source for a in result.articles)


def test_squad_subset_loads() -> None:
    path = shared_file("squad-dev-subset/articles.jsonl")
    result = load_sources([path])
    assert result.problems == []
    assert len(result.articles) == 48
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]
    assert [a.text for a in result.articles] == [r["text"] for r in raw]  # offsets intact
    offsets = json.loads(str(result.articles[0].metadata["paragraph_offsets"]))
    start, end = offsets[0]
    assert result.articles[0].text[start:end] == raw[0]["text"][start:end]


# --- the record model and the readers by suffix ----------------------------------


def test_bad_optional_fields_are_each_reported_and_the_article_kept(tmp_path: Path) -> None:
    record = {
        "text": "",
        "body": "The first alias with a value wins.",
        "title": ["not", "a", "title"],
        "url": {"href": "x"},
        "date": "sometime soon",
        "source": True,
        "author": {"name": "Ann"},
    }
    path = jsonl(tmp_path / "a.jsonl", record)
    result = load_sources([path])
    (article,) = result.articles
    assert article.text == "The first alias with a value wins."
    assert (article.title, article.url, article.date, article.source, article.author) == (
        "",
        "",
        None,
        "",
        "",
    )
    assert [(p.field, p.kept) for p in result.problems] == [
        ("url", True),
        ("title", True),
        ("date", True),
        ("source", True),
        ("author", True),
    ]
    assert result.problems[0].message == "url is an object, not a string; kept without it"
    assert all(p.where == f"{path.as_posix()}:1" for p in result.problems)


def test_a_skipped_record_reports_only_why_it_was_skipped(tmp_path: Path) -> None:
    path = jsonl(tmp_path / "a.jsonl", {"id": 1.5, "text": 3, "title": []})
    problem = only_problem(load_sources([path]))
    assert (problem.field, problem.message) == (
        "text",
        "text is the number 3, not a string; skipped",
    )


def test_every_supported_suffix_has_one_reader() -> None:
    from index.formats import READERS

    assert sorted(READERS) == [
        ".csv",
        ".htm",
        ".html",
        ".json",
        ".jsonl",
        ".markdown",
        ".md",
        ".ndjson",
        ".tsv",
        ".txt",
    ]


def test_deeply_nested_json_is_a_problem(tmp_path: Path) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    write(tmp_path / "a.json", deep)
    write(tmp_path / "b.jsonl", deep + '\n{"id": "b", "text": "Fine."}\n')
    result = load_sources([tmp_path])
    assert [a.id for a in result.articles] == ["b"]
    assert [(Path(p.where).name, p.message) for p in result.problems] == [
        ("a.json", "JSON nested too deeply"),
        ("b.jsonl:1", "line 1: JSON nested too deeply"),
    ]


def test_a_lone_surrogate_escape_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    r"""JSON may escape half a UTF-16 pair ("\ud800"): decoded, that is not Unicode text,
    and hashing or storing it as UTF-8 would fail. The field, or the record, goes."""
    path = tmp_path / "a.jsonl"
    path.write_text(
        '{"id": "a", "text": "bad \\ud800 text"}\n'
        '{"id": "b", "title": "t \\udc00", "text": "fine", "extra": "x \\ud800"}\n'
        '{"id": "c \\ud800", "text": "fine"}\n'
        '{"id": "d", "text": "a pair \\ud83d\\ude00 is fine"}\n'
    )
    result = load_sources([path])
    assert [(a.id, a.title, a.metadata) for a in result.articles] == [
        ("b", "", {}),
        ("d", "", {}),
    ]
    assert result.articles[1].text == "a pair \U0001f600 is fine"
    found = [(p.where, p.field, p.kept, "unpaired surrogate" in p.message) for p in result.problems]
    assert found == [
        (f"{path}:1", "text", False, True),
        (f"{path}:2", "title", True, True),
        (f"{path}:3", "id", False, True),
    ]
