"""Words: the one module that cuts text into words, with the stopwords and number words.

The cuts serve different ends and are relied on exactly as they are, so they stay
separate functions here rather than one tokeniser with options:

- `tokenize`: BM25 terms (folded, stopped, Snowball-stemmed), for the keyword index and
  term coverage. Its terms are stored on disk in keyword segments: any change that
  alters a token must bump `TOKENIZER`, so indexes built before are rebuilt.
- `words`: plain word tokens with case and width forgotten, for telling copies of a
  story apart from rewrites (`index.dedupe`).
- `WORD`, `NUMBER`, `numbers_in`: words and numbers as written, with offsets, for the
  facts of a claim and the values sources disagree on (`rag.support`, `rag.conflicts`).
- `question_tokens`: a question's words with clitics cut off and their positions, for
  reading follow-up questions (`rag.followup`).

There are two stopword lists because they answer different questions.
`TERM_STOPWORDS` (NLTK's) says which words are too common to be a search term or a
name; it decides the BM25 terms stored in every index, so it changes only with
`TOKENIZER`. `QUESTION_STOPWORDS` says which words of a question carry no topic; it is
wider ("said", "tell", "happen", "many" frame a question, they are not its subject)
and can change without touching any index.

`index` is the bottom layer, so every layer may import this.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

# --- Stopwords (two lists: see the module docstring) ----------------------------

# NLTK's English list in apostrophe-free form (tokens lose their apostrophes before the
# check), minus "won" (news questions ask who won far more often than they say "won't"),
# plus "us", which survives when written as the acronym "US" / "U.S.".
# Question words (what/who/when/how) are included because they match everything.
TERM_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against ain all am an and any are aren arent as at be
    because been before being below between both but by can couldn couldnt d did didn
    didnt do does doesn doesnt doing don dont down during each few for from further had
    hadn hadnt has hasn hasnt have haven havent having he her here hers herself him
    himself his how i if in into is isn isnt it its itself just ll m ma me mightn mightnt
    more most mustn mustnt my myself needn neednt no nor not now o of off on once only or
    other our ours ourselves out over own re s same shan shant she shes should shouldve
    shouldn shouldnt so some such t than that thatll the their theirs them themselves
    then there these they this those through to too under until up us ve very was
    wasn wasnt we were weren werent what when where which while who whom why will with wont
    wouldn wouldnt y you youd youll your youre yours yourself yourselves youve
    """.split()  # noqa: SIM905 - a word list reads better as prose
)


# Words that carry no topic: question words, auxiliaries, pronouns, determiners,
# prepositions, conjunctions, and verbs that every question about a statement uses.
# Contractions are split before look-up, so "didn't" arrives as "did" and "can't" as "ca".
QUESTION_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against all also although am among an and another any
    anyone anything are around as at be because been before being below besides
    between both but by ca can cannot could d did do does doing done down during each
    either else e.g. etc even ever every exactly few for from further get gets got had
    has have having he her here hers herself him himself his how however i i.e. if in
    instead into is it its itself just know later least less let like ll m many may me
    might more most much must my myself neither next no nor not now of off often on
    once one only or other our ours ourselves out over own per please plus precisely
    quite rather re really regarding s said same say saying says shall she should since
    so some someone something specifically still such t tell tells than that the their
    theirs them themselves then there these they thing things think this those though
    through thus to told too toward towards under until up upon us ve very via was we
    were what whatever when whenever where whereas whether which while who whom whose
    why will with within without wo would yet you your yours yourself yourselves
    happen happened happens mean meant means make made go going
    """.split()  # noqa: SIM905 - a word list reads better as prose
)


# --- Numbers -------------------------------------------------------------------

_SMALL_NUMBERS = """zero one two three four five six seven eight nine ten eleven twelve
    thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"""
NUMBER_WORDS: dict[str, str] = {word: str(n) for n, word in enumerate(_SMALL_NUMBERS.split())}
"""Small numbers in words and as digits, so "two" and "2" meet."""

# Words as written: a letter first, then letters, digits, inner apostrophes and hyphens.
WORD = re.compile(r"[^\W\d_][\w'-]*")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers_in(text: str) -> list[tuple[int, str]]:
    """(offset, value) of every number in the text, in order: "1,200" as "1200" and
    "two" as "2", so one value written two ways is one value."""
    found = [(m.start(), m.group(0).replace(",", "")) for m in NUMBER.finditer(text)]
    found += [
        (m.start(), NUMBER_WORDS[m.group(0).casefold()])
        for m in WORD.finditer(text)
        if m.group(0).casefold() in NUMBER_WORDS
    ]
    return sorted(found)


# --- BM25 terms ---------------------------------------------------------------

# Bump whenever tokenize() changes in a way that alters tokens: indexes built with an
# older tokenizer are then refused at load (and rebuilt) rather than half-matching.
TOKENIZER = "newsdesk-1/snowball-english"

_STEMMER_ALGORITHM = "english"
_MAX_TOKEN_CHARS = 40

_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_LETTER = r"[^\W\d_]"
_THOUSANDS_RE = re.compile(rf"\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?{_LETTER}*")
# U+0300-U+036F are the accents NFKD splits off Latin, Greek and Cyrillic letters; other
# scripts' combining marks (Devanagari vowel signs, Arabic harakat...) are part of the
# spelling and are left alone.
_ACCENTS_RE = re.compile(r"[\u0300-\u036f]+")
# Letters with no decomposition that people still type without the stroke; apostrophe
# look-alikes (curly quotes, primes) so both spellings of "Obama's" are one token.
_FOLD = str.maketrans(
    {
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "ð": "d",
        "Ð": "D",
        "þ": "th",
        "Þ": "Th",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "\u0131": "i",
        "\u2019": "'",
        "\u2018": "'",
        "\u02bc": "'",
        "\u2032": "'",
        "`": "'",
    }
)

_local = threading.local()


def tokenize(text: str) -> list[str]:
    """Terms for BM25; documents and queries must go through this same function.

    Case, accents and apostrophe style are folded so "Zürich"/"Zurich" and curly/straight
    "Obama's" meet; numbers stay (questions ask about years and counts) with thousands
    separators dropped; stopwords go, except when written as an acronym ("U.S.", "US",
    "WHO"), since those are names, not filler; the rest is Snowball-stemmed so "warned"
    finds "warning".
    """
    terms: list[str] = []
    for acronym, number, cjk, word in _token_re().findall(_fold(text)):
        if word:
            term = word.casefold()
            if "'" in term:
                term = term.removesuffix("'s").replace("'", "")
            if term in TERM_STOPWORDS and not (len(word) > 1 and word.isupper()):
                continue
        elif number:
            term = number.replace(",", "") if _THOUSANDS_RE.fullmatch(number) else number
            if "," in term:
                terms.extend(part.casefold() for part in term.split(",") if part)
                continue
            term = term.casefold()
        elif acronym:
            term = acronym.replace(".", "").casefold()
        else:
            term = cjk
        if term and len(term) <= _MAX_TOKEN_CHARS:
            terms.append(term)
    return _stemmer().stemWords(terms) if terms else terms


@functools.cache
def _token_re() -> re.Pattern[str]:
    """The token pattern, built on first use because it needs a scan of the Unicode table.

    Python's \\w leaves out combining marks, which would cut Hindi, Thai or Arabic words
    at every vowel sign, so the word pattern adds every mark of the Basic Multilingual
    Plane. CJK has no spaces between words, so each ideograph or kana is its own term.
    """
    marks = "".join(
        re.escape(chr(cp)) for cp in range(0x10000) if unicodedata.category(chr(cp)).startswith("M")
    )
    letter = rf"[^\W_{_CJK}]"
    # Possessive (Python 3.11+): a word never needs to give characters back, and not
    # backtracking makes the pattern about a third faster.
    word = rf"(?:{letter}++[{marks}]*+)++"
    return re.compile(
        rf"""
        (?P<acronym>{_LETTER}\.(?:{_LETTER}\.)*{_LETTER}\.?(?![^\W_]))  # U.S., U.K, a.m.
        | (?P<number>\d+(?:[.,]\d+)*(?:{_LETTER}+)?)                    # 1,000 3.5 1990s 20th
        | (?P<cjk>[{_CJK}])                                             # one ideograph/kana each
        | (?P<word>{word}(?:'{word})*)                                  # don't, O'Neill, Zürich
        """,
        re.VERBOSE,
    )


def _fold(text: str) -> str:
    """Compatibility-normalise (ligatures, full-width forms) and strip Latin accents."""
    if text.isascii():
        return text.replace("`", "'")
    decomposed = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return unicodedata.normalize("NFC", _ACCENTS_RE.sub("", decomposed))


def _stemmer() -> Any:
    """A stemmer per thread: PyStemmer objects are not safe to share between threads."""
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no stubs

        stemmer = Stemmer.Stemmer(_STEMMER_ALGORITHM)
        _local.stemmer = stemmer
    return stemmer


# --- Plain words ---------------------------------------------------------------

_PLAIN_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Word tokens with case, width and punctuation forgotten: typographic edits (curly
    quotes, dashes, spacing) are not edits of the story."""
    return _PLAIN_WORD.findall(unicodedata.normalize("NFKC", text).casefold())


# --- Question words ------------------------------------------------------------

_CLITICS = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'"})

# Initialisms ("U.S."), numbers with their unit ("3.5bn", "1990s", "40%"), then words
# with inner hyphens or apostrophes ("COVID-19", "O'Brien", "Rutte's").
_QUESTION_TOKEN = re.compile(
    r"(?:[^\W\d_]\.){2,}"
    r"|\d+(?:[.,:]\d+)*(?:%|[^\W_]*)"
    r"|[^\W_]+(?:[-'\u2019\u02bc][^\W_]+)*"
)


@dataclass(frozen=True, slots=True)
class QuestionToken:
    text: str  # as written, minus any clitic: "Rutte" for "Rutte's"
    base: str  # case-folded and clitic-free, for stopword look-ups and de-duplication
    clitic: str
    start: int
    end: int  # end of `text`, before the clitic, so a possessive breaks a name

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper()

    @property
    def acronym(self) -> bool:
        return len(self.text) >= 2 and self.text.isupper()

    @property
    def number(self) -> bool:
        return self.text[:1].isdigit()

    @property
    def content(self) -> bool:
        return self.base not in QUESTION_STOPWORDS and (len(self.base) > 1 or self.number)


def question_tokens(text: str) -> list[QuestionToken]:
    """The question's words in order, contractions split ("didn't" → "did" + "n't")."""
    tokens = []
    for match in _QUESTION_TOKEN.finditer(text):
        surface = match.group()
        folded = surface.casefold().translate(_APOSTROPHES)
        clitic = next((c for c in _CLITICS if folded.endswith(c) and folded != c), "")
        cut = len(surface) - len(clitic)
        tokens.append(
            QuestionToken(surface[:cut], folded[:cut], clitic, match.start(), match.start() + cut)
        )
    return tokens
