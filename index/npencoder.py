"""The embedding model's forward pass in numpy, for small jobs on a CPU in float32.

Why: `import torch` alone took ~1.5 s of a 3.5-3.9 s `newsdesk ask` (2.3 s on a cold
machine; two cores), and as much of a one-article `index update`. A question is one pass
over a dozen word-pieces and a small update's few chunks are a few passes: numpy runs
them without that import (`ask` on the demo index 3.3 -> 1.6 s, a one-article update
3.6 -> 1.9 s, same run, bench/README.md), reading
the same model.safetensors (safetensors.numpy) under the same parameter names and checks
(index.modeldir.bert_parameters) and computing what index.encoder computes, to cosine
> 0.99999 (tests/test_npencoder.py). index.embed.Embedder chooses it (see its `light`);
torch keeps big jobs, whose passes it runs faster, and every other placement.

numpy has no erf, and BERT's GELU is the exact one, x/2 (1 + erf(x/sqrt 2)), not the tanh
approximation. `erf` below is W. J. Cody's rational Chebyshev approximation of erfc(x) exp(x^2)
for 0.46875 <= x <= 4 (netlib's CALERF; Math. Comp. 23, 1969), used for every |x| up to 6
(beyond, erf is 1 in float64): one formula rather than Cody's three intervals, since picking
elements by interval made GELU 5x slower, and it is still within 5e-12 of math.erf below
0.46875 and 4e-16 above (tests/test_npencoder.py checks 1e-10).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from index.modeldir import BertShape, UnsupportedModel, bert_parameters

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

# Cody's coefficients for erfc(x) exp(x^2) = P(x) / Q(x), highest power first.
_P = (
    2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00,
    6.61191906371416295e01, 2.98635138197400131e02, 8.81952221241769090e02,
    1.71204761263407058e03, 2.05107837782607147e03, 1.23033935479799725e03,
)  # fmt: skip
_Q = (
    1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
    1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
    3.43936767414372164e03, 1.23033935480374942e03,
)  # fmt: skip
# GELU's elements in float64 per block: its dozen temporaries stay in the CPU's cache,
# about 2x faster than whole (texts * length, 1536) arrays.
_BLOCK = 65536


def _horner(coefficients: tuple[float, ...], x: F64) -> F64:
    out = np.full_like(x, coefficients[0])
    for c in coefficients[1:]:
        out *= x
        out += c
    return out


def erf(x: F64) -> F64:
    """The error function, elementwise, float64 in and out."""
    a = np.minimum(np.abs(x), 6.0)
    erfc = np.exp(-a * a) * _horner(_P, a) / _horner(_Q, a)
    out: F64 = np.copysign(1.0 - erfc, x)
    return out


def gelu(x: F32) -> F32:
    """BERT's exact GELU, computed in float64 a block at a time, returned in float32."""
    flat = x.reshape(-1)
    out = np.empty_like(flat)
    for lo in range(0, flat.size, _BLOCK):
        wide = flat[lo : lo + _BLOCK].astype(np.float64)
        out[lo : lo + _BLOCK] = 0.5 * wide * (1.0 + erf(wide * np.sqrt(0.5)))
    return out.reshape(x.shape)


class NumpyEncoder:
    """index.encoder.Encoder's forward pass over the same parameters, as numpy arrays."""

    def __init__(self, parameters: dict[str, F32], shape: BertShape) -> None:
        self.p = parameters
        self.shape = shape

    @staticmethod
    def load(directory: Path, shape: BertShape) -> NumpyEncoder:
        path = directory / "model.safetensors"
        if not path.exists():
            raise UnsupportedModel(f"{path}: missing; the numpy pass reads safetensors only")
        from safetensors.numpy import load_file
        from threadpoolctl import threadpool_limits

        # numpy's BLAS runs one thread from now on, in the whole process, as torch does
        # for our passes (index.embed.cpu_passes): with the other core busy, a two-thread
        # BLAS made a pass over 9 chunks take 16 s instead of 1.7 s.
        threadpool_limits(1, user_api="blas")
        stored = bert_parameters(load_file(str(path)), shape, directory)
        return NumpyEncoder({k: v.astype(np.float32, copy=False) for k, v in stored.items()}, shape)

    def __call__(self, ids: Ints, mask: Ints) -> tuple[F32, F32]:
        """(token vectors, pooled vector) for a batch of word-piece ids and their mask,
        shaped (texts, length, hidden) and (texts, hidden); pooled not normalised."""
        p, batch, length = self.p, ids.shape[0], ids.shape[1]
        x = p["words.weight"][ids] + p["positions.weight"][:length] + p["token_types.weight"][0]
        x = self._norm(x.reshape(batch * length, -1), "embedding_norm")
        # Added to the attention scores: -inf hides the padding, as torch's boolean mask does.
        hide = np.where(mask[:, None, None, :] != 0, 0.0, -np.inf).astype(np.float32)
        for n in range(self.shape.layers):
            x = self._layer(x, hide, batch, f"layers.{n}.")
        tokens = x.reshape(batch, length, -1)
        if self.shape.pooling == "cls":
            return tokens, tokens[:, 0]
        weights = mask[:, :, None].astype(np.float32)
        pooled: F32 = (tokens * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return tokens, pooled

    def _layer(self, x: F32, hide: F32, batch: int, at: str) -> F32:
        """One post-norm encoder layer on the (texts * length, hidden) rows."""
        heads = self.shape.heads
        width = x.shape[1] // heads

        def split(t: F32) -> F32:
            return np.ascontiguousarray(t.reshape(batch, -1, heads, width).transpose(0, 2, 1, 3))

        q, k, v = (split(self._linear(x, at + name)) for name in ("query", "key", "value"))
        q *= np.float32(1 / np.sqrt(width))
        scores: F32 = q @ k.transpose(0, 1, 3, 2)  # (texts, heads, length, length), in place
        scores += hide
        scores -= scores.max(axis=-1, keepdims=True)
        np.exp(scores, out=scores)
        scores /= scores.sum(axis=-1, keepdims=True)
        attended: F32 = (scores @ v).transpose(0, 2, 1, 3).reshape(x.shape)
        x = self._norm(x + self._linear(attended, at + "attention_out"), at + "attention_norm")
        inner = gelu(self._linear(x, at + "intermediate"))
        return self._norm(x + self._linear(inner, at + "output"), at + "output_norm")

    def _linear(self, x: F32, name: str) -> F32:
        out: F32 = x @ self.p[name + ".weight"].T + self.p[name + ".bias"]
        return out

    def _norm(self, x: F32, name: str) -> F32:
        centred = x - x.mean(axis=-1, keepdims=True)
        scale = 1 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + self.shape.eps)
        out: F32 = centred * scale * self.p[name + ".weight"] + self.p[name + ".bias"]
        return out
