"""Payload encryption settings (`MERIDIAN_CODEC__*`).

Keys are AES-256 keys (32 bytes, base64) named by an id. The first key encrypts; every
key decrypts, so a key is rotated by putting a new one first and keeping the old ones
until no history still needs them. No key at all: payloads travel unencrypted.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

DEFAULT_KEY_FILE = Path("codec") / "keys.json"
KEY_BYTES = 32  # AES-256


def decode_key(key_id: str, text: str) -> bytes:
    """The raw key from its base64 text. Errors name the key id, never the key."""
    if not key_id.strip():
        raise ValueError("a codec key needs a non-empty id")
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"codec key {key_id!r} is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"codec key {key_id!r} is {len(key)} bytes; AES-256 needs {KEY_BYTES}")
    return key


class CodecSettings(BaseModel):
    # Key id -> base64 key, e.g. MERIDIAN_CODEC__KEYS='{"2025-06": "q83v..."}'. Listed
    # before the key file's keys.
    keys: dict[str, SecretStr] = Field(default_factory=dict)
    # A JSON file of the same map (owner-only). Empty: `<state dir>/codec/keys.json` when
    # it exists; `meridian up` creates that one.
    key_file: Path | None = None
    # Serve /codec/* without a token to callers on this machine (the local Web UI). Only
    # `meridian up` turns it on; anywhere else the codec endpoint needs an admin token.
    open_on_loopback: bool = False
    # Browser origins (the Temporal Web UI) allowed to call /codec/* from a page.
    cors_origins: list[str] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _keys_are_aes_256(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for key_id, text in value.items():
            decode_key(key_id, text.get_secret_value())
        return value

    def resolved_key_file(self, state_dir: Path) -> Path:
        return self.key_file or state_dir / DEFAULT_KEY_FILE
