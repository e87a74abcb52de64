"""Secrets in the settings never show: not in a printed Settings, not in the text of a
validation error (which is what a mistyped setting prints at start-up)."""

from __future__ import annotations

import base64

import pytest
from pydantic import ValidationError

from meridian.settings import Settings

URL = "mysql+pymysql://u:s3cret@db.example:3306/meridian"


def test_a_bad_database_url_is_named_but_its_password_not_shown() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url="postgresql://u:s3cret@db.example/meridian")
    text = str(caught.value)
    assert "database_url" in text
    assert "s3cret" not in text


def test_printed_settings_hide_the_database_url() -> None:
    settings = Settings(database_url=URL)
    assert "s3cret" not in repr(settings)
    assert "s3cret" not in str(settings.model_dump())
    assert settings.resolved_database_url == URL


def test_a_bad_codec_key_is_named_by_id_not_shown() -> None:
    short = base64.b64encode(b"sixteen byte key").decode()
    with pytest.raises(ValidationError) as caught:
        Settings(codec={"keys": {"2025-06": short}})
    text = str(caught.value)
    assert "2025-06" in text and "AES-256" in text
    assert short not in text


def test_codec_keys_from_the_environment_keep_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    new, old = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2))
    monkeypatch.setenv("MERIDIAN_CODEC__KEYS", f'{{"new": "{new}", "old": "{old}"}}')
    keys = Settings().codec.keys
    assert list(keys) == ["new", "old"]
    assert keys["new"].get_secret_value() == new
    assert new not in repr(keys)
