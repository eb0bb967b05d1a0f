"""Device and precision choice (index.device): faked machines, the real one, `index status`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from index.cli import index_group
from index.db import IndexDB
from index.device import (
    Capabilities,
    DeviceUnavailable,
    Placement,
    choose,
    cpu_flags,
    gpu_possible,
)
from index.embed import Embedder
from index.manifest import Manifest
from newsdesk.settings import EmbeddingSettings, load_settings
from tests.conftest import make_manifest

CPU = Capabilities(cpu_flags=frozenset({"sse4_2", "avx2"}))
CPU_BF16 = Capabilities(cpu_flags=frozenset({"avx2", "avx512f", "avx512_bf16"}))
CPU_AMX = Capabilities(cpu_flags=frozenset({"avx2", "amx_tile", "amx_bf16"}))
MAC = Capabilities(mps=True)
GPU = Capabilities(cuda_devices=1, cuda_name="NVIDIA L4", mps=False, cpu_flags=CPU_BF16.cpu_flags)


@pytest.mark.parametrize(
    ("caps", "device", "dtype"),
    [
        (GPU, "cuda", "float16"),
        (Capabilities(cuda_devices=2, cuda_name="A100", mps=True), "cuda", "float16"),
        (MAC, "mps", "float16"),
        (CPU_BF16, "cpu", "bfloat16"),
        (CPU_AMX, "cpu", "bfloat16"),
        (CPU, "cpu", "float32"),
        (Capabilities(), "cpu", "float32"),
    ],
)
def test_auto_picks_cuda_then_mps_then_bf16_then_cpu(
    caps: Capabilities, device: str, dtype: str
) -> None:
    placement = choose("auto", "auto", caps)
    assert (placement.device, placement.dtype) == (device, dtype)
    assert placement.reason.startswith("auto: ")


def test_reasons_say_why() -> None:
    assert "NVIDIA L4" in choose("auto", "auto", GPU).reason
    assert "avx512_bf16" in choose("auto", "auto", CPU_BF16).reason
    assert "no avx512_bf16 or AMX" in choose("auto", "auto", CPU).reason


@pytest.mark.parametrize(
    ("device", "dtype", "caps", "expected"),
    [
        ("cpu", "auto", GPU, Placement("cpu", "bfloat16", "")),
        ("cpu", "auto", CPU, Placement("cpu", "float32", "")),
        ("cpu", "float32", CPU_BF16, Placement("cpu", "float32", "")),
        ("cuda", "float32", GPU, Placement("cuda", "float32", "")),
        (
            "cuda:1",
            "auto",
            Capabilities(cuda_devices=2, cuda_name="x"),
            Placement("cuda:1", "float16", ""),
        ),
        ("mps", "bfloat16", MAC, Placement("mps", "bfloat16", "")),
        ("auto", "float32", GPU, Placement("cuda", "float32", "")),
    ],
)
def test_a_user_setting_wins(
    device: str, dtype: str, caps: Capabilities, expected: Placement
) -> None:
    placement = choose(device, dtype, caps)
    assert (placement.device, placement.dtype) == (expected.device, expected.dtype)
    assert "embedding." in placement.reason


def test_an_emulated_dtype_is_honoured_and_said_to_be_slow() -> None:
    assert "emulated" in choose("cpu", "bfloat16", CPU).reason
    assert "emulated" not in choose("cpu", "bfloat16", CPU_BF16).reason


@pytest.mark.parametrize(
    ("device", "caps", "has"),
    [
        ("cuda", CPU, "a CPU"),
        ("cuda:1", GPU, "1 CUDA GPU(s) (NVIDIA L4)"),
        ("mps", GPU, "1 CUDA GPU(s)"),
        ("cuda", MAC, "Apple MPS"),
    ],
)
def test_a_device_the_machine_lacks_is_a_clear_error(
    device: str, caps: Capabilities, has: str
) -> None:
    with pytest.raises(DeviceUnavailable) as caught:
        choose(device, "auto", caps)
    assert "embedding.device" in caught.value.message and repr(device) in caught.value.message
    assert has in caught.value.message


def test_settings_default_to_auto_and_refuse_unknown_devices(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (EmbeddingSettings().device, EmbeddingSettings().dtype) == ("auto", "auto")
    monkeypatch.setenv("NEWSDESK_EMBEDDING__DEVICE", "cuda:0")
    monkeypatch.setenv("NEWSDESK_EMBEDDING__DTYPE", "bfloat16")
    embedding = load_settings().embedding
    assert (embedding.device, embedding.dtype) == ("cuda:0", "bfloat16")
    with pytest.raises(ValueError, match="device"):
        EmbeddingSettings(device="gpu")
    with pytest.raises(ValueError, match="dtype"):
        EmbeddingSettings(dtype="int4")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_tile amx_bf16\n\n")
    assert Capabilities(cpu_flags=cpu_flags(cpuinfo)).cpu_bf16 == "amx_bf16"
    assert cpu_flags(tmp_path / "absent") == frozenset()


def test_this_machine_detected_and_embedding_still_works(embedder: Embedder) -> None:

    caps = Capabilities.detect()
    assert caps.cuda_devices == torch.cuda.device_count()
    assert caps.mps == torch.backends.mps.is_available()
    placement = Embedder(EmbeddingSettings()).placement
    if not (caps.cuda_devices or caps.mps or caps.cpu_bf16):  # this project's 2-core AVX2 box
        assert (placement.device, placement.dtype) == ("cpu", "float32")
    assert embedder.placement == placement
    vectors = embedder.embed(["The harbour bridge closes for repairs."])
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_an_impossible_device_fails_before_loading_the_model() -> None:
    caps = Capabilities.detect()
    wanted = f"cuda:{caps.cuda_devices}"  # one more GPU than there is
    with pytest.raises(DeviceUnavailable, match=r"embedding\.device"):
        _ = Embedder(EmbeddingSettings(device=wanted)).model


def test_index_status_shows_the_device(tmp_path: Path) -> None:
    index_dir = tmp_path / "ix"
    IndexDB(index_dir).commit(_manifest(), (), {})
    runner = CliRunner()
    out = runner.invoke(index_group, ["status", "--index-dir", str(index_dir)])
    assert out.exit_code == 0, out.output
    lines = {
        line.split(":", 1)[0]: line.split(":", 1)[1].strip()
        for line in out.output.splitlines()
        if ":" in line
    }
    expected = Embedder(EmbeddingSettings()).placement  # no model load: status needs none
    assert lines["device"] == expected.device and lines["dtype"] == expected.dtype
    assert lines["device_reason"] == expected.reason

    # a device this machine lacks is shown, not raised: status is where one looks
    wanted = f"cuda:{Capabilities.detect().cuda_devices}"
    out = runner.invoke(
        index_group,
        ["status", "--index-dir", str(index_dir)],
        env={"NEWSDESK_EMBEDDING__DEVICE": wanted},
    )
    assert out.exit_code == 0, out.output
    assert "device:" in out.output and "unavailable" in out.output and wanted in out.output


def _manifest() -> Manifest:
    """An empty index's state: status reads nothing else, so nothing is embedded."""
    return make_manifest()


def test_half_precision_vectors_are_unit_float32_and_close(embedder: Embedder) -> None:
    texts = ["The harbour bridge closes for repairs.", "Ferries run every ten minutes."]
    half = Embedder(EmbeddingSettings(device="cpu", dtype="bfloat16"))
    vectors = half.embed(texts)
    assert half.model.dtype == torch.bfloat16 and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * embedder.embed(texts)).sum(axis=1).min() > 0.999


def test_int8_is_a_cpu_choice_never_auto() -> None:
    assert choose("cpu", "int8", CPU) == Placement(
        "cpu", "int8", "embedding.device = 'cpu'; embedding.dtype = int8"
    )
    assert choose("auto", "int8", CPU_BF16).dtype == "int8"
    assert all(choose("auto", "auto", caps).dtype != "int8" for caps in (CPU, CPU_BF16, GPU, MAC))
    for device, caps in (("auto", GPU), ("cuda", GPU), ("mps", MAC)):
        with pytest.raises(DeviceUnavailable, match=r"int8.*CPU only.*embedding\.device"):
            choose(device, "int8", caps)
    assert EmbeddingSettings(dtype="int8").dtype == "int8"


def test_int8_is_for_the_index_and_questions_stay_float32(embedder: Embedder) -> None:
    """An int8 index's vectors are not cosine-close to float32's (about 0.93,
    bench/README.md) but keep the nearest neighbour; the question is float32's own."""
    texts = ["The harbour bridge closes for repairs.", "Ferries run every ten minutes."]
    int8 = Embedder(EmbeddingSettings(device="cpu", dtype="int8"))
    vectors, _, _ = int8.embed_with_spans(texts, [[], []])
    quantized = [m for m in int8.index_model.modules() if "quantized" in type(m).__module__]
    assert len(quantized) >= 36 and vectors.dtype == np.float32  # 6 layers x 6 linear
    assert not [m for m in int8.model.modules() if "quantized" in type(m).__module__]
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * embedder.embed(texts)).sum(axis=1).min() > 0.8
    question = int8.embed_query("When will the bridge be shut?")
    assert np.allclose(question, embedder.embed_query("When will the bridge be shut?"), atol=1e-6)
    assert int(np.argmax(vectors @ question)) == 0


def test_torch_is_asked_about_gpus_only_when_its_build_can_have_them() -> None:
    built_for_gpu = torch.version.cuda is not None or getattr(torch.version, "hip", None)
    assert gpu_possible() == bool(built_for_gpu or sys.platform == "darwin")


def test_device_cpu_never_asks_torch_about_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a build that could have a GPU, "cpu" still places without importing torch, so
    questions and small updates keep the numpy pass (index.embed.Embedder.light)."""
    monkeypatch.setattr("index.device.gpu_possible", lambda: True)
    monkeypatch.setitem(sys.modules, "torch", None)  # importing it would now fail
    Capabilities.detect.cache_clear()
    try:
        placement = Embedder(EmbeddingSettings(device="cpu")).placement
        assert (placement.device, placement.dtype) == ("cpu", "float32")
        with pytest.raises(ImportError):
            Capabilities.detect()  # "auto" does ask
    finally:
        Capabilities.detect.cache_clear()
