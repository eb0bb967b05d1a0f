"""What a sentence-transformers model directory says, read without torch: the model's
shape (config.json and friends), its parameters' names and shapes, and its word-piece
tokenizer.

Why apart from index.encoder: chunking, token counts and `index status` need only these,
and importing torch costs 2-5 s on two cores; an update whose articles are unchanged, or
whose chunks are only counted, never imports it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from tokenizers import Encoding, Tokenizer

from index.jsonfile import json_kind, parse_json
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
        value = parse_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UnsupportedModel(f"{path}: missing; is this a sentence-transformers model?") from exc
    except (OSError, ValueError) as exc:  # JsonError names the line and column
        raise UnsupportedModel(f"{path}: unreadable ({exc})") from exc
    if not isinstance(value, dict):
        raise UnsupportedModel(f"{path}: not a JSON object (got {json_kind(value)})")
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


class WordPieces:
    """The model's tokenizer, as two copies each configured once and never changed, so
    threads share them without a lock: whole texts for chunking, and batches padded and
    cut to the model's window for its passes."""

    def __init__(self, directory: Path, shape: BertShape) -> None:
        path = directory / "tokenizer.json"
        if not path.exists():
            raise UnsupportedModel(f"{path}: missing; newsdesk needs a fast tokenizer")
        self.whole = Tokenizer.from_file(str(path))
        self.whole.no_truncation()
        self.whole.no_padding()
        self.batches = Tokenizer.from_str(self.whole.to_str())
        self.batches.enable_truncation(shape.max_length)
        pad = self.whole.token_to_id("[PAD]") or 0
        self.batches.enable_padding(pad_id=pad, pad_token="[PAD]")

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of `text`'s word-pieces, no [CLS]/[SEP], never truncated."""
        return [(a, b) for a, b in self.whole.encode(text, add_special_tokens=False).offsets]

    def count(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self.whole.encode_batch(texts, add_special_tokens=False)]

    def batch(self, texts: list[str]) -> list[Encoding]:
        """Padded to the longest of `texts`, each cut at the model's window."""
        return self.batches.encode_batch(texts)


# Hugging Face's parameter names, as the model files store them, and ours: index.encoder's
# module names, which index.npencoder reads its arrays by.
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


def parameter_shapes(shape: BertShape) -> dict[str, tuple[int, ...]]:
    """Every parameter the forward pass reads, by our name, with its shape (a linear
    layer's weight is stored (outputs, inputs))."""
    hidden, inner = shape.hidden, shape.intermediate
    found: dict[str, tuple[int, ...]] = {
        "words.weight": (shape.vocab, hidden),
        "positions.weight": (shape.positions, hidden),
        "token_types.weight": (shape.token_types, hidden),
    }
    linear = {
        "query": (hidden, hidden),
        "key": (hidden, hidden),
        "value": (hidden, hidden),
        "attention_out": (hidden, hidden),
        "intermediate": (inner, hidden),
        "output": (hidden, inner),
    }
    norms = ["embedding_norm"]
    for n in range(shape.layers):
        for name, (outputs, inputs) in linear.items():
            found[f"layers.{n}.{name}.weight"] = (outputs, inputs)
            found[f"layers.{n}.{name}.bias"] = (outputs,)
        norms += [f"layers.{n}.attention_norm", f"layers.{n}.output_norm"]
    for norm in norms:
        found[f"{norm}.weight"] = found[f"{norm}.bias"] = (hidden,)
    return found


class _Array(Protocol):
    @property
    def shape(self) -> tuple[int, ...]: ...


A = TypeVar("A", bound=_Array)


def bert_parameters(stored: Mapping[str, A], shape: BertShape, directory: Path) -> dict[str, A]:
    """The stored parameters the pass reads, by our names, checked against the shapes
    config.json gives: weights that do not fit are refused by name, not run."""
    ours = {name: array for key, array in stored.items() if (name := _rename(key)) is not None}
    wanted = parameter_shapes(shape)
    missing = sorted(wanted.keys() - ours.keys())
    unexpected = sorted(ours.keys() - wanted.keys())
    misshapen = sorted(n for n in wanted.keys() & ours.keys() if tuple(ours[n].shape) != wanted[n])
    if missing or unexpected or misshapen:
        raise UnsupportedModel(
            f"{directory}: weights do not fit a BERT of its config.json (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}, wrong shape {misshapen[:3]})"
        )
    return ours


def as_arrays(encodings: list[Encoding]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Word-piece ids and attention mask of a padded batch, as (texts, length) arrays."""
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask
