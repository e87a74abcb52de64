"""Schemathesis over the whole API's OpenAPI, in-process, with an admin token: whatever a
client sends, the API answers with no 5xx and with a documented status code, content
type, headers and body.

The app is `create_app`'s, as `meridian up` serves it (body limit, audit, quota errors,
codec, every router), over SQLite: once with a stand-in Temporal client, so the task
routes run all the way through TaskService, and once as before Temporal answers. Path
parameters mostly name seeded tasks and real regions; valid task bodies, which random
ones almost never are, get a property test of their own. Bounded and deterministic: a
fixed seed, a few examples per operation; no deadline (a timing assertion on a shared
machine is a flake, not a finding).
"""

from __future__ import annotations

import base64
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.core import NOT_SET
from starlette.types import Receive, Scope, Send
from temporalio.client import Client

from api.deps import AppState
from api.main import create_app
from meridian.placement.scoring import place
from meridian.placement.types import PlacementRequest, RegionSnapshot
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.view import RegionView
from meridian.security.settings import CodecSettings
from meridian.settings import Settings
from meridian.store import Store
from meridian.store.records import Transition
from meridian.tasks.service import TaskService
from meridian.tasks.spec import TaskSpec, TaskStatus
from tests.api.stage import DEV_REGIONS, FakeClient, FakeHandle
from tests.support import token_headers

SEED = 20_250_612
EXAMPLES_PER_OPERATION = 25
CODEC_KEY = base64.b64encode(bytes(range(32))).decode()


class UpdatingHandle(FakeHandle):
    """A running task's modify goes to its workflow as an update; Temporal accepts it."""

    async def execute_update(self, update: str, arg: Any) -> None:
        self.client.signals.append((self.workflow_id, update))


class _Healthy:
    async def check_health(self) -> bool:
        return True


class FuzzTemporal(FakeClient):
    service_client = _Healthy()  # /readyz asks it

    def get_workflow_handle(self, workflow_id: str) -> UpdatingHandle:
        return UpdatingHandle(self, workflow_id)


class FuzzedApp:
    """`create_app`'s app, with the state its lifespan would set, over SQLite in a state
    dir of its own: with `temporal`, as connected to it; without, as before Temporal
    answers. Its own lifespan would connect to whatever Temporal listens on this
    machine's default port."""

    def __init__(self, state_dir: Path, temporal: FuzzTemporal | None) -> None:
        self.headers = token_headers(state_dir)  # also creates the local signing key
        self.settings = Settings(
            state_dir=state_dir,
            regions_file=DEV_REGIONS,
            codec=CodecSettings(keys={"fuzz": CODEC_KEY}),
        )
        self.app = create_app(self.settings)
        self.temporal = temporal
        self.store: Store | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            self._start()
            await send({"type": "lifespan.startup.complete"})
        if self.store is not None:
            self.store.close()
        await send({"type": "lifespan.shutdown.complete"})

    def _start(self) -> None:
        """The state, over the same database each time: Schemathesis may stop the
        lifespan after a failure and start it again for the next operation."""
        config = self.settings
        first = self.store is None
        store = self.store = Store.from_settings(config)
        store.migrate()
        regions = load_regions(config.regions_file)
        catalog = Catalog.default()
        state = AppState(
            settings=config,
            store=store,
            regions=regions,
            catalog=catalog,
            view=RegionView(store, regions, config.placement, catalog),
        )
        if self.temporal is not None:
            state.client = cast(Client, self.temporal)
            state.service = TaskService(store, state.client, config, catalog, regions)
        self.app.state.meridian = state
        if first:
            seed_tasks(store, state.view.snapshots(), config, catalog)


# Tasks in each stage of their life, so that the routes naming a task reach past 404.
SEEDED = ("pending", "scheduling", "running", "succeeded")
REGIONS = tuple(load_regions(DEV_REGIONS).names)


def seed_tasks(
    store: Store, snapshots: list[RegionSnapshot], config: Settings, catalog: Catalog
) -> None:
    spec = TaskSpec.model_validate(
        {
            "name": "etl",
            "business_unit": "ads",
            "kind": "batch",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "busybox", "resources": {"cpu": "500m", "memory": "256Mi"}},
        }
    )
    now = datetime.now(UTC)
    for task_id in SEEDED:
        pending = task_id == "pending"
        store.create_task(
            task_id, spec, status=TaskStatus.PENDING if pending else TaskStatus.SCHEDULING
        )
    decision = place(
        PlacementRequest(
            task_id="running",
            data_source=spec.data_source,
            resources=spec.job.resources,
            constraints=spec.placement,
            excluded_regions=[],
        ),
        snapshots,
        config.placement,
        catalog,
    )
    for task_id in ("running", "succeeded"):
        store.record_placement(task_id, 1, 0, decision.model_dump(mode="json"), now)
        store.record_transition(
            Transition(
                task_id=task_id,
                event_key="1:1:RUNNING",
                seq=1,
                status=TaskStatus.RUNNING,
                attempt=1,
                at=now,
                region=decision.chosen,
                job_name=f"{task_id}-1",
            )
        )
    store.record_transition(
        Transition(
            task_id="succeeded",
            event_key="1:2:SUCCEEDED",
            seq=2,
            status=TaskStatus.SUCCEEDED,
            attempt=1,
            at=now,
            exit_code=0,
        )
    )


def fuzz_config(*, server_errors: list[str]) -> SchemathesisConfig:
    return SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "generation": {
                "max-examples": EXAMPLES_PER_OPERATION,
                "database": "none",
                # An unknown query parameter is ignored, as HTTP APIs do: not an error.
                "allow-extra-parameters": False,
            },
            # What is generated depends on the seed alone, not on earlier answers (which
            # hold times and random ids): the same run every time.
            "phases": {
                "stateful": {"enabled": False},
                "examples": {"extra-data-sources": {"responses": False}},
                "coverage": {
                    "extra-data-sources": {"responses": False},
                    "generate-duplicate-query-parameters": False,  # see single_values
                },
                "fuzzing": {
                    "extra-data-sources": {"responses": False},
                    "error-feedback": {"enabled": False},
                },
            },
            # Mostly tasks and regions that exist, so answers other than 404 are checked.
            "dictionaries": {
                "tasks": {"values": list(SEEDED)},
                "regions": {"values": list(REGIONS)},
            },
            "parameters": {
                "path.task_id": {"dictionary": "tasks", "probability": 0.8},
                "path.name": {"dictionary": "regions", "probability": 0.8},
            },
            "checks": {
                # The 5xx an answer may be; any other is a bug.
                "not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", *server_errors]},
                # A body the JSON Schema allows may still break a rule across fields (a
                # status_port on a batch task) or name an unknown cursor: 422 is right.
                "positive_data_acceptance": {"enabled": False},
            },
        }
    )


# Schemathesis's pytest plugin makes one test per operation from a schema loaded at
# import (its fixture-loaded schemas do not run under this pytest), so the apps, their
# state dirs and signing keys are made at import too; the directory goes at exit.
_STATE = tempfile.TemporaryDirectory(prefix="meridian-fuzz-")
CONNECTED = FuzzedApp(Path(_STATE.name) / "connected", FuzzTemporal())
EARLY = FuzzedApp(Path(_STATE.name) / "early", None)
connected = schemathesis.openapi.from_asgi(
    "/openapi.json", CONNECTED, config=fuzz_config(server_errors=[])
)
# Before Temporal answers, /readyz and whatever needs Temporal say 503, by design.
early = schemathesis.openapi.from_asgi(
    "/openapi.json", EARLY, config=fuzz_config(server_errors=["503"])
)


def single_values(context: Any, query: dict[str, Any] | None) -> bool:
    """No query parameter given twice: the last one counts, as in most servers, which
    is no schema violation the API must refuse (none of its parameters is a list)."""
    return not any(isinstance(value, list) for value in (query or {}).values())


for _schema in (connected, early):
    _schema.hook("filter_query")(single_values)


@connected.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_with_temporal(case: Case) -> None:
    if _repeats_a_query_parameter(case):
        return
    case.call_and_validate(headers=CONNECTED.headers)


@early.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_before_temporal_answers(case: Case) -> None:
    """Reads answer from the database; what needs Temporal says 503, as documented."""
    if _repeats_a_query_parameter(case):
        return
    case.call_and_validate(headers=EARLY.headers)


def _repeats_a_query_parameter(case: Case) -> bool:
    """`?limit=&limit=9` (a list, or an object flattened into repeats): the coverage phase
    sends it despite `single_values`. Starlette takes the last value, as most HTTP
    frameworks do; the schema cannot say so."""
    return any(isinstance(value, (list, dict)) for value in (case.query or {}).values())


async def test_a_wrong_method_is_told_every_method_the_path_takes() -> None:
    """RFC 9110: a 405's Allow lists the methods the resource supports; the router only
    knew the first route whose path matched."""
    transport = httpx.ASGITransport(app=CONNECTED.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        task = await http.request("OPTIONS", "/v1/tasks/t-1", headers=CONNECTED.headers)
        tasks = await http.delete("/v1/tasks", headers=CONNECTED.headers)
    assert task.status_code == 405
    assert set(task.headers["Allow"].split(", ")) == {"GET", "PATCH"}
    assert tasks.status_code == 405
    assert set(tasks.headers["Allow"].split(", ")) == {"GET", "POST"}


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\x80\xff", id="not-utf-8"),  # was a 500
        pytest.param(b'{"payloads": "\xff"}', id="object-not-utf-8"),  # was a 500 too
        pytest.param(b"[]", id="empty-array"),  # protobuf's parser read these as no payloads
        pytest.param(b'""', id="empty-string"),
    ],
)
async def test_a_codec_body_that_is_not_a_json_object_is_a_bad_request(body: bytes) -> None:
    """Found by the fuzzer: the protocol's body is a JSON object, and nothing else is
    the documented 400."""
    transport = httpx.ASGITransport(app=CONNECTED.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        for path in ("/codec/decode", "/codec/encode"):
            answer = await http.post(
                path,
                content=body,
                headers={**CONNECTED.headers, "Content-Type": "application/json"},
            )
            assert answer.status_code == 400, answer.text
            assert "not a Payloads JSON body" in answer.json()["detail"]


# Bodies that pass every rule, which random ones almost never do: so that what a
# submitted task answers (201, 200, the task, its events and placement) is checked too.
DATA_SOURCES = [
    {"provider": "aws", "region": "us-east-1"},
    {"provider": "gcp", "region": "europe-west1"},
    {"provider": "alibaba", "region": "cn-hangzhou"},
]
ENV = st.dictionaries(
    st.from_regex(r"\A[A-Z][A-Z0-9_]{0,6}\Z"),  # too short for the reserved MERIDIAN_
    st.one_of(
        st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=8),
        st.builds(
            lambda name, key: {"secret_ref": {"name": name, "key": key}},
            st.from_regex(r"\A[a-z]([a-z0-9-]{0,8}[a-z0-9])?\Z"),  # a DNS-1123 name
            st.from_regex(r"\A[a-z][a-z0-9_.]{0,8}\Z"),
        ),
    ),
    max_size=3,
)
PLACEMENT = st.one_of(
    st.just({}),
    st.builds(lambda r: {"region": r}, st.sampled_from(REGIONS)),
    st.builds(lambda p: {"providers": p}, st.lists(st.sampled_from(["aws", "gcp"]), max_size=2)),
    st.builds(lambda rs: {"preferences": [rs]}, st.lists(st.sampled_from(REGIONS), max_size=2)),
)


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    resident = draw(st.booleans())
    job: dict[str, Any] = {
        "image": draw(st.sampled_from(["busybox", "registry.example/etl:1.2"])),
        "env": draw(ENV),
        "resources": {"cpu": draw(st.sampled_from(["100m", "1"])), "memory": "64Mi"},
    }
    if resident and draw(st.booleans()):
        job["status_port"] = draw(st.integers(1024, 65535))
    body: dict[str, Any] = {
        "name": draw(st.from_regex(r"\A[a-z][a-z0-9-]{0,20}\Z")),
        "kind": "resident" if resident else "batch",
        "data_source": draw(st.sampled_from(DATA_SOURCES)),
        "job": job,
        "placement": draw(PLACEMENT),
        "start": draw(st.booleans()),
        "labels": draw(st.dictionaries(st.sampled_from(["team", "tier"]), st.just("x"))),
    }
    if draw(st.booleans()):
        body["business_unit"] = draw(st.sampled_from(["ads", "search"]))
    return body


def answer(method: str, path: str, task_id: str | None = None, body: Any = NOT_SET) -> Any:
    """The API's answer to a request made by hand, checked as the fuzzer checks its own."""
    ids = {"task_id": task_id} if task_id is not None else None
    case = connected[path][method].Case(path_parameters=ids, body=body)
    return case.call_and_validate(headers=CONNECTED.headers)


@seed(SEED)
@settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(body=valid_bodies(), patch=st.sampled_from([{"labels": {"team": "y"}}, {"name": "renamed"}]))
def test_a_valid_task_answers_as_documented_through_its_life(
    body: dict[str, Any], patch: dict[str, Any]
) -> None:
    dry_run = answer("POST", "/v1/placement:dry-run", body=body)
    assert dry_run.status_code == 200, dry_run.text
    submitted = answer("POST", "/v1/tasks", body=body)
    assert submitted.status_code == 201, submitted.text
    task_id = submitted.json()["id"]
    again = answer("POST", "/v1/tasks", body={**body, "id": task_id})
    assert again.status_code == 200, again.text  # the same body again: found, not made
    for path in ("/v1/tasks/{task_id}", "/v1/tasks/{task_id}/events"):
        assert answer("GET", path, task_id).status_code == 200
    assert answer("GET", "/v1/tasks/{task_id}/placement", task_id).status_code == 200
    assert answer("PATCH", "/v1/tasks/{task_id}", task_id, patch).status_code == 200
    if not body["start"]:
        assert answer("POST", "/v1/tasks/{task_id}/start", task_id).status_code == 200
    assert answer("POST", "/v1/tasks/{task_id}/stop", task_id).status_code == 200
