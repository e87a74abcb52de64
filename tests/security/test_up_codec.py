"""`meridian up` makes a codec key, hands it to every child, opens the codec endpoint to
this machine's Web UI, and keeps a user's `TEMPORAL_*` profile (TLS, API key for some
other server) away from children that talk to the local dev server."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from meridian.app.supervisor import Supervisor
from meridian.security.codec import build_codec
from meridian.settings import Settings


def supervisor(tmp_path: Path) -> Supervisor:
    return Supervisor(Settings(state_dir=tmp_path, api_port=18555, temporal_ui_port=18556))


def child_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a child process reads from the environment it is given."""
    for name in list(os.environ):
        if name.startswith("MERIDIAN_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("MERIDIAN_"):
            monkeypatch.setenv(name, value)
    return Settings()


def test_up_creates_an_owner_only_key_and_children_encrypt_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    up = supervisor(tmp_path)
    path = up.prepare_codec()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    (key_id,) = json.loads(path.read_text())
    settings = child_settings(up._env(), monkeypatch)
    codec = build_codec(settings)
    assert codec is not None and codec.key_id == key_id
    assert settings.codec.open_on_loopback is True
    assert "http://127.0.0.1:18556" in settings.codec.cors_origins
    assert "http://localhost:18556" in settings.codec.cors_origins
    first = path.read_text()
    assert up.prepare_codec() == path
    assert path.read_text() == first  # a restart keeps the key: old histories stay readable


def test_the_web_ui_is_pointed_at_the_codec_endpoint(tmp_path: Path) -> None:
    argv = supervisor(tmp_path)._temporal_argv()
    flag = argv.index("--ui-codec-endpoint")
    assert argv[flag + 1] == "http://127.0.0.1:18555/codec"


def test_children_ignore_a_users_temporal_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "cloud-key")
    monkeypatch.setenv("TEMPORAL_TLS_CLIENT_CERT_PATH", "/secure/client.pem")
    env = supervisor(tmp_path)._env()
    assert "TEMPORAL_API_KEY" not in env
    assert "TEMPORAL_TLS_CLIENT_CERT_PATH" not in env
    assert env["TEMPORAL_CONFIG_FILE"] == os.devnull
