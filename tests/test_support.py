"""The support check on hand-labelled pairs, and its parts.

Two sets (eval/support_check.py): tests/data/support_pairs.jsonl, 90 pairs, is the
calibration set only: rag.support's thresholds were chosen on it, so its figures are
in-sample and gate nothing here. The gate is tests/data/support_heldout.jsonl: pairs over
articles the calibration never saw, each claim judged against the whole index chunk it
cites, as rag.generate judges a generated sentence against the retrieved chunk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eval.support_check import HELDOUT, LABELS, PAIRS, chunk_of, judged, load_pairs, scores
from index.embed import Embedder
from index.reader import IndexReader
from rag.answer import ExtractiveAnswerer
from rag.llm_backend import LlmNotConfigured
from rag.support import Evidence, NliModel, Thresholds, facts, judge
from tests.conftest import make_settings


@pytest.fixture(scope="module")
def heldout(demo_index: Path, embedder: Embedder) -> dict[str, Any]:
    settings = make_settings(demo_index)
    answerer = ExtractiveAnswerer(IndexReader(settings, embedder), settings)
    pairs = load_pairs(HELDOUT)
    (verdicts,) = judged(pairs, answerer, [Thresholds()], whole_chunk=True)
    return scores(pairs, verdicts)


def test_the_labelled_pairs_are_well_formed_and_the_sets_kept_apart() -> None:
    calibration, held = load_pairs(PAIRS), load_pairs(HELDOUT)
    assert len(calibration) == 90 and len(held) >= 60
    for pairs in (calibration, held):
        assert {p.label for p in pairs} == set(LABELS)
        assert len({p.id for p in pairs}) == len(pairs)
    assert not {p.article_id for p in calibration} & {p.article_id for p in held}


@pytest.mark.slow
def test_every_held_out_pair_cites_a_whole_chunk_of_the_demo_index(
    demo_index: Path, embedder: Embedder
) -> None:
    """The held-out labels were judged against these exact chunks: if the demo collection
    is chunked differently, the offsets (and the labels) must be checked again."""
    reader = IndexReader(make_settings(demo_index), embedder)
    for pair in load_pairs(HELDOUT):
        chunk = chunk_of(pair, reader)
        assert (chunk.start, chunk.end) == (pair.start, pair.end), pair.id


@pytest.mark.slow
def test_the_check_meets_its_floors_on_the_held_out_pairs(heldout: dict[str, Any]) -> None:
    """Floors a little under the held-out figures (docs/support-check.md): a change that
    makes the check worse on text it was not tuned on fails here. Measured with the
    calibrated thresholds: accuracy 0.62, supported precision 0.962 and recall 0.61,
    unsupported recall 0.683, 1 of 41 unsupported shown as supported."""
    assert heldout["accuracy"] >= 0.58
    assert heldout["supported_precision"] >= 0.9
    assert heldout["supported_recall"] >= 0.55
    assert heldout["unsupported_recall"] >= 0.63
    assert heldout["unsupported_shown_as_supported"] <= 3


def test_facts_normalise_numbers_and_find_names() -> None:
    found = facts("On Monday, Mark Rutte said two of the 1,200 troops left Brussels.")
    assert found["number"] == {"2", "1200"}
    assert {"monday", "mark", "rutte", "brussels"} <= found["name"]
    assert "on" not in found["name"]  # a capital only because it starts the sentence


# --- a configured NLI model ----------------------------------------------------------------


def nli_model(directory: Path, verdict: str, labels: tuple[str, ...]) -> Path:
    """A real CrossEncoder directory whose classifier always says `verdict`: a tiny BERT
    with the bundled model's tokenizer, its head's bias set. It stands in for the NLI
    model a user would configure (none ships, and nothing may be downloaded)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from index.embed import model_location

    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64, num_labels=len(labels),
        id2label=dict(enumerate(labels)), label2id={name: i for i, name in enumerate(labels)},
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(
            torch.tensor([8.0 if name == verdict else 0.0 for name in labels])
        )
    model.save_pretrained(directory)
    AutoTokenizer.from_pretrained(model_location("all-MiniLM-L6-v2")).save_pretrained(directory)
    return directory


NLI_LABELS = ("contradiction", "entailment", "neutral")


def evidence(text: str) -> list[Evidence]:
    return [Evidence("a", 0, len(text), text, None)]


def test_a_configured_nli_model_decides_support(tmp_path: Path) -> None:
    passage = "The council approved the budget on Monday."
    reversed_claim = "The council rejected the budget on Monday."
    vector = np.zeros(384, dtype=np.float32)
    # Overlap alone passes the reversed claim: it shares every term and name.
    assert judge(reversed_claim, vector, evidence(passage)).verdict != "unsupported"
    contradicts = NliModel(str(nli_model(tmp_path / "c", "contradiction", NLI_LABELS)))
    assert (
        judge(reversed_claim, vector, evidence(passage), nli=contradicts).verdict == "unsupported"
    )
    entails = NliModel(str(nli_model(tmp_path / "e", "entailment", NLI_LABELS)))
    assert judge(reversed_claim, vector, evidence(passage), nli=entails).verdict == "supported"
    # Facts still count: a date the passage does not have keeps it at most partial.
    claim = "The council approved the budget on Friday."
    assert judge(claim, vector, evidence(passage), nli=entails).verdict != "supported"


def test_a_model_that_is_not_nli_is_refused(tmp_path: Path) -> None:
    path = nli_model(tmp_path / "s", "positive", ("negative", "positive"))
    with pytest.raises(LlmNotConfigured, match="not an NLI model"):
        NliModel(str(path))
    with pytest.raises(LlmNotConfigured, match="never downloads"):
        NliModel("some/nli-model-not-here")
