"""Chat HTML: untrusted article text stays inert, markers link to their sources."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

from index.types import Article
from rag.types import CANNOT_ANSWER, AlsoReported, Answer, AnswerSentence, Citation, Retrieved
from ui.render import (
    NOT_IN_COLLECTION,
    answer_html,
    citation_card,
    escape,
    highlighted,
    paragraph_bounds,
    related_card,
    safe_url,
    sources_html,
    status_html,
)

VOID = {"br", "img", "hr", "input", "meta", "link", "area", "base", "col", "embed", "wbr"}
MALICIOUS = (
    'Intro <script>alert(1)</script> then <img src=x onerror="alert(1)"> and '
    "[click](javascript:alert(1)) or ![i](http://x/i.png) with $x^2$ and the council's "
    "<b>bold</b> & <i>italic</i> claims."
)


# --- a small DOM, so tests ask what a browser would see ------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str | None]
    text: str = ""
    children: list[Element] = field(default_factory=list)

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()


class Tree(HTMLParser):
    """Every element in document order, each with the (unescaped) text inside it."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#root", {})
        self.elements: list[Element] = []
        self._open: list[Element] = [self.root]
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, dict(attrs))
        self.elements.append(element)
        self._open[-1].children.append(element)
        if tag not in VOID:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        assert tag in [e.tag for e in self._open[1:]], f"stray </{tag}>"
        while self._open.pop().tag != tag:
            pass

    def handle_data(self, data: str) -> None:
        for element in self._open:
            element.text += data

    def tags(self) -> set[str]:
        return {e.tag for e in self.elements}

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        return [e for e in self.elements if e.tag == tag and (cls is None or cls in e.classes)]

    def one(self, tag: str, cls: str | None = None) -> Element:
        found = self.find(tag, cls)
        assert len(found) == 1, f"{len(found)} <{tag} class={cls}> elements"
        return found[0]

    @property
    def text(self) -> str:
        return self.root.text


def descendants(element: Element) -> list[Element]:
    found = []
    for child in element.children:
        found += [child, *descendants(child)]
    return found


def assert_inert(markup: str) -> None:
    """Nothing an article could inject: no script/img/b/i elements, no event handlers."""
    tree = Tree(markup)
    assert not tree.tags() & {"script", "img", "b", "i", "iframe", "style"}, tree.tags()
    for element in tree.elements:
        assert not any(name.startswith("on") for name in element.attrs), element
        href = element.attrs.get("href")
        assert href is None or href.startswith(("#", "http://", "https://")), href


# --- records --------------------------------------------------------------------------


def article(
    article_id: str = "a1",
    text: str = "The harbour bridge will close for six weeks from Monday.",
    *,
    title: str = "Harbour bridge closes",
    url: str = "https://example.org/harbour",
    date: str | None = "2024-03-02",
    source: str = "Coast Times",
    author: str = "",
) -> Article:
    return Article(
        id=article_id,
        title=title,
        text=text,
        url=url,
        date=date,
        source=source,
        author=author,
    )


def cite(n: int, art: Article, quote: str) -> Citation:
    start = art.text.index(quote)
    return Citation.of(n, art, start, start + len(quote), 0.9)


def passage(art: Article, start: int = 0, end: int | None = None, title: str = "") -> Retrieved:
    return Retrieved(
        chunk_id=f"{art.id}:{start}",
        article_id=art.id,
        title=title or art.title,
        date=art.date,
        start=start,
        end=len(art.text) if end is None else end,
        score=0.5,
        dense_score=0.5,
        lexical_score=None,
    )


def make_answer(
    question: str = "What closes?",
    sentences: Sequence[tuple[str, list[int]]] = (),
    citations: Sequence[Citation] = (),
    retrieved: Sequence[Retrieved] = (),
    abstained: bool = False,
) -> Answer:
    flat = " ".join(f"{text} " + "".join(f"[{n}]" for n in cites) for text, cites in sentences)
    return Answer(
        question=question,
        standalone_question=question,
        answer=CANNOT_ANSWER if abstained else flat,
        sentences=[AnswerSentence(text=text, cites=cites) for text, cites in sentences],
        abstained=abstained,
        best_score=0.1 if abstained else 0.8,
        citations=list(citations),
        retrieved=list(retrieved),
        index_version="v1",
        settings_hash="h1",
        timings_ms={"total": 1.0},
    )


def abstention(retrieved: Sequence[Retrieved] = ()) -> Answer:
    return make_answer(question="Boiling point of nitrogen?", retrieved=retrieved, abstained=True)


def where(article_id: str, start: int, end: int) -> str:
    """The text of a card's nd-where line (the markup writes the dash as &ndash;)."""
    return f"article {article_id}, characters {start}\u2013{end}"


def assert_one_markdown_block(markup: str) -> None:
    assert "\n\n" not in markup
    assert all(line.strip() for line in markup.split("\n")), "a blank line ends the block"


# --- escape ---------------------------------------------------------------------------


def test_escape_leaves_no_tags_or_attribute_quotes() -> None:
    for text in ("<script>alert(1)</script>", '<img src=x onerror="alert(1)">', "<a href='x'>"):
        out = escape(text)
        assert not set(out) & set("<>\"'"), out
        assert html.unescape(out) == text
        assert Tree(f"<div>{out}</div>").tags() == {"div"}


def test_escape_defuses_markdown_links_images_and_formulas() -> None:
    out = escape("[x](javascript:alert(1)) ![i](http://x/i.png)")
    assert not set(out) & set("[]()!"), out
    assert "$" not in escape("$x$ and $$y$$")
    for c in "\\`*_{}[]()+-.!|~$":
        assert c not in escape(f"a{c}b"), c
    assert escape("# heading") == "&#35; heading"  # a "#" survives only inside a reference


def test_escape_turns_line_breaks_into_spaces() -> None:
    assert escape("one\ntwo\n\nthree") == "one two  three"
    assert escape("one\r\n\r\ntwo") == "one    two"


def test_escape_shows_apostrophes_and_ampersands_as_themselves() -> None:
    """Escaping must be one pass: a second would mangle the first's references."""
    out = escape("The council's plan & R&D's budget")
    assert html.unescape(out) == "The council's plan & R&D's budget"
    assert Tree(f"<p>{out}</p>").text == "The council's plan & R&D's budget"
    assert "&&" not in out


_REFERENCE = re.compile(r"&(?:#\d+|#x27|amp|lt|gt|quot);")


@given(st.text(alphabet="ab \n\r<>&\"'#;\\`*_{}[]()+-.!|~$é") | st.text())
def test_escape_round_trips_and_leaves_no_syntax(text: str) -> None:
    out = escape(text)
    assert html.unescape(out) == text.replace("\n", " ").replace("\r", " ")
    rest = _REFERENCE.sub("", out)
    assert not set(rest) & set("<>&\"'\n\r\\`*_{}[]()#+-.!|~$"), rest


# --- safe_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.org/a",
        "https://example.org/a?b=1&c=2#top",
        "HTTPS://Example.org/x",
        "HtTp://example.org",
    ],
)
def test_safe_url_accepts_absolute_http_urls(url: str) -> None:
    assert safe_url(url) == url


def test_safe_url_trims_surrounding_whitespace() -> None:
    assert safe_url("  https://example.org/x \n") == "https://example.org/x"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " javascript:alert(1)",
        "java\nscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "file:///etc/passwd",
        "ftp://example.org/x",
        "/relative/path",
        "relative.html",
        "//evil.example/x",
        "http://",
        "https:///path",
        "",
        "   ",
        "https://example.org/a b",
        "https://exa\tmple.org/",
        'https://example.org/"onmouseover="alert(1)',
        "https://example.org/'x'",
        "https://example.org/<script>",
        "https://example.org/`x`",
        "https://[::1/",
    ],
)
def test_safe_url_refuses_everything_else(url: str) -> None:
    assert safe_url(url) is None


# --- answer_html ----------------------------------------------------------------------


def test_answer_links_each_marker_to_its_source_card() -> None:
    art = article()
    other = article("a2", "Ferries will run every ten minutes.", title="Ferries <extra>")
    citations = [cite(1, art, "close for six weeks"), cite(2, other, "every ten minutes")]
    answer = make_answer(
        sentences=[("The bridge will close.", [1]), ("Ferries run instead.", [1, 2])],
        citations=citations,
    )
    out = answer_html(answer, turn=3)
    tree = Tree(out)
    links = tree.find("a", "nd-cite")
    assert [a.attrs["href"] for a in links] == ["#nd-src-3-1", "#nd-src-3-1", "#nd-src-3-2"]
    assert [a.text for a in links] == ["[1]", "[1]", "[2]"]
    assert [a.attrs["title"] for a in links] == [art.title, art.title, "Ferries <extra>"]
    assert tree.one("div", "nd-answer").text == (
        "The bridge will close. [1] Ferries run instead. [1] [2]"
    )
    # each sentence's links follow it, before the next sentence begins
    first, second = out.index(escape("The bridge")), out.index(escape("Ferries run"))
    assert first < out.index('href="#nd-src-3-1"') < second < out.index('href="#nd-src-3-2"')
    assert_inert(out)
    assert_one_markdown_block(out)


def test_marker_title_falls_back_to_the_article_id() -> None:
    art = article(title="")
    answer = make_answer(sentences=[("It closes.", [1])], citations=[cite(1, art, "Monday")])
    assert Tree(answer_html(answer, 0)).one("a", "nd-cite").attrs["title"] == "a1"


def test_bracketed_number_in_a_quote_is_text_not_a_link() -> None:
    art = article(text="The report lists [3] reasons for the closure.")
    quote = "The report lists [3] reasons for the closure."
    answer = make_answer(sentences=[(quote, [1])], citations=[cite(1, art, quote)])
    out = answer_html(answer, turn=0)
    links = Tree(out).find("a")
    assert [a.attrs["href"] for a in links] == ["#nd-src-0-1"]
    assert "#nd-src-0-3" not in out
    assert "&#91;3&#93;" in out
    assert Tree(out).text == f"{quote} [1]"


def test_answer_sentence_with_markup_stays_text() -> None:
    answer = make_answer(sentences=[(MALICIOUS, [1])], citations=[cite(1, article(), "Monday")])
    out = answer_html(answer, 1)
    assert_inert(out)
    assert len(Tree(out).find("a")) == 1
    assert Tree(out).one("div", "nd-answer").text == f"{MALICIOUS} [1]"


def test_abstention_says_so_and_links_nothing() -> None:
    out = answer_html(abstention([passage(article())]), turn=2)
    tree = Tree(out)
    block = tree.one("div", "nd-abstain")
    assert tree.one("strong", "nd-abstain-label").text == NOT_IN_COLLECTION
    assert CANNOT_ANSWER in block.text
    assert not tree.find("a")
    assert "nd-cite" not in out
    assert "related, not cited" in tree.one("span", "nd-hint").text
    assert_one_markdown_block(out)


def test_abstention_without_passages_has_no_hint() -> None:
    tree = Tree(answer_html(abstention(), turn=0))
    assert tree.find("div", "nd-abstain")
    assert not tree.find("span", "nd-hint")
    assert "related" not in tree.text


def test_note_is_escaped_in_the_meta_line() -> None:
    note = 'filters: since 2020 <b>x</b> & source "Coast"\n\nread as: what\'s [new]'
    shown = note.replace("\n", " ")
    answer = make_answer(sentences=[("It closes.", [1])], citations=[cite(1, article(), "Monday")])
    for markup in (answer_html(answer, 0, note), answer_html(abstention(), 0, note)):
        assert Tree(markup).one("span", "nd-meta").text == shown
        assert escape(note) in markup
        assert_inert(markup)
        assert_one_markdown_block(markup)
    assert not Tree(answer_html(answer, 0)).find("span", "nd-meta")


def test_answer_stays_one_markdown_block_whatever_the_text() -> None:
    sentences = [("First line.\n\nSecond paragraph.", [1]), ("Carriage\r\rreturns.", [])]
    answer = make_answer(sentences=sentences, citations=[cite(1, article(), "Monday")])
    out = answer_html(answer, 0, note="a\n\nb")
    assert_one_markdown_block(out)
    assert "\r" not in out
    assert out.startswith("<div") and out.endswith("</div>")


# --- paragraph_bounds / highlighted ---------------------------------------------------


def mark_of(markup: str) -> Element:
    return Tree(markup).one("mark", "nd-span")


def test_highlight_marks_exactly_the_span_inside_its_paragraph() -> None:
    text = "First paragraph.\nThe council's <b>bold</b> plan was approved.\nLast one."
    span = "<b>bold</b>"
    start = text.index(span)
    out = highlighted(text, start, start + len(span))
    assert f'<mark class="nd-span">{escape(span)}</mark>' in out
    assert mark_of(out).text == span
    assert Tree(out).text == "The council's <b>bold</b> plan was approved."
    assert "…" not in out
    assert_inert(out)
    low, high = paragraph_bounds(text, start, start + len(span))
    assert text[low:high] == "The council's <b>bold</b> plan was approved."


def test_span_at_the_very_start_of_the_text() -> None:
    text = "Alpha beta gamma.\nDelta."
    assert paragraph_bounds(text, 0, 5) == (0, 17)
    out = highlighted(text, 0, 5)
    assert out.startswith('<mark class="nd-span">Alpha</mark>')
    assert Tree(out).text == "Alpha beta gamma."


def test_span_at_the_very_end_of_the_text() -> None:
    text = "One.\nTwo three"
    start = text.index("three")
    assert paragraph_bounds(text, start, len(text)) == (5, len(text))
    out = highlighted(text, start, len(text))
    assert out.endswith('<mark class="nd-span">three</mark>')
    assert Tree(out).text == "Two three"


def test_span_covering_the_whole_text() -> None:
    text = "Just this."
    assert paragraph_bounds(text, 0, len(text)) == (0, len(text))
    assert highlighted(text, 0, len(text)) == '<mark class="nd-span">Just this&#46;</mark>'


def test_span_across_a_line_break_keeps_the_break() -> None:
    text = "Intro.\nPara one ends.\nPara two starts.\nOutro."
    start, end = text.index("ends."), text.index(" two")
    out = highlighted(text, start, end)
    assert '<mark class="nd-span">ends&#46;<br>Para</mark>' in out
    assert Tree(out).text == "Para one ends.Para two starts."


def long_paragraph(words: int = 400) -> str:
    return " ".join(f"w{i:03d}" for i in range(words))  # 5 characters a word with its space


def test_long_paragraph_is_clipped_at_spaces_with_ellipses() -> None:
    text = "Short intro.\n" + long_paragraph() + "\nShort outro."
    start = text.index("w200")
    end = start + 4
    low, high = paragraph_bounds(text, start, end)
    assert text[low - 1] == " " and text[high] == " "  # whole words on both sides
    assert 300 < start - low <= 320 and 300 < high - end <= 320
    out = highlighted(text, start, end)
    shown = Tree(out).text
    assert shown.startswith("… w") and shown.endswith("…")
    assert shown[2:-1] == text[low:high]
    assert mark_of(out).text == "w200"
    assert "intro" not in shown and "outro" not in shown


def test_long_paragraph_is_clipped_on_one_side_only_when_needed() -> None:
    text = long_paragraph(200)
    out = highlighted(text, 0, 4)  # nothing before the span, a lot after
    shown = Tree(out).text
    assert shown.startswith("w000") and shown.endswith("…")
    low, high = paragraph_bounds(text, 0, 4)
    assert low == 0 and high < len(text) and text[high] == " "


def test_long_paragraph_without_spaces_is_cut_at_the_limit() -> None:
    text = "x" * 1000
    assert paragraph_bounds(text, 500, 510) == (180, 830)
    shown = Tree(highlighted(text, 500, 510)).text
    assert shown == "… " + "x" * 650 + "…"


def test_clipped_context_never_crosses_a_newline() -> None:
    text = "A" * 50 + "\n" + "word " * 30 + "SPAN" + " word" * 30 + "\n" + "Z" * 50
    start = text.index("SPAN")
    low, high = paragraph_bounds(text, start, start + 4)
    assert "\n" not in text[low:high]
    assert text[low - 1] == "\n" and text[high] == "\n"
    assert "…" not in highlighted(text, start, start + 4)


# --- citation_card --------------------------------------------------------------------


def test_citation_card_is_anchored_and_links_its_title() -> None:
    art = article(url="https://example.org/a?b=1&c=2")
    card = citation_card(cite(4, art, "six weeks"), art, turn=2)
    tree = Tree(card)
    assert tree.one("div", "nd-source").attrs["id"] == "nd-src-2-4"
    assert tree.one("span", "nd-n").text == "[4]"
    link = tree.one("a", "nd-title")
    assert link.attrs["href"] == "https://example.org/a?b=1&c=2"
    assert "&amp;c=2" in card
    assert link.attrs["target"] == "_blank"
    assert "noopener" in (link.attrs["rel"] or "").split()
    assert link.text == art.title
    assert tree.one("div", "nd-byline").text == "Coast Times, 2024-03-02"
    start = art.text.index("six weeks")
    assert tree.one("div", "nd-where").text == where("a1", start, start + 9)
    assert mark_of(card).text == "six weeks"
    assert tree.one("blockquote", "nd-context").text == art.text


def test_citation_card_title_without_a_safe_url_is_plain_text() -> None:
    for url in ("javascript:alert(1)", "data:text/html,x", "", "/local"):
        art = article(url=url)
        card = citation_card(cite(1, art, "Monday"), art, turn=0)
        tree = Tree(card)
        assert not tree.find("a")
        assert "href" not in card
        assert tree.one("span", "nd-title").text == art.title


def test_citation_card_escapes_title_byline_and_quote() -> None:
    art = article(
        text=MALICIOUS,
        title="<script>x</script>",
        source="Coast <Times>",
        author='<i onclick="x">Eve</i>',
        date="2024-03-02",
    )
    card = citation_card(cite(1, art, "<script>alert(1)</script>"), art, turn=0)
    assert "&lt;script&gt;x&lt;/script&gt;" in card
    assert_inert(card)
    tree = Tree(card)
    assert tree.one("a", "nd-title").text == "<script>x</script>"
    assert tree.one("div", "nd-byline").text == (
        'Coast <Times>, 2024-03-02, by <i onclick="x">Eve</i>'
    )
    assert mark_of(card).text == "<script>alert(1)</script>"
    assert tree.one("blockquote", "nd-context").text == MALICIOUS


def test_citation_card_byline_skips_missing_parts() -> None:
    art = article(date=None, source="", author="Ann")
    card = citation_card(cite(1, art, "Monday"), art, turn=0)
    assert Tree(card).one("div", "nd-byline").text == "undated, by Ann"  # said, not left out


def test_citation_card_title_falls_back_to_the_article_id() -> None:
    art = article(title="")
    assert Tree(citation_card(cite(1, art, "Monday"), art, 0)).one("a", "nd-title").text == "a1"


def span_of(element: Element) -> tuple[str | None, int, int]:
    return (
        element.attrs["data-article"],
        int(element.attrs["data-start"] or -1),
        int(element.attrs["data-end"] or -1),
    )


def test_markers_and_cards_name_their_exact_span() -> None:
    """What a script needs to verify a quote: the article and the character offsets.
    (On the card: the chat's sanitiser drops data attributes from the [n] links.)"""
    art = article("ids_with_[odd]_chars", "Intro.\nThe harbour bridge will close on Monday.")
    citations = [cite(1, art, "The harbour bridge will close on Monday."), cite(2, art, "Intro.")]
    answer = make_answer(sentences=[("It closes.", [1, 2])], citations=citations)
    panel = Tree(sources_html([answer], None, {art.id: art}))
    cards = panel.find("div", "nd-source")
    assert [span_of(c) for c in cards] == [(art.id, 7, 47), (art.id, 0, 6)]
    for card, c in zip(cards, citations, strict=True):
        marks = [e for e in descendants(card) if e.tag == "mark"]
        assert [m.text for m in marks] == [art.text[c.start : c.end]]
    p = passage(art, 7, 20)
    assert span_of(Tree(related_card(p, art)).one("div", "nd-source")) == (art.id, 7, 20)
    for shown in (answer, abstention()):  # and which index state's texts they are
        section = Tree(sources_html([shown], None, {art.id: art})).one("section", "nd-turn")
        assert section.attrs["data-index-version"] == "v1"


def test_error_html_is_escaped() -> None:
    from ui.render import error_html

    markup = error_html("bad <file>.jsonl: not valid UTF-8")
    assert_inert(markup)
    assert Tree(markup).one("div", "nd-error").text == "bad <file>.jsonl: not valid UTF-8"


def test_citation_card_shows_the_quote_alone_when_the_article_changed() -> None:
    art = article(text="Intro.\nThe harbour bridge will close for six weeks from Monday.")
    citation = cite(1, art, "close for six weeks")
    changed = article(text="Intro.\nThe harbour bridge will stay open after all, says the city.")
    for current in (changed, None):
        card = citation_card(citation, current, turn=0)
        quote = Tree(card).one("blockquote", "nd-context")
        assert quote.text == "close for six weeks"
        assert [e.tag for e in descendants(quote)] == ["mark"]
        assert "…" not in card
    context = Tree(citation_card(citation, art, 0)).one("blockquote", "nd-context")
    assert context.text == "The harbour bridge will close for six weeks from Monday."


def test_a_quote_shown_alone_keeps_its_line_breaks() -> None:
    art = article(text="Closed on Monday.\nOpen on Friday.")
    card = citation_card(cite(1, art, art.text), None, turn=0)
    assert "Monday&#46;<br>Open" in card
    assert [e.tag for e in descendants(Tree(card).one("mark", "nd-span"))] == ["br"]


# --- related_card ---------------------------------------------------------------------


def test_related_card_is_badged_and_links_nothing_to_cite() -> None:
    art = article()
    card = related_card(passage(art), art)
    tree = Tree(card)
    assert tree.one("span", "nd-badge").text == "related, not cited"
    assert "nd-related" in tree.one("div", "nd-source").classes
    assert "id" not in tree.one("div", "nd-source").attrs
    assert tree.one("a", "nd-title").attrs["href"] == art.url
    assert tree.one("blockquote", "nd-context").text == art.text
    assert tree.one("div", "nd-byline").text == "Coast Times, 2024-03-02"
    assert tree.one("div", "nd-where").text == where("a1", 0, len(art.text))


def test_related_card_clips_long_passages_at_a_space() -> None:
    text = long_paragraph(200)
    art = article(text=text)
    shown = Tree(related_card(passage(art), art)).one("blockquote", "nd-context").text
    assert shown.endswith(" …")
    assert len(shown) <= 282
    assert text.startswith(shown[:-1])
    assert len(shown) > 250


def test_related_card_clips_text_without_spaces_at_the_limit() -> None:
    art = article(text="y" * 500)
    shown = Tree(related_card(passage(art), art)).one("blockquote", "nd-context").text
    assert shown == "y" * 280 + "…"


def test_related_card_shows_only_its_passage_escaped() -> None:
    art = article(text="Before. " + MALICIOUS + " After.", title="<b>T</b>", url="javascript:x")
    p = passage(art, start=8, end=8 + len(MALICIOUS), title="<b>T</b>")
    card = related_card(p, art)
    assert_inert(card)
    tree = Tree(card)
    assert tree.one("span", "nd-title").text == "<b>T</b>"
    assert not tree.find("a")
    shown = tree.one("blockquote", "nd-context").text
    assert "Before" not in shown and "After" not in shown
    assert shown.startswith("Intro <script>")


def test_related_card_without_its_article() -> None:
    p = passage(article(), title="Harbour")
    tree = Tree(related_card(p, None))
    assert tree.one("span", "nd-title").text == "Harbour"
    assert tree.one("blockquote", "nd-context").text == ""
    assert tree.one("div", "nd-byline").text == ""


# --- sources_html ---------------------------------------------------------------------


def test_no_answers_shows_the_placeholder() -> None:
    out = sources_html([], None, {})
    tree = Tree(out)
    assert tree.one("div", "nd-sources-empty").text.startswith("Ask a question")
    assert not tree.find("section")


def three_turns() -> tuple[list[Answer], dict[str, Article]]:
    a, b = article("a"), article("b", "Ferries will run every ten minutes.", title="Ferries")
    answers = [
        make_answer("Q0 <x>?", [("One.", [1])], [cite(1, a, "six weeks")]),
        make_answer("Q1?", [("Two.", [1, 2])], [cite(1, b, "ten minutes"), cite(2, a, "Monday")]),
        make_answer("Q2?", [("Three.", [1])], [cite(1, b, "Ferries")]),
    ]
    return answers, {"a": a, "b": b}


def sections(markup: str) -> list[Element]:
    return Tree(markup).find("section", "nd-turn")


def test_one_section_per_answer_and_only_the_last_shown() -> None:
    answers, articles = three_turns()
    found = sections(sources_html(answers, None, articles))
    assert [s.attrs["id"] for s in found] == ["nd-turn-0", "nd-turn-1", "nd-turn-2"]
    assert ["hidden" in s.attrs for s in found] == [True, True, False]
    for turn, section in enumerate(found):
        cards = [e for e in descendants(section) if "nd-source" in e.classes]
        ids = [c.attrs["id"] for c in cards]
        assert ids == [f"nd-src-{turn}-{c.n}" for c in answers[turn].citations]
    head = Tree(sources_html(answers, None, articles)).find("div", "nd-turn-head")
    assert [h.text for h in head] == [
        "Sources for “Q0 <x>?”",
        "Sources for “Q1?”",
        "Sources for “Q2?”",
    ]


def test_selected_answer_is_the_one_shown() -> None:
    answers, articles = three_turns()
    for selected in range(3):
        found = sections(sources_html(answers, selected, articles))
        assert ["hidden" in s.attrs for s in found] == [t != selected for t in range(3)]


def test_every_marker_has_its_card() -> None:
    answers, articles = three_turns()
    panel = sources_html(answers, None, articles)
    card_ids = {e.attrs["id"] for e in Tree(panel).find("div", "nd-source")}
    for turn, answer in enumerate(answers):
        for link in Tree(answer_html(answer, turn)).find("a", "nd-cite"):
            assert (link.attrs["href"] or "")[1:] in card_ids


def test_abstained_answer_lists_three_related_cards_from_distinct_articles() -> None:
    arts = {k: article(k, f"Passage of {k}, first. Second part of {k}.") for k in "abcde"}
    retrieved = [
        passage(arts["a"], 0, 20),
        passage(arts["a"], 21, 40),
        passage(arts["b"]),
        passage(arts["a"], 5, 10),
        passage(arts["c"]),
        passage(arts["d"]),
        passage(arts["e"]),
    ]
    panel = sources_html([abstention(retrieved)], None, arts)
    tree = Tree(panel)
    cards = tree.find("div", "nd-related")
    assert len(cards) == 3
    assert [descendants(c)[-1].text for c in cards] == [
        where("a", 0, 20),
        where("b", 0, len(arts["b"].text)),
        where("c", 0, len(arts["c"].text)),
    ]
    assert not tree.find("a", "nd-cite")
    assert (
        tree.one("div", "nd-turn-head").text
        == "Related to “Boiling point of nitrogen?” (nothing cited)"
    )
    assert_inert(panel)


def test_abstained_answer_without_passages_says_nothing_matched() -> None:
    tree = Tree(sources_html([abstention()], None, {}))
    assert tree.one("div", "nd-sources-empty").text == "No passages matched."
    assert len(tree.find("section")) == 1


def test_sources_panel_keeps_working_when_an_article_is_gone() -> None:
    art = article(text="Intro.\nThe harbour bridge will close for six weeks from Monday.")
    answer = make_answer(sentences=[("It closes.", [1])], citations=[cite(1, art, "six weeks")])
    panel = sources_html([answer], None, {})
    assert Tree(panel).one("blockquote", "nd-context").text == "six weeks"


def test_sources_panel_of_a_malicious_article_is_inert() -> None:
    art = article(text=MALICIOUS, title='"><script>alert(1)</script>', url="javascript:alert(1)")
    answer = make_answer(
        question="<img src=x onerror=alert(1)>",
        sentences=[(MALICIOUS, [1])],
        citations=[cite(1, art, '<img src=x onerror="alert(1)">')],
    )
    panel = sources_html([answer], None, {art.id: art})
    assert_inert(panel)
    assert mark_of(panel).text == '<img src=x onerror="alert(1)">'
    assert_inert(answer_html(answer, 0))


# --- status_html ----------------------------------------------------------------------


def test_status_without_an_index_names_the_folder() -> None:
    out = status_html(None, "/data/<ix> & co")
    tree = Tree(out)
    assert tree.one("div", "nd-empty-index")
    assert tree.find("code")[0].text == "/data/<ix> & co"
    assert "&lt;ix&gt; &amp; co" in out
    assert not tree.find("table")


def test_status_lists_facts_escaped_with_lists_on_lines() -> None:
    status: dict[str, object] = {
        "articles": 3,
        "index_version": "<v1>",
        "sources": ["a.jsonl", "<b>evil</b>.csv"],
        "built_at": None,
    }
    out = status_html(status, "ix")
    tree = Tree(out)
    assert tree.one("table", "nd-status")
    assert [th.text for th in tree.find("th")] == [
        "articles",
        "index version",
        "sources",
        "built at",
    ]
    cells = tree.find("td")
    assert [td.text for td in cells] == ["3", "<v1>", "a.jsonl<b>evil</b>.csv", "None"]
    assert [e.tag for e in descendants(cells[2])] == ["br"]
    assert "a&#46;jsonl<br>&lt;b&gt;evil&lt;/b&gt;&#46;csv" in out
    assert_inert(out)


def test_status_of_an_empty_list_is_an_empty_cell() -> None:
    tree = Tree(status_html({"sources": []}, "ix"))
    assert tree.one("td").text == ""


# --- generated answers ---------------------------------------------------------------------


def generated(notes: Sequence[str] = ()) -> Answer:
    art = article()
    answer = make_answer(citations=[cite(1, art, "The harbour bridge will close")])
    return answer.model_copy(
        update={
            "answerer": "llm",
            "notes": list(notes),
            "sentences": [
                AnswerSentence(text="The bridge closes.", cites=[1], verdict="supported"),
                AnswerSentence(text="For <b>six</b> weeks.", cites=[1], verdict="partial"),
                AnswerSentence(text="It cost $5m [2].", cites=[], verdict="unsupported"),
            ],
        }
    )


def test_generated_sentences_carry_their_verdicts() -> None:
    tree = Tree(answer_html(generated(), turn=0))
    assert [e.text for e in tree.find("span", "nd-verdict")] == [
        "partly supported",
        "not supported",
    ]
    assert cast(str, tree.one("span", "nd-unsupported").attrs["title"]).startswith("No passage")
    assert len(tree.find("a", "nd-cite")) == 2  # the unsupported sentence links nothing
    assert "[2]" in tree.text and tree.one("span", "nd-generated")


def test_notes_are_shown_and_escaped() -> None:
    markup = answer_html(generated(["removed keys [9] <script>x</script>"]), turn=0)
    assert_inert(markup)
    assert "<script>x</script>" in Tree(markup).one("span", "nd-note").text


def test_extractive_answers_have_no_verdict_or_model_label() -> None:
    art = article()
    answer = make_answer(
        sentences=[("The harbour bridge will close", [1])],
        citations=[cite(1, art, "The harbour bridge will close")],
    )
    tree = Tree(answer_html(answer, turn=0))
    assert not tree.find("span", "nd-verdict") and not tree.find("span", "nd-generated")


def test_streaming_text_is_escaped() -> None:
    from ui.render import streaming_html

    markup = streaming_html("Partial <img src=x onerror=alert(1)> [1")
    assert_inert(markup)
    assert "<img src=x" in Tree(markup).text


def test_a_timeline_orders_the_cited_passages_by_publication() -> None:
    later = article("later", "Officials said 17 passengers died.", date="2024-03-09", source="Post")
    first = article("first", "Rescuers said 12 passengers died.", date="2024-03-02")
    undated = article("undated", "The ferry was built in 1990.", date=None, source="Archive")
    answer = make_answer(
        sentences=[("x", [1, 2, 3])],
        citations=[
            cite(1, later, "Officials said 17 passengers died."),
            cite(2, undated, "The ferry was built in 1990."),
            cite(3, first, "Rescuers said 12 passengers died."),
        ],
    )
    shown = sources_html([answer], None, {a.id: a for a in (later, first, undated)})
    assert_inert(shown)
    timeline = shown[shown.index('class="nd-timeline"') : shown.index("</ol>")]
    assert [timeline.index(f"[{n}]") for n in (3, 1, 2)] == sorted(
        timeline.index(f"[{n}]") for n in (3, 1, 2)
    )
    assert "2024&#45;03&#45;02" in timeline and "undated" in timeline  # escaped like all text
    one_day = make_answer(sentences=[("x", [1])], citations=[cite(1, first, "Rescuers said")])
    assert "nd-timeline" not in sources_html([one_day], None, {"first": first})


def test_a_copy_in_other_words_is_marked_reworded() -> None:
    quote = "The harbour bridge will close for six weeks from Monday, engineers said."
    original = article("a1", quote)
    edited = quote.replace("will close", "is to shut")
    copy = article("b2", edited, source="Valley <Post>", date="2024-03-03", url="")
    verbatim = article("c3", quote, source="Daily Wire", date="2024-03-04", url="")
    citation = cite(1, original, quote).model_copy(
        update={
            "also": [
                AlsoReported.of(copy, 0, len(edited), reworded=True),
                AlsoReported.of(verbatim, 0, len(quote)),
            ]
        }
    )
    markup = citation_card(citation, original, 0)
    assert_inert(markup)
    tree = Tree(markup)
    line = tree.one("div", "nd-also").text
    assert line == (
        "also reported by: Valley <Post> (2024-03-03, reworded), Daily Wire (2024-03-04)"
    )
    spans = [(c.attrs["data-start"], c.attrs["data-end"]) for c in tree.find("span", "nd-copy")]
    assert spans == [("0", str(len(edited))), ("0", str(len(quote)))]  # each copy's own span
