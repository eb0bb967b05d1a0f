"""Follow-up rewriting: which questions lean on earlier ones, and what they carry over."""

from __future__ import annotations

import pytest

from rag.followup import MAX_CONTEXT_WORDS, followup_reason, standalone_question

RUTTE = "What did Mark Rutte say about Ukraine?"
SECRETARY = "What did the Secretary General warn about?"
PERU = "What is the capital of Peru?"


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        # The examples of the brief.
        (
            "and what did Putin say?",
            [SECRETARY],
            "and what did Putin say? (Secretary General, warn)",
        ),
        ("When did he say it?", [RUTTE], "When did he say it? (Mark Rutte, Ukraine)"),
        # Continuations carry context even when they name someone of their own.
        ("What about NATO?", [RUTTE], "What about NATO? (Mark Rutte, Ukraine)"),
        ("how about Russia?", [RUTTE], "how about Russia? (Mark Rutte, Ukraine)"),
        ("Also, did Macron agree?", [RUTTE], "Also, did Macron agree? (Mark Rutte, Ukraine)"),
        ("But why?", [RUTTE], "But why? (Mark Rutte, Ukraine)"),
        ("So what did NATO decide?", [RUTTE], "So what did NATO decide? (Mark Rutte, Ukraine)"),
        # Pronouns and demonstratives with no name to lean on.
        ("What did she announce?", [RUTTE], "What did she announce? (Mark Rutte, Ukraine)"),
        ("Why did they refuse?", [RUTTE], "Why did they refuse? (Mark Rutte, Ukraine)"),
        (
            "What did he say about NATO?",
            [RUTTE],
            "What did he say about NATO? (Mark Rutte, Ukraine)",
        ),
        ("Why did that happen?", [RUTTE], "Why did that happen? (Mark Rutte, Ukraine)"),
        ("Who else was there?", [RUTTE], "Who else was there? (Mark Rutte, Ukraine)"),
        # A pronoun after a preposition points back even when the question names someone.
        (
            "What did Putin say about it?",
            ["What did the Bank of England decide on interest rates?"],
            "What did Putin say about it? (Bank of England, decide, interest, rates)",
        ),
        # Words that compare with something said before.
        ("Did Macron say the same?", [RUTTE], "Did Macron say the same? (Mark Rutte, Ukraine)"),
        ("Did Macron agree too?", [RUTTE], "Did Macron agree too? (Mark Rutte, Ukraine)"),
        # Ellipsis.
        ("why?", [RUTTE], "why? (Mark Rutte, Ukraine)"),
        ("When?", [RUTTE], "When? (Mark Rutte, Ukraine)"),
        ("how many?", [RUTTE], "how many? (Mark Rutte, Ukraine)"),
        ("What happened next?", [RUTTE], "What happened next? (Mark Rutte, Ukraine)"),
        # Short and nameless: a bare topic, or a question about "the" something.
        ("Ukraine?", ["What did Mark Rutte say about Russia?"], "Ukraine? (Mark Rutte, Russia)"),
        ("What was the outcome?", [PERU], "What was the outcome? (Peru, capital)"),
        ("How many people died?", [PERU], "How many people died? (Peru, capital)"),
        # Quoted phrases and numbers come along, most salient first.
        (
            "why?",
            ['Why did Rutte call 2024 "a turning point" for NATO?'],
            'why? ("a turning point", Rutte, NATO, 2024, call)',
        ),
        # Words already in the question are not repeated.
        ("Why did he warn?", [SECRETARY], "Why did he warn? (Secretary General)"),
        ("Did he mean Ukraine?", [RUTTE], "Did he mean Ukraine? (Mark Rutte)"),
        # Surrounding whitespace of a follow-up goes.
        ("  why?  ", [RUTTE], "why? (Mark Rutte, Ukraine)"),
    ],
)
def test_follow_ups_carry_the_previous_context(
    question: str, history: list[str], expected: str
) -> None:
    assert standalone_question(question, history) == expected


@pytest.mark.parametrize(
    "question",
    [
        PERU,
        RUTTE,
        "Who is Mark Rutte?",
        "Why did Rutte warn?",  # names its own subject
        "What did the European Central Bank decide about interest rates in 2023?",
        "What is inflation?",
        "What is a recession?",
        "What does inflation mean?",
        "Did Rutte say he would resign?",  # the pronoun follows the name it refers to
        "Is NATO ready and can it respond?",
        "Is it true that NATO expanded?",  # dummy "it", and "that" opening a clause
        "Was there a ceasefire in Gaza?",  # existential "there"
        'What does "net zero" mean for Shell?',
        "Where is Mark Rutte's office?",
        "What did the central bank decide about interest rates and mortgages?",
    ],
)
@pytest.mark.parametrize("history", [[], [RUTTE], [SECRETARY, RUTTE]])
def test_standalone_questions_come_back_unchanged(question: str, history: list[str]) -> None:
    assert followup_reason(question) is None
    assert standalone_question(question, history) == question


@pytest.mark.parametrize("question", ["why?", "When did he say it?", "and Putin?", "What else?"])
@pytest.mark.parametrize("history", [[], [""], ["   ", "\n"]])
def test_nothing_to_carry_without_history(question: str, history: list[str]) -> None:
    assert standalone_question(question, history) == question


@pytest.mark.parametrize(
    "history",
    [
        ["What is?"],  # nothing but stopwords
        ["why?", "how?"],
        ["??"],
    ],
)
def test_follow_up_of_a_contentless_history_is_unchanged(history: list[str]) -> None:
    assert standalone_question("When did he say it?", history) == "When did he say it?"


@pytest.mark.parametrize("question", ["", " ", "\n\t  ", "\u00a0"])
@pytest.mark.parametrize("history", [[], [RUTTE]])
def test_blank_question_comes_back_stripped(question: str, history: list[str]) -> None:
    assert standalone_question(question, history) == ""


def test_punctuation_only_question_is_left_to_the_caller() -> None:
    assert standalone_question("?", [RUTTE]) == "?"


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("and what did Putin say?", "continuation"),
        ("What about NATO?", "continuation"),
        ("When did he say it?", "reference"),
        ("What did Putin say about it?", "reference"),
        ("What\u2019s that?", "reference"),
        ("What else did Rutte say?", "relative"),
        ("Did Macron agree as well?", "relative"),
        ("why?", "ellipsis"),
        ("WHY?", "ellipsis"),
        ("How many?", "ellipsis"),
        ("Who won the election?", "short"),
        ("Ukraine?", "short"),
        (PERU, None),
        ("What is inflation?", None),
        ("NATO?", None),  # all capitals: no way to tell a name from shouting
        ("", None),
    ],
)
def test_each_rule_is_named(question: str, reason: str | None) -> None:
    assert followup_reason(question) == reason


def test_only_the_latest_topic_is_carried() -> None:
    history = [RUTTE, PERU]
    assert standalone_question("What was the population?", history) == (
        "What was the population? (Peru, capital)"
    )


def test_raw_follow_up_in_history_reaches_back_one_more_turn() -> None:
    # A caller passing the questions as asked, not as rewritten.
    history = [RUTTE, "When did he say it?"]
    assert standalone_question("Why?", history) == "Why? (Mark Rutte, Ukraine)"


def test_never_reaches_back_more_than_two_turns() -> None:
    history = [RUTTE, "why?", "when?"]
    assert standalone_question("how?", history) == "how?"


def test_context_is_capped() -> None:
    long = (
        "What did Mark Rutte, Ursula von der Leyen, Emmanuel Macron, Olaf Scholz and "
        "Giorgia Meloni agree in Brussels in 2024 about sanctions, tariffs and energy prices?"
    )
    rewritten = standalone_question("why?", [long])
    carried = rewritten.removeprefix("why? (").removesuffix(")")
    assert rewritten.startswith("why? (Mark Rutte, Ursula von der Leyen, Emmanuel Macron")
    assert len(carried.split()) <= MAX_CONTEXT_WORDS


def test_a_ten_turn_conversation_does_not_grow() -> None:
    first = 'What did NATO chief Mark Rutte call "burden sharing" at the 2025 summit in The Hague?'
    turns = [
        first,
        "why?",
        "and what did Putin say?",
        "When did he say it?",
        "how about Macron?",
        "what else?",
        "Did Scholz agree too?",
        "Why did they refuse?",
        "how many?",
        "and then?",
    ]
    history: list[str] = []
    for question in turns:
        rewritten = standalone_question(question, history)
        assert rewritten.startswith(question)
        assert len(rewritten.split()) <= len(question.split()) + MAX_CONTEXT_WORDS
        history.append(rewritten)
    assert history[0] == first
    # The original names survive pronoun and ellipsis turns by riding on the rewrites.
    assert "Mark Rutte" in history[3]
    assert "Putin" in history[3]
    assert "Macron" in history[5]


@pytest.mark.parametrize(
    ("question", "history", "expected"),
    [
        # Curly quotes are carried as straight ones; curly apostrophes are apostrophes.
        (
            "why?",
            ["What did Rutte\u2019s deputy call \u201ca turning point\u201d?"],
            'why? ("a turning point", Rutte, deputy, call)',
        ),
        (
            "why?",
            ["What did Rutte mean by \u2018burden sharing\u2019?"],
            'why? ("burden sharing", Rutte)',
        ),
        # Only English stopwords are known: "hat", "gesagt" and "Qu'a" ride along.
        (
            "why?",
            ["Was hat Scholz \u201ezur Lage\u201c gesagt?"],
            'why? ("zur Lage", Scholz, hat, gesagt)',
        ),
        (
            "why?",
            ["Qu\u2019a dit Macron \u00ab sur l\u2019Ukraine \u00bb ?"],
            'why? ("sur l\u2019Ukraine", Macron, Qu\u2019a, dit)',
        ),
        # Names with non-ASCII capitals.
        (
            "When did he arrive?",
            ["Did Recep Tayyip Erdo\u011fan meet \u0160imon in \u0130stanbul?"],
            "When did he arrive? (Recep Tayyip Erdo\u011fan, \u0160imon, \u0130stanbul, meet)",
        ),
        # Apostrophes are not mistaken for quotes.
        ("why?", ["What's in Rutte's plan?"], "why? (Rutte, plan)"),
        # A curly apostrophe in the question still splits the contraction.
        ("What\u2019s he said?", [RUTTE], "What\u2019s he said? (Mark Rutte, Ukraine)"),
    ],
)
def test_unicode_quotes_and_names(question: str, history: list[str], expected: str) -> None:
    assert standalone_question(question, history) == expected


def test_scripts_without_case_are_left_alone() -> None:
    assert standalone_question("\u4ed6\u8bf4\u4e86\u4ec0\u4e48", [RUTTE]) == (
        "\u4ed6\u8bf4\u4e86\u4ec0\u4e48"
    )


def test_rewriting_is_deterministic() -> None:
    outputs = {standalone_question("When did he say it?", [SECRETARY, RUTTE]) for _ in range(5)}
    assert outputs == {"When did he say it? (Mark Rutte, Ukraine)"}


def test_pathological_input_stays_fast() -> None:
    import time

    noisy = "' a \u2018b " * 3000
    began = time.perf_counter()
    standalone_question(noisy, [noisy])
    assert time.perf_counter() - began < 2.0
