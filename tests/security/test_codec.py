"""The payload codec: what Temporal stores is ciphertext, what Meridian reads is the
original; keys rotate; plain payloads (old histories, the CLI) pass through."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from meridian.security.codec import CodecError, build_codec, create_key_file, data_converter
from meridian.settings import Settings
from meridian.tasks.contracts import StopRequest, TaskWorkflowInput
from tests.security.samples import TASK_ID, codec_settings, new_key, task_input


async def encode(converter: DataConverter, value: object) -> Payload:
    (payload,) = await converter.encode([value])
    return payload


async def decode(converter: DataConverter, payload: Payload, kind: type) -> object:
    (value,) = await converter.decode([payload], [kind])
    return value


async def test_round_trip_stores_ciphertext_and_reads_the_original(tmp_path: Path) -> None:
    converter = data_converter(codec_settings(tmp_path, k1=new_key()))
    payload = await encode(converter, task_input())
    assert payload.metadata["encoding"] == b"binary/encrypted"
    assert payload.metadata["encryption-key-id"] == b"k1"
    assert TASK_ID.encode() not in payload.data
    assert b"hunter2" not in payload.SerializeToString()
    assert await decode(converter, payload, TaskWorkflowInput) == task_input()


async def test_rotation_old_key_still_decrypts_new_key_encrypts(tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    before = data_converter(codec_settings(tmp_path, k1=old))
    after = data_converter(codec_settings(tmp_path, k2=new, k1=old))
    sealed_before = await encode(before, task_input())
    assert await decode(after, sealed_before, TaskWorkflowInput) == task_input()
    sealed_after = await encode(after, task_input())
    assert sealed_after.metadata["encryption-key-id"] == b"k2"
    # A process that never got the new key cannot read what the new key sealed.
    with pytest.raises(CodecError, match="'k2'"):
        await decode(before, sealed_after, TaskWorkflowInput)


async def test_plain_payload_passes_through(tmp_path: Path) -> None:
    """What `temporal workflow signal --name stop --input '{"reason": "ops"}'` sends."""
    converter = data_converter(codec_settings(tmp_path, k1=new_key()))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"reason": "ops"}')
    assert await decode(converter, plain, StopRequest) == StopRequest(reason="ops")


async def test_altered_ciphertext_fails(tmp_path: Path) -> None:
    converter = data_converter(codec_settings(tmp_path, k1=new_key()))
    payload = await encode(converter, task_input())
    flipped = bytearray(payload.data)
    flipped[-1] ^= 1
    payload.data = bytes(flipped)
    with pytest.raises(CodecError, match="does not decrypt"):
        await decode(converter, payload, TaskWorkflowInput)


async def test_a_payload_relabelled_with_another_key_id_fails(tmp_path: Path) -> None:
    key = new_key()
    converter = data_converter(codec_settings(tmp_path, k1=key, k2=key))
    payload = await encode(converter, task_input())
    payload.metadata["encryption-key-id"] = b"k2"
    with pytest.raises(CodecError, match="does not decrypt"):
        await decode(converter, payload, TaskWorkflowInput)


async def test_no_keys_no_encryption(tmp_path: Path) -> None:
    converter = data_converter(Settings(state_dir=tmp_path))
    payload = await encode(converter, task_input())
    assert payload.metadata["encoding"] == b"json/plain"


def test_the_generated_key_file_is_owner_only_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "codec" / "keys.json"
    create_key_file(path)
    first = path.read_text()
    create_key_file(path)
    assert path.read_text() == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    (key_id,) = json.loads(first)
    codec = build_codec(Settings(state_dir=tmp_path))  # the default key file of the state dir
    assert codec is not None and codec.key_id == key_id


def test_settings_keys_come_before_the_key_file(tmp_path: Path) -> None:
    create_key_file(tmp_path / "codec" / "keys.json")
    codec = build_codec(codec_settings(tmp_path, fresh=new_key()))
    assert codec is not None and codec.key_id == "fresh"


def test_a_named_key_file_must_exist(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, codec={"key_file": tmp_path / "missing.json"})
    with pytest.raises(FileNotFoundError):
        build_codec(settings)
