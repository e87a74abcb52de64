"""Keys and settings for the security tests."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

from meridian.settings import Settings


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def codec_settings(tmp_path: Path, **keys: str) -> Settings:
    """Settings whose codec has exactly `keys` (id=base64 key), first one encrypting."""
    return Settings(state_dir=tmp_path, codec={"keys": keys})
