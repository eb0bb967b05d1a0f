"""The numpy forward pass (index.npencoder) against the torch one (index.encoder), the
reference it stands in for on small jobs, with the real bundled model."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.demo import DEMO_DIR
from index.embed import LIGHT_TEXTS, Embedder
from index.modeldir import UnsupportedModel, as_arrays
from index.npencoder import NumpyEncoder, erf, gelu
from newsdesk.settings import EmbeddingSettings
from tests.test_encoder import copy_model, edit_json


@pytest.fixture(scope="module")
def light(embedder: Embedder) -> NumpyEncoder:
    return NumpyEncoder.load(embedder.location, embedder.shape)


def texts() -> list[str]:
    lines = (DEMO_DIR / "wikinews.jsonl").read_text(encoding="utf-8").splitlines()
    long = [json.loads(line)["text"] for line in lines[:2]]  # past the window: cut at 256
    return [
        *long,
        "What did the Secretary General warn about?",
        "Москва заявила о новых санкциях против Киева.",  # noqa: RUF001
        "北京今天发布了新的空气质量报告。",
        "وقال الأمين العام إن الوضع خطير",
        "",
        "  ",
        "?",
        "ok",
    ]


def unit(vectors: np.ndarray) -> np.ndarray:
    result: np.ndarray = vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)
    return result


def passes(embedder: Embedder, light: NumpyEncoder, batch: list[str]) -> tuple[np.ndarray, ...]:
    """Token vectors and pooled vectors of one padded batch, from both passes."""
    import torch

    ids, mask = as_arrays(embedder.pieces.batch(batch))
    with torch.inference_mode():
        tokens, pooled = embedder.model(torch.from_numpy(ids), torch.from_numpy(mask))
    ours_tokens, ours_pooled = light(ids, mask)
    assert ours_tokens.dtype == ours_pooled.dtype == np.float32
    real = mask.astype(bool)
    return ours_tokens[real], tokens.numpy()[real], ours_pooled, pooled.numpy()


def test_erf_and_gelu_match_the_math_library() -> None:
    grid = np.concatenate([np.linspace(-12, 12, 240_001), [0.0, 0.46875, -0.46875, 4.0, 6.0]])
    exact = np.array([math.erf(x) for x in grid])
    assert np.abs(erf(grid) - exact).max() < 1e-10
    assert erf(np.array([-np.inf, np.inf, 1e300])).tolist() == [-1.0, 1.0, 1.0]
    inputs = np.linspace(-20, 20, 40_001, dtype=np.float32)
    exact_gelu = np.array([0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in inputs.tolist()])
    # float32 out: within half a float32 step of the exact value, and a quarter of a
    # millionth near zero, where the step is smaller than the erf's own rounding
    error = np.abs(gelu(inputs) - exact_gelu)
    assert (error <= np.maximum(np.abs(exact_gelu) * 2.0**-24, 1e-7)).all()


def test_one_text_at_a_time_matches_torch(embedder: Embedder, light: NumpyEncoder) -> None:
    for text in texts():
        ours_tokens, tokens, ours, theirs = passes(embedder, light, [text])
        assert float(unit(ours)[0] @ unit(theirs)[0]) > 0.99999, text
        assert np.abs(ours_tokens - tokens).max() < 1e-4, text


def test_a_padded_batch_matches_torch(embedder: Embedder, light: NumpyEncoder) -> None:
    """Lengths from 2 word-pieces to the whole window in one batch: the padding is
    masked out of attention and pooling, so each row is what it is alone."""
    batch = texts()
    ours_tokens, tokens, ours, theirs = passes(embedder, light, batch)
    assert ((unit(ours) * unit(theirs)).sum(axis=1) > 0.99999).all()
    assert np.abs(ours_tokens - tokens).max() < 1e-4
    alone = np.stack([passes(embedder, light, [text])[2][0] for text in batch])
    assert ((unit(ours) * unit(alone)).sum(axis=1) > 0.99999).all()


# Embeds in a process that has not imported torch, so the Embedder takes the numpy pass,
# then prints the vectors (and says whether torch got imported after all).
EMBED_WITHOUT_TORCH = """
import json, sys
from index.embed import LIGHT_TEXTS, Embedder
from newsdesk.settings import EmbeddingSettings
texts = json.loads(sys.argv[1])
embedder = Embedder(EmbeddingSettings())
query = embedder.embed_query(texts[0])
vectors, sums, counts = embedder.embed_with_spans(texts, [[(0, 5), (5, 40)]] * len(texts))
print(json.dumps({
    "query": query.tolist(), "vectors": vectors.tolist(),
    "sums": [s.tolist() for s in sums], "counts": [c.tolist() for c in counts],
    "light": "light_model" in vars(embedder), "torch": "torch" in sys.modules,
}))
"""


@pytest.mark.process
def test_the_embedder_takes_the_numpy_pass_without_torch(embedder: Embedder) -> None:
    """What a question and an update's few chunks get when torch is not loaded: the
    numpy pass, with the torch pass's vectors, span sums and counts."""
    sample = texts()[:5]
    result = subprocess.run(
        [sys.executable, "-c", EMBED_WITHOUT_TORCH, json.dumps(sample)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["light"] and not found["torch"]
    vectors, sums, counts = embedder.embed_with_spans(sample, [[(0, 5), (5, 40)]] * len(sample))
    assert (np.array(found["vectors"]) * vectors).sum(axis=1).min() > 0.99999
    assert float(np.array(found["query"]) @ embedder.embed_query(sample[0])) > 0.99999
    assert np.array(found["counts"]) == pytest.approx(np.array(counts))
    assert np.array(found["sums"]) == pytest.approx(np.array(sums), abs=1e-3)


def test_when_the_numpy_pass_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small float32 jobs on the CPU, from safetensors, while torch is not loaded."""

    def light(count: int, index: bool, model: str = "all-MiniLM-L6-v2", **placed: str) -> bool:
        settings = EmbeddingSettings(model=model, **({"device": "cpu"} | placed))
        return Embedder(settings).light(count, index=index)

    assert "torch" in sys.modules  # the session's embedder: everything runs through torch
    assert not light(1, index=False)
    monkeypatch.delitem(sys.modules, "torch")
    assert light(1, index=False) and light(LIGHT_TEXTS, index=True)
    assert not light(LIGHT_TEXTS + 1, index=True)
    assert light(1, index=False, dtype="int8")  # questions stay float32 under int8
    assert not light(1, index=True, dtype="int8")  # an int8 index write stays int8
    assert not light(1, index=False, dtype="bfloat16")
    legacy = copy_model(tmp_path)
    (legacy / "model.safetensors").unlink()  # as if it held pytorch_model.bin only
    assert not light(1, index=False, model=str(legacy))


def test_weights_that_do_not_fit_are_refused_by_name(tmp_path: Path) -> None:
    model = copy_model(tmp_path)
    edit_json(model / "config.json", hidden_size=768)
    shape = Embedder(EmbeddingSettings(model=str(model))).shape
    with pytest.raises(UnsupportedModel, match=r"do not fit .* wrong shape \['embedding_norm"):
        NumpyEncoder.load(model, shape)
    with pytest.raises(UnsupportedModel, match="do not fit"):
        _ = Embedder(EmbeddingSettings(model=str(model))).model


def test_the_numpy_model_is_let_go_once_torch_loads() -> None:
    """After a big job loads torch every pass goes through it (`light`), so the numpy
    copy of the weights (~90 MB) would only be held."""
    embedder = Embedder(EmbeddingSettings(device="cpu"))
    _ = embedder.light_model
    _ = embedder.model
    assert "light_model" not in vars(embedder)
