"""AES-256-GCM payload encryption: every payload a Meridian client or worker hands to
Temporal (workflow and activity inputs and results, signals, queries, memos) is stored
in Temporal's history as ciphertext.

An encrypted payload says so in its metadata (`encoding: binary/encrypted`) and names
the key that sealed it (`encryption-key-id`); the key id is also authenticated data, so
a payload relabelled with another key's id fails to decrypt rather than decrypting
wrongly. A payload without the marker passes through untouched: histories recorded
before encryption still replay, and `temporal workflow signal --input '{...}'` from the
CLI (plain JSON) still reaches the workflow.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from meridian.security.settings import KEY_BYTES, decode_key

if TYPE_CHECKING:
    from meridian.settings import Settings

ENCODING_KEY = "encoding"
ENCRYPTED = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class CodecError(ValueError):
    """A payload marked encrypted that cannot be decrypted: unknown key, or tampered."""


class EncryptionCodec(PayloadCodec):
    """Seals with the first key, opens with whichever key the payload names."""

    def __init__(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise ValueError("an encryption codec needs at least one key")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.key_id = next(iter(keys))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[self.key_id].encrypt(
            nonce, payload.SerializeToString(), self.key_id.encode()
        )
        return Payload(
            metadata={ENCODING_KEY: ENCRYPTED, KEY_ID: self.key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get(ENCODING_KEY) != ENCRYPTED:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"payload is encrypted with key {key_id!r}, which is not configured")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = cipher.decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise CodecError(
                f"payload does not decrypt with key {key_id!r}: altered, or sealed by another "
                "key of that id"
            ) from None
        return Payload.FromString(plain)


def load_keys(settings: Settings) -> dict[str, bytes]:
    """The configured keys in order: `codec.keys` first, then the key file's."""
    codec = settings.codec
    keys = {k: decode_key(k, v.get_secret_value()) for k, v in codec.keys.items()}
    path = codec.resolved_key_file(settings.state_dir)
    # A key file named explicitly must exist; the default one only when `meridian up` made it.
    if codec.key_file is not None or path.exists():
        for key_id, key in read_key_file(path).items():
            if keys.setdefault(key_id, key) != key:
                raise ValueError(f"codec key {key_id!r} is given twice, with different keys")
    return keys


def read_key_file(path: Path) -> dict[str, bytes]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise ValueError(f"{path}: not a JSON map of key id to base64 key") from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{path}: not a JSON map of key id to base64 key")
    return {str(k): decode_key(str(k), v) for k, v in data.items()}


def build_codec(settings: Settings) -> EncryptionCodec | None:
    keys = load_keys(settings)
    return EncryptionCodec(keys) if keys else None


def data_converter(settings: Settings) -> DataConverter:
    """The one converter of every client and worker: pydantic, plus encryption when keys
    are configured. A process without keys neither encrypts nor decrypts."""
    codec = build_codec(settings)
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=codec)


def create_key_file(path: Path) -> None:
    """Write a fresh key file (owner-only) unless one exists: the key of `meridian up`."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_id = f"local-{secrets.token_hex(4)}"
    body = json.dumps({key_id: base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()})
    # Written under a temporary name and linked: two processes starting together end
    # with one key file, never a half-written one.
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(body + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another process won; its key it is
    finally:
        tmp.unlink()
