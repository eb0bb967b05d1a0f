"""HTML for the chat page: answers with linked markers, and the sources panel.

Everything that came from an article (text, title, url, source, author) passes
through `escape` before it touches markup, and only http(s) urls become links:
an article is untrusted input, and the page must show `<script>` as text.

The chat component renders Markdown before sanitising, so `escape` also turns
Markdown's punctuation into character references; a quoted sentence can never
become a link, an image or a formula.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from index.dates import order_key
from index.feeds_store import FeedRow
from index.types import Article
from rag.conversations import Conversation
from rag.types import CANNOT_ANSWER, Answer, Citation, Retrieved, byline, day

# Characters Markdown (or the chat's LaTeX) could read as syntax, as references.
_MARKDOWN = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-.!|~$"}
# One pass over the text: escaping HTML first and Markdown after would turn the
# "#" inside html.escape's "&#x27;" into "&#35;", showing every apostrophe as "&#x27;".
_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;", "\n": " ", "\r": " "}
    | _MARKDOWN
)
_CONTEXT_CHARS = 320  # most characters of the paragraph shown on each side of a span
_RELATED_CHARS = 280
ARTICLES_SHOWN = 200  # rows of the Collection tab's article list
NOT_IN_COLLECTION = "Not in this collection"


def escape(text: str) -> str:
    """Text as inert HTML: no tags, no attributes, no Markdown, no line breaks."""
    return text.translate(_ESCAPES)


def safe_url(url: str) -> str | None:
    """The url if it is an absolute http(s) url a browser can follow safely, else None."""
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    if any(c.isspace() or c in "\"'<>`" for c in url):
        return None
    return url


def source_anchor(turn: int, n: int) -> str:
    """The element id of citation `n` of answer `turn` in the sources panel."""
    return f"nd-src-{turn}-{n}"


def span_data(article_id: str, start: int, end: int) -> str:
    """Attributes naming the exact span, so a reader of the page (or a test, or a
    script) can check the quote against article.text[start:end] without parsing prose."""
    return f'data-article="{escape(article_id)}" data-start="{start}" data-end="{end}"'


# A generated sentence's verdict (rag.support), as a badge and its tooltip.
VERDICT_BADGES = {
    "partial": ("partly supported", "The cited passage supports only part of this sentence."),
    "unsupported": (
        "not supported",
        "No passage the model cited says this; it has no citation.",
    ),
}


def answer_html(answer: Answer, turn: int, note: str = "") -> str:
    """An answer as a chat message: quoted sentences, each `[n]` a link to its source.

    One block element with no blank line inside, so Markdown passes it through.
    `note` (plain text) says how the question was read: filters, follow-up rewrite.
    """
    meta = f'<span class="nd-meta">{escape(note)}</span>' if note else ""
    if answer.abstained:
        return (
            '<div class="nd-abstain">'
            f'<strong class="nd-abstain-label">{escape(NOT_IN_COLLECTION)}</strong> '
            f"<span>{escape(CANNOT_ANSWER)}</span>"
            + (
                ' <span class="nd-hint">The closest passages are in the sources panel, '
                "marked related, not cited.</span>"
                if answer.retrieved
                else ""
            )
            + f"{meta}</div>"
        )
    titles = {c.n: c.title or c.article_id for c in answer.citations}
    parts = []
    for sentence in answer.sentences:
        marks = "".join(
            f' <a class="nd-cite" href="#{source_anchor(turn, n)}" '
            f'title="{escape(titles.get(n, ""))}">[{n}]</a>'
            for n in sentence.cites
        )
        badge = VERDICT_BADGES.get(sentence.verdict or "")
        flag = (
            f' <span class="nd-verdict nd-{sentence.verdict}" title="{escape(badge[1])}">'
            f"{escape(badge[0])}</span>"
            if badge
            else ""
        )
        day = (
            f'<span class="nd-day">({escape(answer.days_of(sentence))})</span> '
            if answer.time_sensitive and sentence.cites
            else ""
        )
        parts.append(f"{day}{escape(sentence.text)}{marks}{flag}")
    notes = "".join(f'<span class="nd-meta nd-note">{escape(n)}</span>' for n in answer.notes)
    made = (
        '<span class="nd-meta nd-generated">Written by a language model; each sentence was '
        "checked against the passages it cites.</span>"
        if answer.answerer == "llm"
        else ""
    )
    return f'<div class="nd-answer">{" ".join(parts)}{made}{notes}{meta}</div>'


def error_html(message: str) -> str:
    """Something the user can fix or retry, shown in place of an answer or a report."""
    return f'<div class="nd-error">{escape(message)}</div>'


def streaming_html(text: str) -> str:
    """A generated answer while it is being written: plain text, markers not yet checked."""
    return (
        f'<div class="nd-streaming">{escape(text)}'
        '<span class="nd-meta">Writing… citations are checked when it is done.</span></div>'
    )


def pending_html(text: str) -> str:
    return f'<div class="nd-pending">{escape(text)}</div>'


def paragraph_of(text: str, start: int, end: int) -> tuple[int, int]:
    """The whole line(s) around text[start:end]: the paragraph the chat shows a span in,
    and the API returns with it (`/v1/articles/{id}?start=&end=`)."""
    low = text.rfind("\n", 0, start) + 1
    high = text.find("\n", end)
    return low, len(text) if high < 0 else high


def paragraph_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The paragraph(s) around text[start:end], clipped to a readable length at spaces."""
    low, high = paragraph_of(text, start, end)
    if start - low > _CONTEXT_CHARS:
        cut = text.find(" ", start - _CONTEXT_CHARS, start)
        low = cut + 1 if cut >= 0 else start - _CONTEXT_CHARS
    if high - end > _CONTEXT_CHARS:
        cut = text.rfind(" ", end, end + _CONTEXT_CHARS)
        high = cut if cut >= 0 else end + _CONTEXT_CHARS
    return low, high


def highlighted(text: str, start: int, end: int) -> str:
    """The cited span inside its paragraph, the span in a <mark>, all of it escaped."""
    low, high = paragraph_bounds(text, start, end)
    before = ("… " if low > 0 and text[low - 1] != "\n" else "") + text[low:start]
    after = text[end:high] + ("…" if high < len(text) and text[high] != "\n" else "")
    return (
        f'{_escape_lines(before)}<mark class="nd-span">{_escape_lines(text[start:end])}</mark>'
        f"{_escape_lines(after)}"
    )


def _escape_lines(text: str) -> str:
    return "<br>".join(escape(line) for line in text.split("\n"))


def _title_html(title: str, url: str) -> str:
    link = safe_url(url)
    shown = escape(title)
    if link is None:
        return f'<span class="nd-title">{shown}</span>'
    return (
        f'<a class="nd-title" href="{html.escape(link, quote=True)}" target="_blank" '
        f'rel="noopener noreferrer nofollow">{shown}</a>'
    )


def citation_card(citation: Citation, article: Article | None, turn: int) -> str:
    c = citation
    body = (
        highlighted(article.text, c.start, c.end)
        if article is not None and article.text[c.start : c.end] == c.text
        else f'<mark class="nd-span">{_escape_lines(c.text)}</mark>'
    )
    return (
        f'<div class="nd-source" id="{source_anchor(turn, c.n)}" '
        f"{span_data(c.article_id, c.start, c.end)}>"
        f'<div class="nd-head"><span class="nd-n">[{c.n}]</span> '
        f"{_title_html(c.title or c.article_id, c.url)}</div>"
        f'<div class="nd-byline">{escape(c.byline)}</div>'
        f'<blockquote class="nd-context">{body}</blockquote>'
        f'<div class="nd-where">article {escape(c.article_id)}, '
        f"characters {c.start}&ndash;{c.end}</div>{_also_html(c)}</div>"
    )


def _also_html(citation: Citation) -> str:
    """The other copies of the quoted story (index.dedupe), each outlet linked to its
    article and carrying its own span, so every copy stays as checkable as the quote."""
    if not citation.also:
        return ""
    copies = []
    for copy in citation.also:
        name = escape(copy.outlet)
        link = safe_url(copy.url)
        if link is not None:
            name = (
                f'<a href="{html.escape(link, quote=True)}" target="_blank" '
                f'rel="noopener noreferrer nofollow">{name}</a>'
            )
        copies.append(
            f'<span class="nd-copy" {span_data(copy.article_id, copy.start, copy.end)}>'
            f"{name}</span>"
        )
    return f'<div class="nd-also">also reported by: {", ".join(copies)}</div>'


def related_card(passage: Retrieved, article: Article | None) -> str:
    text = article.text[passage.start : passage.end] if article is not None else ""
    if len(text) > _RELATED_CHARS:
        text = text[: text.rfind(" ", 0, _RELATED_CHARS) + 1 or _RELATED_CHARS] + "…"
    url = article.url if article is not None else ""
    shown = escape(byline(article.source, article.date, article.author)) if article else ""
    return (
        '<div class="nd-source nd-related" '
        f"{span_data(passage.article_id, passage.start, passage.end)}>"
        f'<div class="nd-head"><span class="nd-badge">related, not cited</span> '
        f"{_title_html(passage.title or passage.article_id, url)}</div>"
        f'<div class="nd-byline">{shown}</div>'
        f'<blockquote class="nd-context">{escape(text)}</blockquote>'
        f'<div class="nd-where">article {escape(passage.article_id)}, '
        f"characters {passage.start}&ndash;{passage.end}</div></div>"
    )


def sources_html(
    answers: Sequence[Answer], selected: int | None, articles: Mapping[str, Article]
) -> str:
    """One section per answer; only the selected one is visible (the page's script
    switches sections when a `[n]` of another answer is clicked)."""
    if not answers:
        return (
            '<div class="nd-sources-empty">Ask a question: the passages each answer '
            "quotes appear here, with the cited words highlighted.</div>"
        )
    last = len(answers) - 1
    shown = last if selected is None or not 0 <= selected <= last else selected
    sections = []
    for turn, answer in enumerate(answers):
        hidden = "" if turn == shown else " hidden"
        heading = f"Sources for “{escape(answer.question)}”"
        if answer.abstained:
            cards = [
                related_card(p, articles.get(p.article_id)) for p in _distinct(answer.retrieved)
            ]
            heading = f"Related to “{escape(answer.question)}” (nothing cited)"
        else:
            cards = [timeline_html(answer, turn)]
            cards += [citation_card(c, articles.get(c.article_id), turn) for c in answer.citations]
        body = "".join(cards) or '<div class="nd-sources-empty">No passages matched.</div>'
        # The index state the answer came from: the texts its spans are offsets into.
        state = f'data-index-version="{escape(answer.index_version)}"'
        sections.append(
            f'<section class="nd-turn" id="nd-turn-{turn}" {state}{hidden}>'
            f'<div class="nd-turn-head">{heading}</div>{body}</section>'
        )
    return "".join(sections)


def timeline_html(answer: Answer, turn: int) -> str:
    """The cited passages in the order they were published, when they span more than
    one day: how a developing story developed, and which quote is the newest. Undated
    ones come last."""
    if len({day(c.date) for c in answer.citations if c.date}) < 2:
        return ""
    ordered = sorted(answer.citations, key=lambda c: (order_key(c.date), c.n))
    items = "".join(
        f'<li><span class="nd-when">{escape(day(c.date))}</span> '
        f'<a class="nd-timeline-n" href="#{source_anchor(turn, c.n)}">[{c.n}]</a> '
        f"{escape(c.source or c.title or c.article_id)}: “{escape(_clip(c.text))}”</li>"
        for c in ordered
    )
    return (
        '<div class="nd-timeline"><div class="nd-timeline-head">Timeline</div>'
        f"<ol>{items}</ol></div>"
    )


def _clip(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _distinct(passages: Sequence[Retrieved], limit: int = 3) -> list[Retrieved]:
    """The best passage of each of the first `limit` articles."""
    seen: set[str] = set()
    kept = []
    for p in passages:
        if p.article_id not in seen:
            seen.add(p.article_id)
            kept.append(p)
    return kept[:limit]


def status_html(status: Mapping[str, object] | None, index_dir: str) -> str:
    """The collection's counts and build facts, or how to make one."""
    if status is None:
        return (
            f'<div class="nd-empty-index">No index in <code>{escape(index_dir)}</code> yet. '
            "Add article files below and press <b>Add to index</b>, or run "
            "<code>newsdesk index build SOURCE…</code> and reload this page.</div>"
        )
    rows = "".join(
        f"<tr><th>{escape(key.replace('_', ' '))}</th><td>{_cell(value)}</td></tr>"
        for key, value in status.items()
    )
    return f'<table class="nd-status">{rows}</table>'


def _cell(value: object) -> str:
    if isinstance(value, list):
        return "<br>".join(escape(str(v)) for v in value)
    return escape(str(value))


def feeds_html(rows: Sequence[FeedRow], items: Mapping[str, int]) -> str:
    """The feeds of the index: url, title, last poll, status (or the error), and how
    many of its items are indexed (`items` by feed url)."""
    if not rows:
        return (
            '<div class="nd-feeds-empty">No feeds yet: add an RSS, Atom or sitemap URL below.</div>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("Feed", "Title", "Last poll", "Status", "Items"))
    body = "".join(
        f'<tr class="nd-feed" data-url="{html.escape(row.url, quote=True)}">'
        f"<td>{escape(row.url)}</td><td>{escape(row.title)}</td>"
        f'<td class="nd-polled">{escape(_when(row.polled_at) or "never")}</td>'
        f'<td class="nd-feed-status">{_feed_status(row)}</td>'
        f'<td class="nd-items">{items.get(row.url, 0)}</td></tr>'
        for row in rows
    )
    return f'<table class="nd-feeds"><tr>{head}</tr>{body}</table>'


def _feed_status(row: FeedRow) -> str:
    if row.error:
        return f'<span class="nd-error">{escape(row.error)}</span>'
    listed = " (listed in feeds.urls)" if row.in_settings else ""
    return escape(row.status + listed)


def _when(timestamp: str | None) -> str:
    """An ISO timestamp to the minute, as a person reads it ("2024-05-01 09:30 UTC")."""
    if not timestamp:
        return ""
    shown = timestamp[:16].replace("T", " ")
    return f"{shown} UTC" if timestamp.endswith(("+00:00", "Z")) else shown


def articles_html(articles: Mapping[str, Article], limit: int = ARTICLES_SHOWN) -> str:
    """The collection's articles, the newest first: date, title, outlet and id."""
    if not articles:
        return '<div class="nd-articles-empty">No articles yet.</div>'
    newest = sorted(articles.values(), key=_newest_first)
    rows = "".join(
        f'<tr class="nd-article" data-article="{escape(a.id)}">'
        f"<td>{escape(day(a.date))}</td>"
        f"<td>{_title_html(a.title or a.id, a.url)}</td>"
        f"<td>{escape(a.source)}</td><td>{escape(a.id)}</td></tr>"
        for a in newest[:limit]
    )
    more = (
        f'<div class="nd-meta">and {len(newest) - limit:,} more</div>'
        if len(newest) > limit
        else ""
    )
    head = "".join(f"<th>{h}</th>" for h in ("Date", "Title", "Outlet", "Id"))
    return (
        f'<div class="nd-articles-count">{len(newest):,} articles, the newest first</div>'
        f'<table class="nd-articles"><tr>{head}</tr>{rows}</table>{more}'
    )


def _newest_first(article: Article) -> tuple[float, str]:
    """Dated articles the newest first, then the undated ones (order_key puts them last)."""
    published = order_key(article.date)
    return (-published if published != math.inf else math.inf, article.id)


def conversation_label(conversation: Conversation) -> str:
    """How a saved conversation is listed: its title and when it was last added to."""
    turns = "1 question" if conversation.turns == 1 else f"{conversation.turns} questions"
    return f"{conversation.title} · {turns} · {_when(conversation.updated)}"
