"""A request body over the API's limit is refused with 413 before any handler sees it:
whether its Content-Length says so up front or a chunked body turns out too long."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request

from api.main import BodyLimit, create_app
from meridian.settings import Settings
from tests.support import local_key

LIMIT = 1000


@pytest.fixture
async def echo() -> AsyncIterator[tuple[httpx.AsyncClient, list[int]]]:
    """An app behind the limit whose one route reports the body sizes it was given."""
    app = FastAPI()
    seen: list[int] = []

    @app.post("/echo")
    async def echo_body(request: Request) -> dict[str, int]:
        seen.append(len(await request.body()))
        return {"size": seen[-1]}

    app.add_middleware(BodyLimit, max_bytes=LIMIT)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, seen


async def chunks(total: int, size: int = 300) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


async def test_a_body_within_the_limit_reaches_the_handler_whole(
    echo: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, seen = echo
    assert (await client.post("/echo", content=b"x" * LIMIT)).json() == {"size": LIMIT}
    chunked = await client.post("/echo", content=chunks(LIMIT))
    assert "content-length" not in chunked.request.headers
    assert chunked.json() == {"size": LIMIT}
    assert seen == [LIMIT, LIMIT]


async def test_a_declared_length_over_the_limit_is_413(
    echo: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, seen = echo
    response = await client.post("/echo", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json() == {"detail": f"request body is over the limit of {LIMIT} bytes"}
    assert seen == []


async def test_a_chunked_body_over_the_limit_is_413(
    echo: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, seen = echo
    response = await client.post("/echo", content=chunks(LIMIT + 1))
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert seen == []


async def test_a_content_length_that_understates_the_body_does_not_get_it_through(
    echo: tuple[httpx.AsyncClient, list[int]],
) -> None:
    client, seen = echo
    response = await client.post(
        "/echo", content=chunks(LIMIT * 3), headers={"Content-Length": "10"}
    )
    assert response.status_code == 413
    assert seen == []


async def test_the_app_takes_its_limit_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path, api_max_body_bytes=2048)
    assert Settings(state_dir=tmp_path).api_max_body_bytes == 1 << 20  # 1 MiB by default
    local_key(tmp_path)
    transport = httpx.ASGITransport(app=create_app(settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        response = await client.post("/v1/tasks", content=b"{" + b" " * 4096 + b"}")
    assert response.status_code == 413
    assert "2048 bytes" in response.json()["detail"]


def test_the_limit_is_a_setting_named_like_the_other_api_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MERIDIAN_API_MAX_BODY_BYTES", "4096")
    assert Settings().api_max_body_bytes == 4096
