"""The embedding model's forward pass in plain torch (its files are read by index.modeldir).

Why not sentence-transformers: importing it costs about 6 s of CPU in every process on
two cores (transformers' model registry, its loss and generation modules, scikit-learn,
PIL), more than a whole `newsdesk ask` spends on its answer, and every CLI call, chat
worker and Ray worker paid it. The default model, all-MiniLM-L6-v2, is a six-layer
BERT, so its forward pass is a page of torch: this module is that page. Its vectors match
sentence-transformers' to cosine > 0.99999 (tests/test_encoder.py, which keeps
sentence-transformers as the reference).

It runs a sentence-transformers model whose transformer is a BERT (config.json
`model_type` "bert": the MiniLM, BGE and E5 families) pooled by mean or by [CLS]; any
other is refused by name (index.modeldir) rather than embedded wrongly.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from index.modeldir import BertShape, UnsupportedModel, bert_parameters


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


class Encoder(nn.Module):
    """A sentence-transformers BERT model: word-pieces in, token vectors and the pooled
    sentence vector out (not normalised: the caller normalises in float32)."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.shape = shape
        self.words = nn.Embedding(shape.vocab, shape.hidden)
        self.positions = nn.Embedding(shape.positions, shape.hidden)
        self.token_types = nn.Embedding(shape.token_types, shape.hidden)
        self.embedding_norm = nn.LayerNorm(shape.hidden, eps=shape.eps)
        self.layers = nn.ModuleList(Layer(shape) for _ in range(shape.layers))

    @staticmethod
    def load(directory: Path, shape: BertShape) -> Encoder:
        encoder = Encoder(shape)
        encoder.load_state_dict(bert_parameters(_weights(directory), shape, directory))
        encoder.eval()
        return encoder

    @property
    def device(self) -> torch.device:
        return self.words.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.words.weight.dtype

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
