"""Where the embedding model runs and at what precision, chosen from what the machine reports.

`embedding.device = "auto"` takes a CUDA GPU, then Apple's MPS, then the CPU; GPUs run in
float16, a CPU in bfloat16 only when it has the instructions for it (avx512_bf16 or AMX),
since elsewhere bfloat16 is emulated: about 6x slower than float32 on a 2-core AVX2 CPU.
Vectors in float16/bfloat16 differ from float32 by cosine < 1e-4 (measured on the demo
articles: cosine >= 0.99994, top-1 neighbour unchanged), so the index does not record the
precision: an index built on a GPU serves questions on a laptop CPU and the other way round.

`embedding.dtype = "int8"` is a CPU-only choice, never taken by "auto": torch's dynamic
quantisation of the linear layers of the model an index write runs (weights int8,
activations quantised per batch); questions stay float32 (index.embed.Embedder.index_model).
Its vectors are further from float32 (cosine about 0.93). Judged by what users get
(bench/README.md), it builds 1.6x as fast but loses 1.4 points of hybrid MRR and 7.8 of
correct answers, so it is offered, not chosen. An index built in int8 answers float32
questions better than int8 ones, so int8 is not recorded either: changing the setting
never breaks an index.

The choice (`choose`) is a pure function of the settings and `Capabilities`, so tests can
fake any machine; `Capabilities.detect` is the one place that asks the real one.
"""

from __future__ import annotations

import importlib.metadata
import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal, cast

from newsdesk.errors import NewsdeskError

Dtype = Literal["float32", "float16", "bfloat16", "int8"]

# CPU flags (as /proc/cpuinfo names them) that run bfloat16 matrix products natively.
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
_CUDA = re.compile(r"^cuda(?::(\d+))?$")


class DeviceUnavailable(NewsdeskError, RuntimeError):
    """embedding.device names hardware this machine does not have."""


@dataclass(frozen=True)
class Capabilities:
    """What the machine reports: GPUs torch can use and the CPU's instruction flags."""

    cuda_devices: int = 0
    cuda_name: str | None = None
    mps: bool = False
    cpu_flags: frozenset[str] = field(default_factory=frozenset)

    @property
    def cpu_bf16(self) -> str | None:
        """The flag that makes bfloat16 fast on this CPU, if any."""
        return next((flag for flag in BF16_FLAGS if flag in self.cpu_flags), None)

    def describe(self) -> str:
        """What the machine has, for an error message."""
        found = []
        if self.cuda_devices:
            found.append(f"{self.cuda_devices} CUDA GPU(s) ({self.cuda_name})")
        if self.mps:
            found.append("Apple MPS")
        found.append("a CPU" + (f" with {self.cpu_bf16}" if self.cpu_bf16 else ""))
        return ", ".join(found)

    @staticmethod
    @cache
    def detect(gpus: bool = True) -> Capabilities:
        """Ask torch for GPUs and the OS for CPU flags (once per process: hardware stays).

        A CPU-only torch build off macOS can see no GPU, and says so in its version
        ("2.13.0+cpu"): then torch is not imported, which takes 2-5 s on two cores and is
        all `index status` would otherwise spend. Nor is it when the caller needs no GPU
        (`gpus=False`: embedding.device = "cpu"), so the numpy pass can run on any build."""
        if not gpus or not gpu_possible():
            return Capabilities(cpu_flags=cpu_flags())
        import torch

        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return Capabilities(
            cuda_devices=cuda,
            cuda_name=torch.cuda.get_device_name(0) if cuda else None,
            mps=torch.backends.mps.is_available(),
            cpu_flags=cpu_flags(),
        )


@dataclass(frozen=True)
class Placement:
    device: str
    dtype: Dtype
    reason: str


def gpu_possible() -> bool:
    """False when the installed torch cannot reach a GPU: a "+cpu" build, not on macOS."""
    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return True  # let torch's own import say what is wrong
    return sys.platform == "darwin" or not version.endswith("+cpu")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags from Linux's /proc/cpuinfo; none known elsewhere, which
    only means float32 on the CPU."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def choose(device: str, dtype: str, caps: Capabilities) -> Placement:
    """The device and precision for `embedding.device` / `embedding.dtype` on `caps`.

    An explicit device wins over "auto", and must exist; an explicit dtype wins too
    (even one the hardware only emulates: the user asked for it)."""
    if device == "auto":
        placed, why = _auto_device(caps)
    else:
        placed, why = _explicit_device(device, caps), f"embedding.device = {device!r}"
    if dtype == "int8" and placed != "cpu":
        raise DeviceUnavailable(
            f"embedding.dtype = 'int8' runs on the CPU only, not on {placed} ({why}); "
            'set embedding.device = "cpu" (NEWSDESK_EMBEDDING__DEVICE=cpu) or another dtype'
        )
    if dtype != "auto":
        slow = placed == "cpu" and (
            dtype == "float16" or (dtype == "bfloat16" and not caps.cpu_bf16)
        )
        note = " (emulated on this CPU: slower than float32)" if slow else ""
        return Placement(placed, _dtype(dtype), f"{why}; embedding.dtype = {dtype}{note}")
    if placed != "cpu":
        return Placement(placed, "float16", f"{why}; float16 on the GPU")
    if caps.cpu_bf16:
        return Placement(placed, "bfloat16", f"{why}; bfloat16: the CPU has {caps.cpu_bf16}")
    return Placement(placed, "float32", f"{why}; float32: the CPU has no avx512_bf16 or AMX")


def place(device: str, dtype: str) -> Placement:
    """`choose` on this machine. Torch is asked about GPUs only when the device allows
    one: "cpu" never needs it, so the numpy pass runs on any torch build."""
    return choose(device, dtype, Capabilities.detect(gpus=device != "cpu"))


def _auto_device(caps: Capabilities) -> tuple[str, str]:
    if caps.cuda_devices:
        return "cuda", f"auto: CUDA GPU {caps.cuda_name}"
    if caps.mps:
        return "mps", "auto: Apple MPS"
    return "cpu", "auto: no CUDA or MPS GPU"


def _explicit_device(device: str, caps: Capabilities) -> str:
    cuda = _CUDA.match(device)
    if device == "cpu":
        return device
    if device == "mps" and caps.mps:
        return device
    if cuda and int(cuda.group(1) or 0) < caps.cuda_devices:
        return device
    if device != "mps" and not cuda:
        raise DeviceUnavailable(
            f"embedding.device = {device!r} is not one of auto, cpu, cuda, cuda:N, mps"
        )
    raise DeviceUnavailable(
        f"embedding.device = {device!r}, but this machine has {caps.describe()}; "
        'set embedding.device = "auto" (NEWSDESK_EMBEDDING__DEVICE=auto) to use what it has'
    )


def _dtype(name: str) -> Dtype:
    if name in ("float32", "float16", "bfloat16", "int8"):
        return cast(Dtype, name)
    raise DeviceUnavailable(
        f"embedding.dtype = {name!r} is not one of auto, float32, float16, bfloat16, int8"
    )
