"""What a sentence-transformers model directory says, read without torch: the model's
shape (config.json and friends) and its word-piece tokenizer.

Why apart from index.encoder: chunking, token counts and `index status` need only these,
and importing torch costs 2-5 s on two cores; an update whose articles are unchanged, or
whose chunks are only counted, never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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


def as_arrays(encodings: list[Encoding]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Word-piece ids and attention mask of a padded batch, as (texts, length) arrays."""
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    return ids, mask
