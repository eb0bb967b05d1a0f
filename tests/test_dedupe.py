"""Near-duplicate articles: grouped at ingest, cited once with "also reported by"."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from index.build import Indexer
from index.db import read_manifest
from index.dedupe import (
    RECALL_AT_THRESHOLD,
    find_duplicates,
    jaccard,
    lsh_bands,
    matching_span,
    members,
    same_sentence,
    shingles,
)
from index.embed import Embedder
from index.manifest import Manifest
from index.reader import IndexReader
from index.status import index_status
from index.text import words
from index.types import Article
from newsdesk.settings import AnswerSettings, DedupeSettings, RetrievalSettings, Settings
from rag.answer import ExtractiveAnswerer
from rag.cli import render
from rag.types import AlsoReported, Answer, Citation
from tests.conftest import NEWS, assert_exact_citations, make_settings, write_jsonl
from tests.test_ui_render import Tree, assert_inert
from ui.render import citation_card

ANSWER = "The harbour bridge will close for six weeks from Monday, the council's engineers said."
PARAGRAPHS = [
    "PORT ELLIS — Commuters face months of disruption after inspectors found damage to the "
    "city's oldest crossing during a routine check last week.",
    ANSWER,
    "Cracks were found in two of the steel cables that hold up the main span, and the "
    "engineers want to replace both of them before the autumn storms arrive in the bay.",
    "Ferries will run every ten minutes between the north and south quays while the bridge "
    "is shut, and the fare will be waived for anyone holding a monthly travel pass.",
    "The council said it had considered keeping one lane open for buses but decided that "
    "the risk to drivers and to the repair crews working overhead was too high to accept.",
    "Local businesses on the south side of the harbour said they expected to lose trade, "
    "and several asked the council for help with rent while the works are under way.",
    "The bridge was opened in 1932 and carries about forty thousand vehicles a day, most "
    "of them commuters travelling into the old town from the new estates to the north.",
    "A full inspection of the remaining cables will take place after the repairs, and the "
    "council has promised to publish the engineers' report in full once it is complete.",
    "Cyclists and pedestrians will be allowed to use a temporary walkway on the west side "
    "of the bridge, which will be lit at night and staffed by marshals during rush hour.",
    "The repairs are expected to cost about four million pounds, to be paid from the "
    "council's reserves and from a grant promised by the regional transport authority.",
    "Residents can find the ferry timetable and a map of the diversions on the council's "
    "website, where updates on the progress of the work will be posted every Friday.",
    "The last major closure of the bridge was in 1987, when the road surface was replaced "
    "over a summer and traffic was diverted through the tunnel to the east of the city.",
]


def syndicated() -> list[dict[str, Any]]:
    """One story in three outlets: the original, a re-edit (new headline and first line,
    a few words changed) and a copy with curly apostrophes; plus two unrelated articles."""
    original = "\n\n".join(PARAGRAPHS)
    edited = [
        "Thousands of drivers will need another way into town, the city council announced.",
        *PARAGRAPHS[1:],
    ]
    edited[3] = edited[3].replace("every ten minutes", "every twelve minutes")
    edited[6] = edited[6].replace("about forty thousand", "roughly 40,000")
    curly = original.replace("'", "\u2019")
    return [
        {
            "id": "coast-1",
            "title": "Harbour bridge to close for six weeks",
            "date": "2024-03-02",
            "source": "Coast Times",
            "url": "https://coast.example/bridge",
            "text": original,
        },
        {
            "id": "valley-7",
            "title": "Bridge shutdown: what commuters need to know",
            "date": "2024-03-03",
            "source": "Valley Post",
            "url": "https://valley.example/news/7",
            "text": "\n\n".join(edited),
        },
        {
            "id": "wire-3",
            "title": "Harbour bridge closing",
            "date": "2024-03-03T09:30:00+00:00",
            "source": "Daily Wire",
            "url": "https://wire.example/3",
            "text": curly,
        },
        NEWS[1],
        NEWS[2],
    ]


def article(record: dict[str, Any]) -> Article:
    return Article.from_record(record)


# -- grouping ---------------------------------------------------------------------------


def test_copies_are_grouped_under_the_earliest() -> None:
    found = find_duplicates([article(r) for r in syndicated()], 0.8)
    assert found == {"coast-1": "coast-1", "valley-7": "coast-1", "wire-3": "coast-1"}


def test_lightly_edited_copy_is_grouped_and_its_jaccard_is_exact() -> None:
    records = syndicated()
    a, b = shingles(records[0]["text"]), shingles(records[1]["text"])
    similarity = jaccard(a, b)
    assert 0.8 < similarity < 0.95  # a real edit, not a copy
    pair = [article(records[0]), article(records[1])]
    # The exact check decides at the threshold, whatever LSH proposed.
    assert find_duplicates(pair, similarity) == {"coast-1": "coast-1", "valley-7": "coast-1"}
    assert find_duplicates(pair, min(1.0, similarity + 1e-9)) == {}


def test_different_stories_on_the_same_topic_are_not_grouped() -> None:
    other = {
        "id": "bridge-2",
        "title": "Second bridge plan approved",
        "date": "2024-03-05",
        "source": "Coast Times",
        "text": (
            "The council approved plans for a second harbour bridge on Tuesday, after the "
            "closure of the old crossing for repairs to its steel cables. Engineers said the "
            "new bridge would take five years to build and carry trams as well as cars. "
            "Ferries will keep running between the quays until it opens, the council said, "
            "and businesses on the south side of the harbour welcomed the decision."
        ),
    }
    records = [syndicated()[0], other, NEWS[0]]
    assert find_duplicates([article(r) for r in records], 0.5) == {}
    assert jaccard(shingles(records[0]["text"]), shingles(other["text"])) < 0.1


def test_grouping_is_deterministic_and_independent_of_order() -> None:
    articles = [article(r) for r in syndicated()]
    first = find_duplicates(articles, 0.8)
    for seed in range(5):
        shuffled = articles[:]
        random.Random(seed).shuffle(shuffled)
        assert find_duplicates(shuffled, 0.8) == first
    assert list(first) == sorted(first)  # stable in the manifest's JSON too


def test_groups_are_connected_components() -> None:
    base = [f"w{i:02d}" for i in range(60)]  # one length: no copy is the longest
    chain = [" ".join(base[:50]), " ".join(base[5:55]), " ".join(base[10:60])]
    articles = [Article(id=f"c{i}", title="", text=text) for i, text in enumerate(chain)]
    assert jaccard(shingles(chain[0]), shingles(chain[2])) < 0.8
    assert find_duplicates(articles, 0.75) == {"c0": "c0", "c1": "c0", "c2": "c0"}


def test_canonical_is_earliest_then_longest_then_smallest_id() -> None:
    text = " ".join(f"word{i}" for i in range(40))

    def make(id_: str, date: str | None, extra: str = "") -> Article:
        return Article(id=id_, title="", text=text + extra, date=date)

    # An undated copy cannot be shown to be first; a timestamp is compared as an instant.
    assert set(find_duplicates([make("a", None), make("b", "2024-03-03")], 0.8).values()) == {"b"}
    later = [make("a", "2024-03-02T12:00:00+00:00"), make("b", "2024-03-02T13:00:00+02:00")]
    assert set(find_duplicates(later, 0.8).values()) == {"b"}
    longer = [make("a", "2024-03-02"), make("b", "2024-03-02", " more")]
    assert set(find_duplicates(longer, 0.8).values()) == {"b"}
    assert set(find_duplicates([make("b", None), make("a", None)], 0.8).values()) == {"a"}


def test_empty_texts_and_repeated_ids() -> None:
    blank = [Article(id="x", title="", text="—"), Article(id="y", title="", text="…")]
    assert find_duplicates(blank, 0.8) == {}
    with pytest.raises(ValueError, match="occurs twice"):
        find_duplicates([article(NEWS[0]), article(NEWS[0])], 0.8)
    with pytest.raises(ValueError, match="threshold"):
        find_duplicates([], 0)


@pytest.mark.parametrize("threshold", [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0])
def test_lsh_bands_propose_pairs_at_the_threshold(threshold: float) -> None:
    bands, rows = lsh_bands(threshold)
    assert bands >= 2 and bands * rows <= 128
    assert 1 - (1 - threshold**rows) ** bands >= RECALL_AT_THRESHOLD


def test_sentences_match_across_typography_only() -> None:
    assert same_sentence("The council's plan — agreed.", "the council\u2019s  plan - agreed")
    assert not same_sentence("Prices rose 5 percent.", "Prices rose 6 percent.")
    assert not same_sentence("The bridge will close.", "The bridge will not close.")
    copy = article(syndicated()[2])
    spans = [(m, m + len(p)) for p in copy.text.split("\n\n") for m in [copy.text.find(p)]]
    start, end = matching_span(ANSWER, copy, spans) or (0, 0)
    assert copy.text[start:end] == ANSWER.replace("'", "\u2019")
    assert matching_span("Nothing like it.", copy, spans) is None


def test_members_lists_the_canonical_first() -> None:
    assert members({"b": "c", "a": "c", "c": "c", "y": "x", "x": "x"}) == {
        "c": ["c", "a", "b"],
        "x": ["x", "y"],
    }


def test_settings_and_manifest_defaults() -> None:
    assert Settings().dedupe == DedupeSettings(enabled=True, threshold=0.8)
    with pytest.raises(ValidationError):
        DedupeSettings(threshold=0.3)
    with pytest.raises(ValidationError):
        DedupeSettings.model_validate({"treshold": 0.9})
    old: dict[str, Any] = {
        "newsdesk_version": "0.1.0",
        "collection": "c",
        "state": "s",
        "vectors_file": "vectors-s.f16",
        "vector_rows": 0,
        "chroma_url": None,
        "model": "m",
        "dimension": 3,
        "chunk_tokens": 10,
        "overlap_tokens": 1,
        "title_tokens": 1,
        "sources": [],
        "created_at": "t",
        "updated_at": "t",
        "articles": {},
    }
    manifest = Manifest.model_validate_json(json.dumps(old))
    assert manifest.duplicates == {} and manifest.dedupe_threshold is None
    assert manifest.duplicate_groups == 0


def test_chat_card_lists_the_copies_inertly() -> None:
    original, copy, hostile = (article(r) for r in syndicated()[:3])
    start = original.text.index(ANSWER)
    spans = [(m, m + len(p)) for p in copy.text.split("\n\n") for m in [copy.text.find(p)]]
    copy_start, copy_end = matching_span(ANSWER, copy, spans) or (0, 0)
    evil = Article(
        id="evil",
        title="t",
        text=hostile.text,
        source="<script>alert(1)</script> [x](javascript:alert(1))",
        url="javascript:alert(1)",
        date="2024-03-04",
    )
    citation = Citation.of(1, original, start, start + len(ANSWER), 0.9).model_copy(
        update={
            "also": [
                AlsoReported.of(copy, copy_start, copy_end),
                AlsoReported.of(evil, copy_start, copy_end),
            ]
        }
    )
    markup = citation_card(citation, original, 0)
    assert_inert(markup)
    tree = Tree(markup)
    line = tree.one("div", "nd-also")
    assert line.text.startswith("also reported by: Valley Post (2024-03-03), <script>")
    copies = tree.find("span", "nd-copy")
    assert [c.attrs["data-article"] for c in copies] == ["valley-7", "evil"]
    assert copies[0].attrs["data-start"] == str(copy_start)
    assert [a.attrs["href"] for a in tree.find("a") if "nd-title" not in a.classes] == [
        "https://valley.example/news/7"
    ]
    assert "nd-also" not in citation_card(citation.model_copy(update={"also": []}), original, 0)


# -- end to end ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def syndicated_index(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_index("syndicated", syndicated(), embedder, tmp_path_factory)


def built_index(
    name: str, records: Any, embedder: Embedder, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """An index of `records` in a fresh directory named after them."""
    root = tmp_path_factory.mktemp(name)
    source = write_jsonl(root / "news.jsonl", records)
    Indexer(make_settings(root / "ix"), embedder).build([source])
    return root / "ix"


def ask(index_dir: Path, embedder: Embedder, question: str) -> tuple[Answer, IndexReader]:
    settings = make_settings(index_dir)
    reader = IndexReader(settings, embedder)
    return ExtractiveAnswerer(reader, settings).ask(question), reader


def test_build_stores_the_groups(syndicated_index: Path) -> None:
    manifest = read_manifest(syndicated_index)
    assert manifest is not None
    assert manifest.duplicates == {"coast-1": "coast-1", "valley-7": "coast-1", "wire-3": "coast-1"}
    assert manifest.dedupe_threshold == 0.8
    status = index_status(syndicated_index, manifest)
    assert status["duplicate_groups"] == 1 and status["articles_in_duplicate_groups"] == 3


def test_answer_cites_one_copy_and_lists_the_others(
    syndicated_index: Path, embedder: Embedder
) -> None:
    answer, reader = ask(syndicated_index, embedder, "How long will the harbour bridge close?")
    assert not answer.abstained
    assert_exact_citations(answer, reader.articles)
    quoted = [c for c in answer.citations if same_sentence(c.text, ANSWER)]
    assert len(quoted) == 1, answer.citations
    cited = quoted[0]
    assert cited.article_id == "coast-1"  # the canonical copy, retrieved with the others
    assert [(a.article_id, a.source) for a in cited.also] == [
        ("valley-7", "Valley Post"),
        ("wire-3", "Daily Wire"),
    ]
    for copy in cited.also:
        text = reader.articles[copy.article_id].text
        assert text[copy.start : copy.end] == copy.text
        assert same_sentence(copy.text, ANSWER)
    assert cited.also[1].text == ANSWER.replace("'", "\u2019")
    said = [tuple(words(s.text)) for s in answer.sentences]
    assert len(said) == len(set(said))  # no sentence quoted twice from different copies

    shown = render(answer)
    assert "also reported by: Valley Post (2024-03-03), Daily Wire (2024-03-03)" in shown


def test_cli_json_carries_the_copies(syndicated_index: Path) -> None:
    from rag.cli import ask as ask_command

    result = CliRunner().invoke(
        ask_command,
        ["How long will the harbour bridge close?", "--json", "--index-dir", str(syndicated_index)],
    )
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)
    quoted = [c for c in record["citations"] if same_sentence(c["text"], ANSWER)]
    assert len(quoted) == 1
    also = quoted[0]["also"]
    assert [a["article_id"] for a in also] == ["valley-7", "wire-3"]
    assert {"start", "end", "text", "url", "date", "source", "title"} <= set(also[0])


def test_update_regroups(tmp_path: Path, embedder: Embedder) -> None:
    records = syndicated()
    source = write_jsonl(tmp_path / "news.jsonl", records[1:])  # the original comes later
    settings = make_settings(tmp_path / "ix")
    built = Indexer(settings, embedder).build([source]).manifest
    assert built is not None and set(built.duplicates.values()) == {"valley-7"}
    write_jsonl(source, records)
    report = Indexer(settings, embedder).update([source])
    assert "5 articles (near-duplicate groups: 1), " in report.summary()
    updated = report.manifest
    assert updated is not None and set(updated.duplicates.values()) == {"coast-1"}
    assert len(updated.duplicates) == 3

    off = make_settings(tmp_path / "ix", dedupe=DedupeSettings(enabled=False))
    report = Indexer(off, embedder).update([source])  # nothing changed but the settings
    assert report.added == report.changed == 0
    regrouped = read_manifest(settings.index_dir)
    assert regrouped is not None
    assert regrouped.duplicates == {} and regrouped.dedupe_threshold is None
    # A copy's sentence vector is pooled from its own chunk's context, so copies score
    # apart by a few hundredths: a wide margin lets every copy compete for a quote.
    # Nor does retrieval keep one passage per repeated sentence here (collapse_repeats).
    wide = make_settings(
        settings.index_dir,
        answer=AnswerSettings(sentence_margin=0.2),
        retrieval=RetrievalSettings(collapse_repeats=False),
    )
    question = "How long will the harbour bridge close?"
    answer = ExtractiveAnswerer(IndexReader(wide, embedder), wide).ask(question)
    assert all(not c.also for c in answer.citations)
    # What grouping spares the reader: the same sentence quoted once per outlet.
    assert sum(same_sentence(c.text, ANSWER) for c in answer.citations) > 1


def test_an_update_regroups_only_what_it_touched_and_agrees_with_a_full_regroup(
    tmp_path: Path, embedder: Embedder
) -> None:
    """Updates find copies through the vector index instead of re-reading the whole
    collection; each step must give what grouping everything from scratch gives."""
    records = syndicated()
    source = write_jsonl(tmp_path / "news.jsonl", records)
    settings = make_settings(tmp_path / "ix")
    Indexer(settings, embedder).build([source])
    rewritten = dict(records[1], text="The valley's own reporting: " + NEWS[1]["text"])
    steps = [
        [records[0], rewritten, *records[2:]],  # one copy rewritten: the group shrinks
        [records[0], *records[2:]],  # with --prune, that article removed
        records,  # it comes back as a copy: the group grows again
    ]
    for step in steps:
        write_jsonl(source, step)
        manifest = Indexer(settings, embedder).update([source], prune=True).manifest
        assert manifest is not None
        expected = find_duplicates([article(r) for r in step], settings.dedupe.threshold)
        assert manifest.duplicates == expected
    assert set(cast(Manifest, manifest).duplicates) == {"coast-1", "valley-7", "wire-3"}


# -- the same sentence in other words (issue 17) --------------------------------------------

LEAD = (
    "A fire that swept through a timber warehouse on the edge of Port Ellis on Friday "
    "night forced the evacuation of more than two hundred homes, the fire service said."
)
TREATED = (
    "Two firefighters were taken to hospital with minor burns and 12 people were treated "
    "for smoke inhalation at the scene, according to the ambulance service."
)
FIRE = [
    LEAD,
    "Crews from four stations fought the blaze for most of the night, and the last of the "
    "flames were put out shortly after dawn on Saturday morning.",
    TREATED,
    "Residents of the streets nearest the warehouse were taken by bus to a sports hall in "
    "the town centre, where the council set up beds and served hot meals.",
    "The owner of the warehouse, a family business that has sold timber and building "
    "supplies in the town for three generations, said the stock could not be saved.",
    "Police closed the coast road between the harbour and the industrial estate, and "
    "drivers were told to expect delays until the site has been made safe.",
    "Investigators will begin work at the site once the remains of the building have "
    "cooled, and the cause of the fire is not yet known, the fire service said.",
    "Neighbours described hearing a series of loud bangs shortly before midnight, followed "
    "by thick black smoke that could be seen from the other side of the bay.",
    "The council said residents would be allowed to return to their homes on Saturday "
    "afternoon once air quality checks had been completed by its environmental team.",
    "A collection for families who lost belongings in the smoke has been set up at the "
    "sports hall, and local shops have offered to donate food and clothing.",
]
# Two words of the lead changed in each re-edit; the wire's later copy also gives another
# count of the people treated, a different fact however alike the sentence.
VALLEY_LEAD = LEAD.replace("swept through", "tore through").replace("forced", "prompted")
WIRE_LEAD = LEAD.replace("timber", "lumber").replace("service said", "service reported")
WIRE_TREATED = TREATED.replace("12 people", "15 people")


def reworded() -> list[dict[str, Any]]:
    """One story in three outlets, the two later ones lightly re-edited; plus two others."""
    valley = [VALLEY_LEAD, *FIRE[1:]]
    wire = [WIRE_LEAD, FIRE[1], WIRE_TREATED, *FIRE[3:]]
    outlets = [
        ("fire-coast", "Coast Times", "2024-03-02", FIRE),
        ("fire-valley", "Valley Post", "2024-03-03", valley),
        ("fire-wire", "Daily Wire", "2024-03-03T09:30:00+00:00", wire),
    ]
    return [
        {
            "id": id_,
            "title": "Warehouse fire forces evacuation",
            "date": date,
            "source": source,
            "url": f"https://{id_}.example/",
            "text": "\n\n".join(paragraphs),
        }
        for id_, source, date, paragraphs in outlets
    ] + [NEWS[1], NEWS[2]]


def test_a_lightly_edited_sentence_says_the_same_thing() -> None:
    assert same_sentence(LEAD, VALLEY_LEAD) and same_sentence(LEAD, WIRE_LEAD)
    assert same_sentence(VALLEY_LEAD, WIRE_LEAD)  # four words apart in thirty
    assert same_sentence(LEAD, LEAD[:-1])  # typography alone, as before
    assert same_sentence(TREATED, TREATED.replace("12", "twelve"))  # one number, two spellings
    assert not same_sentence(LEAD, "Firefighters said nothing about the homes on the edge.")


def test_a_changed_number_day_or_negation_is_another_fact() -> None:
    assert not same_sentence(TREATED, WIRE_TREATED)
    killed = "The explosion at the plant killed {} people and injured dozens more, police said."
    assert not same_sentence(killed.format(12), killed.format(15))
    assert not same_sentence(killed.format("12"), killed.format("fifteen"))
    assert not same_sentence(LEAD, LEAD.replace("Friday", "Thursday"))
    assert not same_sentence(LEAD, LEAD.replace("forced", "did not force"))
    assert not same_sentence(LEAD, LEAD.replace("two hundred", "three hundred"))


def test_short_or_much_changed_sentences_match_only_word_for_word() -> None:
    assert not same_sentence("He said no.", "She said yes.")
    assert not same_sentence("The bridge will close soon.", "The bridge will shut soon.")
    assert same_sentence("He said no.", "he said  no")
    assert not same_sentence("", "") and not same_sentence("—", "…")
    rewritten = (
        "Fire officials said more than two hundred homes on the edge of Port Ellis were "
        "evacuated on Friday night after a blaze at a timber warehouse."
    )
    assert not same_sentence(LEAD, rewritten)  # rewritten, not lightly edited: its own quote


def test_matching_span_prefers_the_exact_words_then_the_nearest() -> None:
    records = reworded()
    valley = article(records[1])
    spans = [(m, m + len(p)) for p in valley.text.split("\n\n") for m in [valley.text.find(p)]]
    start, end = matching_span(LEAD, valley, spans) or (0, 0)
    assert valley.text[start:end] == VALLEY_LEAD
    one_word = LEAD.replace("forced", "prompted")
    tripled = Article(id="d", title="", text=f"{WIRE_LEAD}\n\n{one_word}\n\n{LEAD}")
    spans = [(m, m + len(p)) for p in tripled.text.split("\n\n") for m in [tripled.text.find(p)]]
    start, end = matching_span(LEAD, tripled, spans) or (0, 0)
    assert tripled.text[start:end] == LEAD
    start, end = matching_span(LEAD, tripled, spans[:2]) or (0, 0)
    assert tripled.text[start:end] == one_word  # one word changed, nearer than two
    wire = article(records[2])
    spans = [(m, m + len(p)) for p in wire.text.split("\n\n") for m in [wire.text.find(p)]]
    assert matching_span(TREATED, wire, spans) is None  # 15 people treated, not 12


@pytest.fixture(scope="module")
def reworded_index(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_index("reworded", reworded(), embedder, tmp_path_factory)


def test_a_reworded_lead_is_cited_once_with_the_copies_marked(
    reworded_index: Path, embedder: Embedder
) -> None:
    manifest = read_manifest(reworded_index)
    assert manifest is not None and set(manifest.duplicates.values()) == {"fire-coast"}
    answer, reader = ask(
        reworded_index, embedder, "What forced the evacuation of homes in Port Ellis?"
    )
    assert not answer.abstained
    assert_exact_citations(answer, reader.articles)
    quoted = [c for c in answer.citations if c.text in (LEAD, VALLEY_LEAD, WIRE_LEAD)]
    assert len(quoted) == 1, answer.citations  # not [1] from one outlet, [2] from another
    cited = quoted[0]
    assert cited.article_id == "fire-coast" and cited.text == LEAD
    assert [(a.article_id, a.text, a.reworded) for a in cited.also] == [
        ("fire-valley", VALLEY_LEAD, True),
        ("fire-wire", WIRE_LEAD, True),
    ]
    for copy in cited.also:
        assert reader.articles[copy.article_id].text[copy.start : copy.end] == copy.text
    for a, b in itertools.combinations(answer.sentences, 2):
        assert not same_sentence(a.text, b.text), answer.answer

    shown = render(answer)
    assert (
        "also reported by: Valley Post (2024-03-03, reworded), Daily Wire (2024-03-03, reworded)"
        in " ".join(shown.split())
    )


def test_copies_giving_different_numbers_are_quoted_side_by_side(
    reworded_index: Path, embedder: Embedder
) -> None:
    answer, reader = ask(
        reworded_index, embedder, "How many people were treated for smoke inhalation?"
    )
    assert_exact_citations(answer, reader.articles)
    by_text = {c.text: c for c in answer.citations}
    assert TREATED in by_text and WIRE_TREATED in by_text, answer.citations
    twelve, fifteen = by_text[TREATED], by_text[WIRE_TREATED]
    assert twelve.article_id == "fire-coast" and fifteen.article_id == "fire-wire"
    assert [(a.article_id, a.reworded) for a in twelve.also] == [("fire-valley", False)]
    assert fifteen.also == []  # no other copy says 15
    assert any(note.startswith("Sources disagree") for note in answer.notes), answer.notes


def test_copies_saying_the_same_words_are_not_marked_reworded(
    syndicated_index: Path, embedder: Embedder
) -> None:
    answer, _ = ask(syndicated_index, embedder, "How long will the harbour bridge close?")
    cited = next(c for c in answer.citations if same_sentence(c.text, ANSWER))
    assert cited.also and not any(a.reworded for a in cited.also)
    assert "reworded" not in render(answer)
