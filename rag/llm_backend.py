"""Generating models come through llama-index's LLM classes, so any model it supports
plugs in: `make_llm` builds the one the settings name. Imports are lazy (the OpenAI
client alone costs seconds) and a missing optional package is named with the command
that installs it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from newsdesk.errors import NewsdeskError
from newsdesk.settings import LLM_ENV, LlmSettings

if TYPE_CHECKING:
    from llama_index.core.llms import LLM


class LlmNotConfigured(NewsdeskError, ValueError):
    """The settings ask for an LLM but do not say which, or name a missing file/package."""


class LlmUnavailable(NewsdeskError, RuntimeError):
    """The model could not be reached, timed out or broke off: the caller falls back."""


def make_llm(cfg: LlmSettings) -> LLM:
    if cfg.backend == "llama-cpp":
        return _llama_cpp(cfg)
    base_url, model = cfg.base_url, cfg.model
    if not base_url or not model:
        missing = [
            f"--llm-{key.replace('_', '-')} (or {LLM_ENV[key]})"
            for key in ("base_url", "model")
            if not getattr(cfg, key)
        ]
        raise LlmNotConfigured(f"the llm answerer needs {' and '.join(missing)}")
    try:
        from llama_index.llms.openai_like import OpenAILike
    except ImportError as exc:
        raise LlmNotConfigured(
            f"the openai-compatible backend needs llama-index-llms-openai-like ({exc}); "
            "reinstall newsdesk"
        ) from exc
    return OpenAILike(
        model=model,
        api_base=base_url,
        # Local servers take any key; the OpenAI client refuses to start without one.
        api_key=cfg.api_key.get_secret_value() if cfg.api_key else "no-key",
        is_chat_model=True,
        context_window=cfg.context_window,
        timeout=cfg.timeout,
        max_retries=cfg.max_retries,
        temperature=cfg.temperature,
        max_tokens=cfg.max_tokens,
    )


def _llama_cpp(cfg: LlmSettings) -> LLM:
    if cfg.gguf is None:
        raise LlmNotConfigured("the llama-cpp backend needs --llm-gguf PATH (llm.gguf)")
    if not cfg.gguf.is_file():
        raise LlmNotConfigured(f"{cfg.gguf}: no such GGUF file")
    try:
        from llama_index.llms.llama_cpp import LlamaCPP
    except ImportError as exc:
        raise LlmNotConfigured(
            f"the llama-cpp backend needs an optional extra ({exc}): "
            "pip install 'newsdesk[local-llm]'"
        ) from exc
    llm: LLM = LlamaCPP(
        model_path=str(cfg.gguf),
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_tokens,
        context_window=cfg.context_window,
        verbose=False,
    )
    return llm


def stream_reply(llm: LLM, messages: Sequence[tuple[str, str]]) -> Iterator[str]:
    """The reply's text as it arrives. Any failure of the model or the connection,
    before or mid-stream, becomes LlmUnavailable: the answer then falls back."""
    from llama_index.core.llms import ChatMessage

    chat = [ChatMessage(role=role, content=content) for role, content in messages]
    try:
        for response in llm.stream_chat(chat):
            if response.delta:
                yield response.delta
    except Exception as exc:  # network, HTTP, timeout, parse: all mean "no usable reply"
        raise LlmUnavailable(f"{type(exc).__name__}: {exc}") from exc
