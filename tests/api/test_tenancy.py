"""The tenant matrix: two business units and an admin, times every route.

Each cell asserts the status a caller gets and, where it is refused, that nothing
changed: the task row, its spec, and what Temporal was asked to do.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from meridian.settings import Settings
from tests.api.stage import Stage, staged
from tests.support import local_key, token_headers

ADS, BANK = "ads", "bank"


def body(task_id: str | None, **overrides: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": "etl",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
        "start": False,
        **overrides,
    }


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


async def snapshot(stage: Stage, unit: str, task_id: str) -> tuple[Any, ...]:
    task = stage.store.get_unit_task(unit, task_id)
    assert task is not None
    return (
        task.status,
        task.spec.model_dump(),
        len(stage.store.list_events(task.id)),
        list(stage.temporal.started),
        list(stage.temporal.signals),
    )


async def test_a_unit_sees_and_acts_on_its_own_tasks_only(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    http = stage.http
    # Submit: omitted business unit is the token's; naming another unit is 403.
    created = await http.post("/v1/tasks", json=body("ads-1"), headers=as_[ADS])
    assert created.status_code == 201, created.text
    assert created.json()["business_unit"] == ADS
    assert (await http.post("/v1/tasks", json=body("bank-1"), headers=as_[BANK])).status_code == 201
    stolen = await http.post("/v1/tasks", json=body("ads-2", business_unit=BANK), headers=as_[ADS])
    assert stolen.status_code == 403 and BANK in stolen.json()["detail"]
    assert stage.store.find_tasks("ads-2") == []
    on_behalf = await http.post(
        "/v1/tasks", json=body("bank-2", business_unit=BANK), headers=as_["admin"]
    )
    assert on_behalf.status_code == 201 and on_behalf.json()["business_unit"] == BANK

    before = await snapshot(stage, BANK, "bank-1")
    # Another unit's task does not exist, whatever is asked of it.
    for method, path, payload in [
        ("GET", "/v1/tasks/bank-1", None),
        ("GET", "/v1/tasks/bank-1/events", None),
        ("GET", "/v1/tasks/bank-1/placement", None),
        ("POST", "/v1/tasks/bank-1/start", None),
        ("POST", "/v1/tasks/bank-1/stop", None),
        ("PATCH", "/v1/tasks/bank-1", {"name": "mine-now"}),
    ]:
        response = await http.request(method, path, json=payload, headers=as_[ADS])
        missing = await http.request(
            method, path.replace("bank-1", "no-such-task"), json=payload, headers=as_[ADS]
        )
        assert response.status_code == 404, (method, path, response.text)
        assert response.json() == missing.json(), "another unit's task must look absent"
    assert await snapshot(stage, BANK, "bank-1") == before

    # Lists and filters leave other units out; admin sees everyone.
    async def ids(headers: dict[str, str], **params: str) -> set[str]:
        listed = await http.get("/v1/tasks", params=params, headers=headers)
        assert listed.status_code == 200
        return {t["id"] for t in listed.json()["items"]}

    assert await ids(as_[ADS]) == {"ads-1"}
    assert await ids(as_[ADS], business_unit=BANK) == set()
    assert await ids(as_[BANK]) == {"bank-1", "bank-2"}
    assert await ids(as_["admin"]) == {"ads-1", "bank-1", "bank-2"}
    assert await ids(as_["admin"], business_unit=ADS) == {"ads-1"}

    # The owner and admin act on it.
    assert (await http.get("/v1/tasks/bank-1", headers=as_[BANK])).status_code == 200
    assert (await http.get("/v1/tasks/bank-1/events", headers=as_["admin"])).status_code == 200
    started = await http.post("/v1/tasks/bank-1/start", headers=as_[BANK])
    # The workflow id is the task key: the unit, a dot, the id (meridian/tasks/keys.py).
    assert started.status_code == 200 and stage.temporal.started == ["bank.bank-1"]
    stopped = await http.post("/v1/tasks/ads-1/stop", headers=as_["admin"])
    assert stopped.status_code == 200 and stopped.json()["status"] == "STOPPED"


async def test_two_units_may_use_the_same_id_and_idempotency_key(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    http = stage.http
    for unit in (ADS, BANK):
        created = await http.post("/v1/tasks", json=body("nightly", start=True), headers=as_[unit])
        assert created.status_code == 201, created.text
        task = created.json()
        assert (task["id"], task["business_unit"]) == ("nightly", unit)
        assert task["workflow_id"] == f"{unit}.nightly"
        # Each unit sees its own under the shared id, by id or by workflow id.
        for ref in ("nightly", f"{unit}.nightly"):
            own = await http.get(f"/v1/tasks/{ref}", headers=as_[unit])
            assert own.status_code == 200, own.text
            assert own.json()["workflow_id"] == f"{unit}.nightly"
        events = (await http.get("/v1/tasks/nightly/events", headers=as_[unit])).json()
        assert (events["task_id"], events["workflow_id"]) == ("nightly", f"{unit}.nightly")
        placement = await http.get("/v1/tasks/nightly/placement", headers=as_[unit])
        assert placement.json()["workflow_id"] == f"{unit}.nightly"
    assert stage.temporal.started == ["ads.nightly", "bank.nightly"]
    # Another unit's workflow id, or naming its unit, is still "no such task".
    assert (await http.get("/v1/tasks/bank.nightly", headers=as_[ADS])).status_code == 404
    named = await http.get("/v1/tasks/nightly?business_unit=bank", headers=as_[ADS])
    assert named.status_code == 404

    # One Idempotency-Key, two units: two tasks; a retry within a unit finds its own.
    keyed: dict[str, str] = {}
    for unit in (ADS, BANK, ADS):
        response = await http.post(
            "/v1/tasks", json=body(None), headers={**as_[unit], "Idempotency-Key": "K-7"}
        )
        assert response.status_code == (200 if unit in keyed else 201), response.text
        assert keyed.setdefault(unit, response.json()["id"]) == response.json()["id"]
    assert keyed[ADS] != keyed[BANK]

    # An admin: a bare id two units use is ambiguous, and the answer says how to resolve it.
    admin = as_["admin"]
    ambiguous = await http.get("/v1/tasks/nightly", headers=admin)
    assert ambiguous.status_code == 409
    detail = ambiguous.json()["detail"]
    assert "ads, bank" in detail and "business_unit" in detail and "workflow id" in detail
    by_unit = await http.get("/v1/tasks/nightly", params={"business_unit": BANK}, headers=admin)
    assert by_unit.json()["workflow_id"] == "bank.nightly"
    by_key = await http.get("/v1/tasks/ads.nightly", headers=admin)
    assert (by_key.json()["id"], by_key.json()["business_unit"]) == ("nightly", ADS)
    unique = await http.get(f"/v1/tasks/{keyed[BANK]}", headers=admin)  # one unit has it
    assert unique.status_code == 200 and unique.json()["business_unit"] == BANK
    stopped = await http.post("/v1/tasks/nightly/stop?business_unit=ads", headers=admin)
    assert stopped.status_code == 200, stopped.text
    assert stage.temporal.signals == [("ads.nightly", "stop")]
    # Lists show both under the same id, each with its workflow id.
    listed = (await http.get("/v1/tasks", headers=admin)).json()["items"]
    assert {(t["id"], t["workflow_id"]) for t in listed if t["id"] == "nightly"} == {
        ("nightly", "ads.nightly"),
        ("nightly", "bank.nightly"),
    }


async def test_a_dry_run_is_scoped_like_a_submit(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    other = await stage.http.post(
        "/v1/placement:dry-run", json=body("x", business_unit=BANK), headers=as_[ADS]
    )
    assert other.status_code == 403
    own = await stage.http.post("/v1/placement:dry-run", json=body("x"), headers=as_[ADS])
    assert own.status_code == 200, own.text


async def test_regions_are_read_by_all_and_changed_by_admin_only(
    stage: Stage, as_: dict[str, dict[str, str]]
) -> None:
    http = stage.http
    for who in (ADS, BANK, "admin"):
        assert (await http.get("/v1/regions", headers=as_[who])).status_code == 200
        assert (await http.get("/v1/sweeps", headers=as_[who])).status_code == 200
    region = (await http.get("/v1/regions", headers=as_[ADS])).json()["items"][0]["name"]
    mode_before = stage.store.get_scaling_mode(region)
    refused = await http.put(
        f"/v1/regions/{region}/scaling/mode", json={"mode": "off"}, headers=as_[ADS]
    )
    assert refused.status_code == 403
    assert stage.store.get_scaling_mode(region) == mode_before
    allowed = await http.put(
        f"/v1/regions/{region}/scaling/mode", json={"mode": "off"}, headers=as_["admin"]
    )
    assert allowed.status_code == 200, allowed.text
    assert stage.store.get_scaling_mode(region) == "off"


async def test_every_v1_route_needs_a_token_and_health_and_docs_do_not(tmp_path: Path) -> None:
    local_key(tmp_path)
    app = create_app(Settings(state_dir=tmp_path, database_url=f"sqlite:///{tmp_path}/m.db"))
    transport = httpx.ASGITransport(app=app)
    paths = app.openapi()["paths"]
    v1 = [(m.upper(), p) for p, ops in paths.items() if p.startswith("/v1") for m in ops]
    assert len(v1) >= 14
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        for method, path in v1:
            url = path.replace("{task_id}", "t").replace("{name}", "aws-us-east-1")
            response = await http.request(method, url)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="meridian"')
        for path in ("/healthz", "/openapi.json", "/docs"):
            assert (await http.get(path)).status_code == 200, path


async def test_a_bad_token_is_401_saying_what_is_wrong(stage: Stage, tmp_path: Path) -> None:
    cases = {
        "missing": {},
        "malformed": {"Authorization": "Bearer not.a.jwt"},
        "not bearer": {"Authorization": "Basic dXNlcjpwdw=="},
    }
    seen = {}
    for case, headers in cases.items():
        response = await stage.http.get("/v1/tasks", headers=headers)
        assert response.status_code == 401, case
        assert "WWW-Authenticate" in response.headers
        seen[case] = response.json()["detail"]["error"]
    assert seen == {"missing": "missing", "malformed": "malformed", "not bearer": "malformed"}
    expired = token_headers(tmp_path, ADS)  # minted now; rewind the clock instead
    from meridian.auth.tokens import mint_token

    old = mint_token(local_key(tmp_path), business_unit=ADS, ttl_seconds=60, now=1_000_000)
    response = await stage.http.get("/v1/tasks", headers={"Authorization": f"Bearer {old}"})
    assert response.status_code == 401
    assert response.json()["detail"]["error"] == "expired"
    assert 'error_description="token expired"' in response.headers["WWW-Authenticate"]
    assert (await stage.http.get("/v1/tasks", headers=expired)).status_code == 200
