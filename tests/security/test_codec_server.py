"""The codec server as the Temporal Web UI and CLI call it: `POST /codec/decode` and
`/codec/encode` with base64 protobuf JSON; an admin token unless `meridian up` opened it
to this machine; CORS for the UI's origin."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from api.main import create_app
from meridian.settings import Settings
from tests.security.samples import new_key
from tests.support import local_key, token_headers

UI = "http://127.0.0.1:8233"
SIGNAL = {"reason": "ops"}


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def plain_body() -> dict[str, Any]:
    """A JSON payload as the CLI sends it (`--input '{"reason": "ops"}'`)."""
    return {
        "payloads": [
            {"metadata": {"encoding": b64(b"json/plain")}, "data": b64(b'{"reason": "ops"}')}
        ]
    }


def settings(tmp_path: Path, **codec: Any) -> Settings:
    local_key(tmp_path)
    values = {"keys": {"k1": new_key()}, "cors_origins": [UI], **codec}
    return Settings(state_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/m.db", codec=values)


@asynccontextmanager
async def api(
    tmp_path: Path, *, peer: str = "127.0.0.1", host: str = "127.0.0.1:8000", **codec: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings(tmp_path, **codec))
    transport = httpx.ASGITransport(app=app, client=(peer, 51000))
    async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as http:
        yield http


async def test_encode_then_decode_round_trip(tmp_path: Path) -> None:
    admin = token_headers(tmp_path)
    async with api(tmp_path) as http:
        encoded = await http.post("/codec/encode", json=plain_body(), headers=admin)
        assert encoded.status_code == 200, encoded.text
        (sealed,) = encoded.json()["payloads"]
        assert base64.b64decode(sealed["metadata"]["encoding"]) == b"binary/encrypted"
        assert base64.b64decode(sealed["metadata"]["encryption-key-id"]) == b"k1"
        assert b"ops" not in base64.b64decode(sealed["data"])
        decoded = await http.post("/codec/decode", json=encoded.json(), headers=admin)
        assert decoded.status_code == 200, decoded.text
        assert decoded.json() == plain_body()


async def test_decode_passes_plain_payloads_through(tmp_path: Path) -> None:
    async with api(tmp_path) as http:
        answer = await http.post(
            "/codec/decode", json=plain_body(), headers=token_headers(tmp_path)
        )
        assert answer.json() == plain_body()


async def test_production_needs_an_admin_token(tmp_path: Path) -> None:
    async with api(tmp_path) as http:
        missing = await http.post("/codec/decode", json=plain_body())
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        tenant = await http.post(
            "/codec/decode", json=plain_body(), headers=token_headers(tmp_path, "ads")
        )
        assert tenant.status_code == 403
        admin = await http.post("/codec/decode", json=plain_body(), headers=token_headers(tmp_path))
        assert admin.status_code == 200


async def test_meridian_up_serves_this_machine_without_a_token(tmp_path: Path) -> None:
    async with api(tmp_path, open_on_loopback=True) as http:
        assert (await http.post("/codec/decode", json=plain_body())).status_code == 200
    async with api(tmp_path, open_on_loopback=True, host="localhost:8000") as http:
        assert (await http.post("/codec/decode", json=plain_body())).status_code == 200


async def test_open_on_loopback_still_asks_other_machines_for_a_token(tmp_path: Path) -> None:
    async with api(tmp_path, open_on_loopback=True, peer="203.0.113.7") as http:
        assert (await http.post("/codec/decode", json=plain_body())).status_code == 401


async def test_open_on_loopback_refuses_a_foreign_host_name(tmp_path: Path) -> None:
    """A page on another site whose name resolves to 127.0.0.1 (DNS rebinding)."""
    async with api(tmp_path, open_on_loopback=True, host="rebind.example:8000") as http:
        assert (await http.post("/codec/decode", json=plain_body())).status_code == 401


async def test_cors_preflight_answers_the_ui_origin_only(tmp_path: Path) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace,authorization",
    }
    async with api(tmp_path) as http:
        ok = await http.options("/codec/decode", headers={"Origin": UI, **preflight})
        assert ok.status_code == 200
        assert ok.headers["Access-Control-Allow-Origin"] == UI
        assert "x-namespace" in ok.headers["Access-Control-Allow-Headers"].lower()
        assert ok.headers["Access-Control-Allow-Credentials"] == "true"
        other = await http.options(
            "/codec/decode", headers={"Origin": "https://evil.example", **preflight}
        )
        assert "Access-Control-Allow-Origin" not in other.headers
        answer = await http.post(
            "/codec/decode",
            json=plain_body(),
            headers={"Origin": UI, "X-Namespace": "default", **token_headers(tmp_path)},
        )
        assert answer.headers["Access-Control-Allow-Origin"] == UI
        refused = await http.post("/codec/decode", json=plain_body(), headers={"Origin": UI})
        assert refused.status_code == 401
        # The UI can read the refusal, and so tell its user to sign in.
        assert refused.headers["Access-Control-Allow-Origin"] == UI


async def test_cors_stays_off_the_rest_of_the_api(tmp_path: Path) -> None:
    async with api(tmp_path) as http:
        answer = await http.get("/healthz", headers={"Origin": UI})
        assert "Access-Control-Allow-Origin" not in answer.headers


async def test_bad_bodies_and_altered_payloads_are_400(tmp_path: Path) -> None:
    admin = token_headers(tmp_path)
    async with api(tmp_path) as http:
        assert (await http.post("/codec/decode", content=b"nope", headers=admin)).status_code == 400
        sealed = (await http.post("/codec/encode", json=plain_body(), headers=admin)).json()
        data = bytearray(base64.b64decode(sealed["payloads"][0]["data"]))
        data[-1] ^= 1
        sealed["payloads"][0]["data"] = b64(bytes(data))
        answer = await http.post("/codec/decode", json=sealed, headers=admin)
        assert answer.status_code == 400
        assert "does not decrypt" in answer.json()["detail"]


async def test_without_keys_the_codec_says_so(tmp_path: Path) -> None:
    async with api(tmp_path, keys={}) as http:
        answer = await http.post(
            "/codec/decode", json=plain_body(), headers=token_headers(tmp_path)
        )
        assert answer.status_code == 503
