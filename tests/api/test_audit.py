"""The audit log: every mutating /v1 request, refused ones included, is written to the
database (who, business unit, action, target, outcome, time), never its body; admins
read it at GET /v1/audit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.main import create_app
from meridian.auth.tokens import Principal, TokenVerifier
from meridian.settings import Settings
from meridian.store.schema import AuditRow
from meridian.tenancy.quotas import QuotaSettings
from tests.api.stage import Stage, staged
from tests.support import local_key, token_headers

ADS, BANK = "ads", "bank"
SECRET = "hunter2-do-not-log"


def body(task_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "etl",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox", "env": {"DB_PASSWORD": SECRET}},
        "start": False,
        **overrides,
    }
    if task_id is not None:
        spec["id"] = task_id
    return spec


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with staged(tmp_path) as stage:
        stage.http.headers.pop("Authorization")
        yield stage


@pytest.fixture
def as_(tmp_path: Path) -> dict[str, dict[str, str]]:
    return {
        ADS: token_headers(tmp_path, ADS),
        BANK: token_headers(tmp_path, BANK),
        "admin": token_headers(tmp_path, "admin"),
    }


def rows(stage: Stage) -> list[AuditRow]:
    with stage.store._db.read() as session:
        return list(session.scalars(select(AuditRow).order_by(AuditRow.id)))


def summary(stage: Stage) -> list[tuple[Any, ...]]:
    return [(r.subject, r.business_unit, r.action, r.target, r.outcome) for r in rows(stage)]


async def test_every_mutating_request_is_recorded_refused_ones_too(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    http = stage.http
    before = datetime.now(UTC)
    assert (await http.post("/v1/tasks", json=body("a1"), headers=as_[ADS])).status_code == 201
    generated = await http.post("/v1/tasks", json=body(), headers=as_[ADS])
    assert generated.status_code == 201
    new_id = generated.json()["id"]
    statuses = [
        (await http.post("/v1/tasks", json=body("a2"))).status_code,  # no token
        (
            await http.post("/v1/tasks", json=body("a3", business_unit=BANK), headers=as_[ADS])
        ).status_code,
        (await http.post("/v1/tasks", json=body("a1", name="other"), headers=as_[ADS])).status_code,
        (await http.post("/v1/tasks", json={"id": "a4"}, headers=as_[ADS])).status_code,
        (await http.post("/v1/tasks/a1/start", headers=as_[BANK])).status_code,
        (await http.post("/v1/tasks/a1/stop", headers=as_[ADS])).status_code,
        (await http.post("/v1/tasks/a1/start", headers=as_[ADS])).status_code,
        (await http.patch("/v1/tasks/a1", json={"name": "renamed"}, headers=as_[ADS])).status_code,
        (
            await http.put(
                "/v1/regions/aws-us-east-1/scaling/mode", json={"mode": "off"}, headers=as_[ADS]
            )
        ).status_code,
        (await http.post("/v1/placement:dry-run", json=body("d"), headers=as_[ADS])).status_code,
    ]
    assert statuses == [401, 403, 409, 422, 404, 200, 409, 409, 403, 200]
    # Reads are not recorded.
    assert (await http.get("/v1/tasks", headers=as_[ADS])).status_code == 200
    ads = "ads-user"  # the subject tests.support's tokens carry
    assert summary(stage) == [
        (ads, ADS, "task.submit", "a1", 201),
        (ads, ADS, "task.submit", new_id, 201),
        ("anonymous", None, "task.submit", "a2", 401),
        (ads, ADS, "task.submit", "a3", 403),
        (ads, ADS, "task.submit", "a1", 409),
        (ads, ADS, "task.submit", "a4", 422),
        ("bank-user", BANK, "task.start", "a1", 404),
        (ads, ADS, "task.stop", "a1", 200),
        (ads, ADS, "task.start", "a1", 409),
        (ads, ADS, "task.modify", "a1", 409),
        (ads, ADS, "region.scaling_mode", "aws-us-east-1", 403),
        (ads, ADS, "placement.dry_run", "d", 200),
    ]
    recorded = rows(stage)
    assert all(before <= r.at <= datetime.now(UTC) for r in recorded)
    assert {r.target_kind for r in recorded} == {"task", "region"}


async def test_the_body_is_never_written(stage: Stage, as_: dict[str, dict[str, str]]) -> None:
    await stage.http.post("/v1/tasks", json=body("s1"), headers=as_[ADS])
    await stage.http.post("/v1/tasks", json=body("s2", business_unit=BANK), headers=as_[ADS])
    await stage.http.patch(
        "/v1/tasks/s1", json={"job": {"env": {"TOKEN": SECRET}}}, headers=as_[ADS]
    )
    assert len(rows(stage)) == 3
    dump = repr([vars(r) for r in rows(stage)])
    assert SECRET not in dump


async def test_a_quota_refusal_is_recorded_as_429(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    stage.service.settings = stage.service.settings.model_copy(
        update={"quotas": QuotaSettings.model_validate({"default": {"max_active_tasks": 1}})}
    )
    await stage.http.post("/v1/tasks", json=body("q1", start=True), headers=as_[ADS])
    refused = await stage.http.post("/v1/tasks", json=body("q2", start=True), headers=as_[ADS])
    assert refused.status_code == 429
    assert summary(stage)[-1] == ("ads-user", ADS, "task.submit", "q2", 429)


async def test_no_audit_no_action(stage: Stage, as_: dict[str, dict[str, str]]) -> None:
    # Failing closed: a request that cannot be recorded is not carried out.
    def broken(**_: Any) -> int:
        raise RuntimeError("audit table unavailable")

    stage.store.record_audit = broken  # type: ignore[method-assign]
    refused = await stage.http.post("/v1/tasks", json=body("x", start=True), headers=as_[ADS])
    assert refused.status_code == 503
    assert "audit" in refused.json()["detail"]
    assert stage.store.find_tasks("x") == [] and stage.temporal.started == []


async def test_only_admins_read_the_audit_log(stage: Stage, as_: dict[str, dict[str, str]]) -> None:
    assert (await stage.http.get("/v1/audit")).status_code == 401
    forbidden = await stage.http.get("/v1/audit", headers=as_[ADS])
    assert forbidden.status_code == 403


async def test_the_audit_log_pages_and_filters(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    http = stage.http
    for i in range(3):
        await http.post("/v1/tasks", json=body(f"a{i}"), headers=as_[ADS])
        await http.post("/v1/tasks", json=body(f"b{i}"), headers=as_[BANK])
    await http.post("/v1/tasks/a0/stop", headers=as_[ADS])
    admin = as_["admin"]

    async def listing(**params: Any) -> dict[str, Any]:
        response = await http.get("/v1/audit", params=params, headers=admin)
        assert response.status_code == 200, response.text
        page: dict[str, Any] = response.json()
        return page

    everything = await listing()
    assert len(everything["items"]) == 7 and everything["next_cursor"] is None
    newest = everything["items"][0]
    assert {k: newest[k] for k in ("subject", "business_unit", "action", "target", "outcome")} == {
        "subject": "ads-user",
        "business_unit": ADS,
        "action": "task.stop",
        "target": "a0",
        "outcome": 200,
    }
    # Pages: newest first, no row twice, none skipped.
    seen: list[int] = []
    page = await listing(limit=3)
    while True:
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        page = await listing(limit=3, cursor=page["next_cursor"])
    assert seen == [item["id"] for item in everything["items"]]
    bank = await listing(business_unit=BANK)
    assert [i["target"] for i in bank["items"]] == ["b2", "b1", "b0"]
    stops = await listing(action="task.stop")
    assert [i["target"] for i in stops["items"]] == ["a0"]
    a0 = await listing(task="a0")
    assert [i["action"] for i in a0["items"]] == ["task.stop", "task.submit"]
    assert (await listing(task="a0", action="task.submit"))["items"][0]["outcome"] == 201
    bad = await http.get("/v1/audit", params={"cursor": "not-a-cursor"}, headers=admin)
    assert bad.status_code == 422


async def test_the_app_still_starts_through_the_recorder(tmp_path: Path) -> None:
    # The lifespan passes through every middleware; had the recorder failed on it,
    # uvicorn would serve the app without its state ("lifespan unsupported").
    local_key(tmp_path)
    settings = Settings(state_dir=tmp_path, temporal_address="127.0.0.1:1")
    app = create_app(settings)
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[str] = []
    for kind in ("lifespan.startup", "lifespan.shutdown"):
        inbox.put_nowait({"type": kind})

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_a_token_is_verified_once_per_request(
    stage: Stage, as_: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recorder and the route both need the caller: the signature is checked once,
    and the route still answers as if it had checked it itself."""
    verified: list[str | None] = []
    real_verify = TokenVerifier.verify

    def counting(self: TokenVerifier, token: str | None) -> Principal:
        verified.append(token)
        return real_verify(self, token)

    monkeypatch.setattr(TokenVerifier, "verify", counting)
    http = stage.http
    assert (await http.post("/v1/tasks", json=body("v1"), headers=as_[ADS])).status_code == 201
    assert len(verified) == 1
    bad = {"Authorization": as_[ADS]["Authorization"][:-4] + "AAAA"}
    refused = await http.post("/v1/tasks", json=body("v2"), headers=bad)
    assert refused.status_code == 401
    assert "bad token signature" in refused.headers["www-authenticate"]
    assert len(verified) == 2
    # Two requests with one token: each checks it, neither reuses the other's verdict.
    assert (await http.post("/v1/tasks", json=body("v3"), headers=as_[BANK])).status_code == 201
    assert (await http.post("/v1/tasks/v3/stop", headers=as_[BANK])).status_code == 200
    assert len(verified) == 4
    assert summary(stage)[-4:] == [
        ("ads-user", ADS, "task.submit", "v1", 201),
        ("anonymous", None, "task.submit", "v2", 401),
        ("bank-user", BANK, "task.submit", "v3", 201),
        ("bank-user", BANK, "task.stop", "v3", 200),
    ]
