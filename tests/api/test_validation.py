"""One validation path: submit, modify and the placement dry run answer the same 422s,
shaped as FastAPI answers a body that does not fit the model, and store nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meridian.tasks import spec as limits
from tests.api.stage import Stage, staged


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with staged(tmp_path) as stage:
        yield stage


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
        "start": False,
    }
    base.update(overrides)
    return base


def job(**fields: Any) -> dict[str, Any]:
    return {"image": "busybox", **fields}


def placement(**fields: Any) -> dict[str, Any]:
    return {"placement": fields}


LONG_COMMAND = "x" * (limits.COMMAND_ITEM_CHARS_MAX + 1)
LONG_VALUE = "v" * (limits.ENV_VALUE_CHARS_MAX + 1)
TOO_MANY: dict[str, tuple[dict[str, Any], list[str | int]]] = {
    "command items": (
        body(job=job(command=["true"] * (limits.COMMAND_ITEMS_MAX + 1))),
        ["job", "command"],
    ),
    "args items": (body(job=job(args=["a"] * (limits.COMMAND_ITEMS_MAX + 1))), ["job", "args"]),
    "a long argument": (body(job=job(args=["ok", LONG_COMMAND])), ["job", "args", 1]),
    "env entries": (
        body(job=job(env={f"E{i}": "1" for i in range(limits.ENV_ENTRIES_MAX + 1)})),
        ["job", "env"],
    ),
    "a long env value": (body(job=job(env={"BIG": LONG_VALUE})), ["job", "env", "BIG"]),
    "a long env name": (
        body(job=job(env={"N" * (limits.ENV_NAME_CHARS_MAX + 1): "1"})),
        ["job", "env"],
    ),
    "annotations": (
        body(job=job(annotations={f"a/{i}": "1" for i in range(limits.ANNOTATIONS_MAX + 1)})),
        ["job", "annotations"],
    ),
    "a long annotation value": (
        body(job=job(annotations={"a/b": "v" * (limits.ANNOTATION_VALUE_CHARS_MAX + 1)})),
        ["job", "annotations", "a/b"],
    ),
    "annotations in total": (
        body(job=job(annotations={f"a/{i}": "v" * 60_000 for i in range(5)})),
        ["job", "annotations"],
    ),
    "labels": (body(labels={f"k{i}": "v" for i in range(limits.LABELS_MAX + 1)}), ["labels"]),
    "placement regions": (
        body(**placement(regions=["aws-us-east-1"] * (limits.PLACEMENT_NAMES_MAX + 1))),
        ["placement", "regions"],
    ),
    "placement providers": (
        body(**placement(providers=["aws"] * (limits.PLACEMENT_NAMES_MAX + 1))),
        ["placement", "providers"],
    ),
    "preference tiers": (
        body(**placement(preferences=[["aws"]] * (limits.PREFERENCE_TIERS_MAX + 1))),
        ["placement", "preferences"],
    ),
    "names in a tier": (
        body(**placement(preferences=[["aws"] * (limits.PLACEMENT_NAMES_MAX + 1)])),
        ["placement", "preferences", 0],
    ),
    "a long pinned region": (
        body(**placement(region="r" * (limits.PLACEMENT_NAME_CHARS_MAX + 1))),
        ["placement", "region"],
    ),
}


@pytest.mark.parametrize("case", list(TOO_MANY))
async def test_past_a_bound_is_a_422_naming_the_field_and_stores_nothing(
    stage: Stage, case: str
) -> None:
    sent, field = TOO_MANY[case]
    sent = {**sent, "id": "t-big"}
    response = await stage.http.post("/v1/tasks", json=sent)
    assert response.status_code == 422, response.text[:500]
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", *field]
    assert "at most" in error["msg"]
    assert (await stage.http.get("/v1/tasks/t-big")).status_code == 404
    # The dry run goes the same way, with the same answer.
    dry = await stage.http.post("/v1/placement:dry-run", json=sent)
    assert dry.status_code == 422
    assert dry.json() == response.json()


async def test_a_body_at_every_bound_is_accepted(stage: Stage) -> None:
    at_bounds = body(
        id="t-full",
        job=job(
            command=["c" * limits.COMMAND_ITEM_CHARS_MAX] + ["c"] * (limits.COMMAND_ITEMS_MAX - 1),
            args=["a"] * limits.COMMAND_ITEMS_MAX,
            env={f"E{i}": "1" for i in range(limits.ENV_ENTRIES_MAX - 1)}
            | {"BIG": "v" * limits.ENV_VALUE_CHARS_MAX},
            annotations={f"a/{i}": "1" for i in range(limits.ANNOTATIONS_MAX)},
        ),
        labels={f"k{i}": "v" for i in range(limits.LABELS_MAX)},
        placement={
            "regions": ["aws-us-east-1"] * limits.PLACEMENT_NAMES_MAX,
            "preferences": [["aws"]] * limits.PREFERENCE_TIERS_MAX,
        },
    )
    response = await stage.http.post("/v1/tasks", json=at_bounds)
    assert response.status_code == 201, response.text[:500]


async def test_catalog_errors_keep_their_shape(stage: Stage) -> None:
    cases = [
        (
            body(data_source={"provider": "aws", "region": "mars-1"}),
            ["body", "data_source", "region"],
            "unknown aws region 'mars-1'",
        ),
        (
            body(**placement(region="nowhere-1")),
            ["body", "placement", "region"],
            "unknown region 'nowhere-1'; known: ",
        ),
        (
            body(**placement(regions=["aws-us-east-1", "nowhere-1"])),
            ["body", "placement", "regions", 1],
            "unknown region 'nowhere-1'; known: ",
        ),
        (
            body(**placement(preferences=[["aws"], ["oracle"]])),
            ["body", "placement", "preferences", 1, 0],
            "'oracle' is neither a region nor a provider of this deployment",
        ),
    ]
    for sent, loc, words in cases:
        for path in ("/v1/tasks", "/v1/placement:dry-run"):
            response = await stage.http.post(path, json=sent)
            assert response.status_code == 422, response.text
            (error,) = response.json()["detail"]
            assert error.keys() == {"loc", "msg", "type"}
            assert error["loc"] == loc and error["type"] == "value_error"
            assert words in error["msg"], error["msg"]
    assert (await stage.http.get("/v1/tasks")).json()["items"] == []


async def test_a_patch_past_a_bound_is_a_422_and_changes_nothing(stage: Stage) -> None:
    created = await stage.http.post("/v1/tasks", json=body(id="t-patch"))
    assert created.status_code == 201, created.text
    too_many = {f"k{i}": "v" for i in range(limits.LABELS_MAX + 1)}
    response = await stage.http.patch("/v1/tasks/t-patch", json={"labels": too_many})
    assert response.status_code == 422, response.text
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "labels"]]
    assert (await stage.http.get("/v1/tasks/t-patch")).json()["spec"]["labels"] == {}
    fine = await stage.http.patch("/v1/tasks/t-patch", json={"labels": {"team": "x"}})
    assert fine.status_code == 200, fine.text
    assert fine.json()["spec"]["labels"] == {"team": "x"}
