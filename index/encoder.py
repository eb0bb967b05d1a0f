"""The embedding model's forward pass in plain torch, and its tokenizer through `tokenizers`.

Why not sentence-transformers: importing it costs about 6 s of CPU in every process on
two cores (transformers' model registry, its loss and generation modules, scikit-learn,
PIL), more than a whole `newsdesk ask` spends on its answer, and every CLI call, chat
worker and Ray worker paid it. The default model, all-MiniLM-L6-v2, is a six-layer
BERT, so its forward pass is a page of torch: this module is that page. Its vectors match
sentence-transformers' to cosine > 0.99999 (tests/test_encoder.py, which keeps
sentence-transformers as the reference).

It reads a sentence-transformers model directory whose transformer is a BERT
(config.json `model_type` "bert": the MiniLM, BGE and E5 families) pooled by mean or by
[CLS]; any other is refused by name rather than embedded wrongly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from tokenizers import Encoding, Tokenizer
from torch import nn

from newsdesk.errors import NewsdeskError

Pooling = Literal["mean", "cls"]


class UnsupportedModel(NewsdeskError, ValueError):
    """The model directory holds something this encoder cannot run."""


@dataclass(frozen=True)
class BertShape:
    """What config.json and the sentence-transformers files say about the model."""

    vocab: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    positions: int
    token_types: int
    eps: float
    pooling: Pooling
    max_length: int  # word-pieces per text, [CLS] and [SEP] included

    @staticmethod
    def read(directory: Path) -> BertShape:
        config = _json(directory / "config.json")
        kind = config.get("model_type")
        if kind != "bert" or config.get("hidden_act", "gelu") != "gelu":
            raise UnsupportedModel(
                f"{directory / 'config.json'}: model_type {kind!r} with hidden_act "
                f"{config.get('hidden_act')!r}; newsdesk embeds with BERT models (gelu), "
                "such as all-MiniLM-L6-v2, bge-small-en or e5-small"
            )
        pooling = _pooling(directory)
        window = int(config["max_position_embeddings"])
        st_config = directory / "sentence_bert_config.json"
        if st_config.exists():
            window = min(window, int(_json(st_config).get("max_seq_length") or window))
        return BertShape(
            vocab=int(config["vocab_size"]),
            hidden=int(config["hidden_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=int(config["num_attention_heads"]),
            intermediate=int(config["intermediate_size"]),
            positions=int(config["max_position_embeddings"]),
            token_types=int(config.get("type_vocab_size", 2)),
            eps=float(config.get("layer_norm_eps", 1e-12)),
            pooling=pooling,
            max_length=min(window, 512),
        )


def _json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UnsupportedModel(f"{path}: missing; is this a sentence-transformers model?") from exc
    except (OSError, ValueError) as exc:
        raise UnsupportedModel(f"{path}: unreadable ({exc})") from exc
    if not isinstance(value, dict):
        raise UnsupportedModel(f"{path}: not a JSON object")
    return value


def _pooling(directory: Path) -> Pooling:
    """Mean pooling unless the model's Pooling module says [CLS]; max or others refused."""
    path = directory / "1_Pooling" / "config.json"
    if not path.exists():
        return "mean"  # sentence-transformers' default for a bare transformer
    config = _json(path)
    modes = sorted(key for key, on in config.items() if key.startswith("pooling_mode_") and on)
    if modes == ["pooling_mode_mean_tokens"]:
        return "mean"
    if modes == ["pooling_mode_cls_token"]:
        return "cls"
    raise UnsupportedModel(f"{path}: pooling {modes}; newsdesk pools by mean or by [CLS] only")


class Layer(nn.Module):
    """One BERT encoder layer: self-attention, then the feed-forward block, each followed
    by a residual sum and LayerNorm (post-norm, as BERT was trained)."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        hidden = shape.hidden
        self.heads = shape.heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_out = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=shape.eps)
        self.intermediate = nn.Linear(hidden, shape.intermediate)
        self.output = nn.Linear(shape.intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=shape.eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=mask
        )
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        x = self.attention_norm(x + self.attention_out(attended))
        return self.output_norm(x + self.output(F.gelu(self.intermediate(x))))


# Hugging Face's parameter names, as the model files store them, and ours.
_RENAMES = (
    ("embeddings.word_embeddings.", "words."),
    ("embeddings.position_embeddings.", "positions."),
    ("embeddings.token_type_embeddings.", "token_types."),
    ("embeddings.LayerNorm.", "embedding_norm."),
    ("attention.self.query.", "query."),
    ("attention.self.key.", "key."),
    ("attention.self.value.", "value."),
    ("attention.output.dense.", "attention_out."),
    ("attention.output.LayerNorm.", "attention_norm."),
    ("intermediate.dense.", "intermediate."),
    ("output.dense.", "output."),
    ("output.LayerNorm.", "output_norm."),
    ("encoder.layer.", "layers."),
)


def _rename(key: str) -> str | None:
    """Our name for a stored parameter; None for what the pass does not use (the
    pooler, the position-id buffer)."""
    key = key.removeprefix("bert.")
    if key.startswith("pooler.") or key.endswith("position_ids"):
        return None
    for old, new in _RENAMES:
        key = key.replace(old, new)
    return key


class Encoder(nn.Module):
    """A sentence-transformers BERT model: word-pieces in, token vectors and the pooled
    sentence vector out (not normalised: the caller normalises in float32)."""

    def __init__(self, shape: BertShape, tokenizer: Tokenizer) -> None:
        super().__init__()
        self.shape = shape
        self.words = nn.Embedding(shape.vocab, shape.hidden)
        self.positions = nn.Embedding(shape.positions, shape.hidden)
        self.token_types = nn.Embedding(shape.token_types, shape.hidden)
        self.embedding_norm = nn.LayerNorm(shape.hidden, eps=shape.eps)
        self.layers = nn.ModuleList(Layer(shape) for _ in range(shape.layers))
        # Two copies, each configured once and never changed, so threads share them
        # without a lock: whole texts for chunking, and model-sized padded batches.
        self.pieces = tokenizer
        self.pieces.no_truncation()
        self.pieces.no_padding()
        self.batches = Tokenizer.from_str(tokenizer.to_str())
        self.batches.enable_truncation(shape.max_length)
        self.batches.enable_padding(pad_id=tokenizer.token_to_id("[PAD]") or 0, pad_token="[PAD]")

    @staticmethod
    def load(directory: Path) -> Encoder:
        shape = BertShape.read(directory)
        tokenizer_file = directory / "tokenizer.json"
        if not tokenizer_file.exists():
            raise UnsupportedModel(f"{tokenizer_file}: missing; newsdesk needs a fast tokenizer")
        encoder = Encoder(shape, Tokenizer.from_file(str(tokenizer_file)))
        stored = {
            name: tensor
            for key, tensor in _weights(directory).items()
            if (name := _rename(key)) is not None
        }
        missing, unexpected = encoder.load_state_dict(stored, strict=False)
        if missing or unexpected:
            raise UnsupportedModel(
                f"{directory}: weights do not fit a BERT of its config.json "
                f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        encoder.eval()
        return encoder

    @property
    def dimension(self) -> int:
        return self.shape.hidden

    @property
    def device(self) -> torch.device:
        return self.words.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.words.weight.dtype

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of `text`'s word-pieces, no [CLS]/[SEP], never truncated."""
        return [(a, b) for a, b in self.pieces.encode(text, add_special_tokens=False).offsets]

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.pieces.encode_batch(texts, add_special_tokens=False)]

    def tokenize(self, texts: list[str]) -> list[Encoding]:
        """Padded to the longest of `texts`, each cut at the model's window."""
        return self.batches.encode_batch(texts)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(token vectors, pooled vector) for a batch of word-piece ids and their mask."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.words(ids) + self.positions(positions) + self.token_types(torch.zeros_like(ids))
        x = self.embedding_norm(x)
        attend = mask.bool()[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attend)
        if self.shape.pooling == "cls":
            return x, x[:, 0]
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return x, pooled


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    safetensors = directory / "model.safetensors"
    if safetensors.exists():
        from safetensors.torch import load_file

        return load_file(str(safetensors))
    legacy = directory / "pytorch_model.bin"
    if legacy.exists():
        loaded: dict[str, torch.Tensor] = torch.load(legacy, map_location="cpu", weights_only=True)
        return loaded
    raise UnsupportedModel(f"{directory}: no model.safetensors or pytorch_model.bin")


def as_arrays(encodings: list[Encoding]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Word-piece ids and attention mask of a padded batch, as (texts, length) arrays."""
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask
