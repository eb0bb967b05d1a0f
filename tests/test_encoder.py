"""Our forward pass (index.encoder) against sentence-transformers, the reference it replaces."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.demo import DEMO_DIR
from index.embed import Embedder, ModelNotAvailable, model_location
from index.modeldir import UnsupportedModel
from newsdesk.settings import EmbeddingSettings

BUNDLED = Path(model_location("all-MiniLM-L6-v2"))


# The reference is sentence-transformers itself, whose import and load take ~7-11 s:
# its tests run in `make test`, not in the inner loop (`make check`).
reference_tier = pytest.mark.slow


@pytest.fixture(scope="module")
def reference() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(BUNDLED), device="cpu", local_files_only=True)


def texts() -> list[str]:
    lines = (DEMO_DIR / "wikinews.jsonl").read_text(encoding="utf-8").splitlines()
    articles = [json.loads(line)["text"] for line in lines[:12]]  # long: cut at the window
    return [*articles, "What did the Secretary General warn about?", "  spaced  ", "ok"]


@reference_tier
def test_vectors_match_sentence_transformers(embedder: Embedder, reference: Any) -> None:
    ours = embedder.embed(texts(), truncation_ok=True)
    theirs = reference.encode(texts(), normalize_embeddings=True, convert_to_numpy=True)
    assert ours.dtype == np.float32 and ours.shape == theirs.shape
    assert (ours * theirs).sum(axis=1).min() > 0.99999
    assert embedder.embed_query(texts()[-3]) == pytest.approx(theirs[-3], abs=1e-5)


@reference_tier
def test_span_sums_are_the_reference_token_vectors(embedder: Embedder, reference: Any) -> None:
    sample = texts()[:3]
    spans = [[(0, 60), (60, 400)]] * len(sample)
    _, sums, counts = embedder.embed_with_spans(sample, spans)
    tokens = reference.encode(sample, output_value="token_embeddings")
    for i, text in enumerate(sample):
        encoded = reference.tokenizer(
            text, truncation=True, max_length=256, return_offsets_mapping=True
        )
        offsets = np.array(encoded["offset_mapping"])
        real = offsets[:, 1] > offsets[:, 0]
        for j, (a, b) in enumerate(spans[i]):
            inside = real & (offsets[:, 0] >= a) & (offsets[:, 0] < b)
            assert counts[i][j] == inside.sum()
            assert sums[i][j] == pytest.approx(tokens[i].numpy()[inside].sum(axis=0), abs=1e-4)


@reference_tier
def test_word_pieces_match_the_reference_tokenizer(embedder: Embedder, reference: Any) -> None:
    text = texts()[0]
    encoded = reference.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assert embedder.token_spans(text) == [tuple(span) for span in encoded["offset_mapping"]]
    assert embedder.count_tokens(texts()) == [
        len(ids) for ids in reference.tokenizer(texts(), add_special_tokens=False)["input_ids"]
    ]
    assert embedder.max_tokens == reference.max_seq_length - 2


def copy_model(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(BUNDLED, model, ignore=shutil.ignore_patterns("*.safetensors"))
    (model / "model.safetensors").symlink_to(BUNDLED / "model.safetensors")
    return model


def edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_a_model_it_cannot_run_is_refused_by_name(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    edit_json(model / "config.json", model_type="roberta")
    with pytest.raises(UnsupportedModel, match=r"config\.json: model_type 'roberta'"):
        _ = Embedder(EmbeddingSettings(model=str(model))).model
    edit_json(model / "config.json", model_type="bert")
    edit_json(model / "1_Pooling" / "config.json", pooling_mode_max_tokens=True)
    with pytest.raises(UnsupportedModel, match=r"1_Pooling/config\.json: pooling"):
        _ = Embedder(EmbeddingSettings(model=str(model))).model
    edit_json(model / "1_Pooling" / "config.json", pooling_mode_max_tokens=False)
    (model / "tokenizer.json").unlink()
    with pytest.raises(UnsupportedModel, match=r"tokenizer\.json: missing"):
        Embedder(EmbeddingSettings(model=str(model))).count_tokens(["a"])


def test_a_copied_model_embeds_like_the_bundled_one(tmp_path: Path, embedder: Embedder) -> None:
    copied = Embedder(EmbeddingSettings(model=str(copy_model(tmp_path))))
    assert np.array_equal(copied.embed(texts()[-3:]), embedder.embed(texts()[-3:]))


def test_a_model_name_not_on_this_machine_is_never_downloaded() -> None:
    with pytest.raises(ModelNotAvailable, match="never downloads"):
        model_location("newsdesk-tests/no-such-model")
