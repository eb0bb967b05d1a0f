from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from newsdesk.settings import load_settings


def test_defaults_use_the_bundled_model_and_user_data_dir(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.embedding.model == "all-MiniLM-L6-v2"
    assert settings.index_dir == tmp_path / "xdg-data" / "newsdesk" / "index"
    assert settings.chroma.url is None


def test_flags_beat_env_beat_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "newsdesk.toml").write_text(
        'index_dir = "from-toml"\n[embedding]\nbatch_size = 4\n[chunking]\noverlap_tokens = 10\n'
    )
    assert load_settings().index_dir == Path("from-toml")
    assert load_settings().embedding.batch_size == 4
    monkeypatch.setenv("NEWSDESK_INDEX_DIR", "from-env")
    monkeypatch.setenv("NEWSDESK_EMBEDDING__BATCH_SIZE", "8")
    settings = load_settings()
    assert settings.index_dir == Path("from-env") and settings.embedding.batch_size == 8
    assert settings.chunking.overlap_tokens == 10
    assert load_settings(index_dir=Path("from-flag")).index_dir == Path("from-flag")


def test_unknown_keys_and_bad_values_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "newsdesk.toml").write_text("[embedding]\nmodle = 'typo'\n")
    with pytest.raises(ValidationError, match="modle"):
        load_settings()
    (tmp_path / "newsdesk.toml").unlink()
    with pytest.raises(ValidationError, match="http"):
        load_settings(chroma={"url": "localhost:8000"})
    with pytest.raises(ValidationError, match="overlap_tokens"):
        load_settings(chunking={"max_tokens": 32, "overlap_tokens": 32})


def test_config_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "elsewhere.toml"
    config.write_text('[chroma]\nurl = "http://127.0.0.1:9000"\n')
    monkeypatch.setenv("NEWSDESK_CONFIG", str(config))
    assert load_settings().chroma.url == "http://127.0.0.1:9000"
    monkeypatch.setenv("NEWSDESK_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(FileNotFoundError, match=r"missing\.toml"):
        load_settings()
