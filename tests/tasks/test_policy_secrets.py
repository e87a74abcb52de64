"""Secrets by reference: an env value may name a Kubernetes Secret's key. Only the
reference is accepted, stored and shown; its names are checked as Kubernetes checks them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from meridian.store import spec_hash
from meridian.tasks.spec import SecretEnv, TaskPatch, TaskSpec
from tests.api.stage import Stage, staged

REF = {"secret_ref": {"name": "db-creds", "key": "password"}}
LIST_REF = {"name": "PASSWORD", "valueFrom": {"secretKeyRef": REF["secret_ref"]}}


def body(env: Any = None, **job: Any) -> dict[str, Any]:
    return {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox", **({"env": env} if env is not None else {}), **job},
    }


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with staged(tmp_path, "ads") as stage:
        yield stage


def test_map_and_list_forms_are_the_same_spec() -> None:
    from_map = TaskSpec.model_validate(body({"PASSWORD": REF, "MODE": "fast"}))
    from_list = TaskSpec.model_validate(body([LIST_REF, {"name": "MODE", "value": "fast"}]))
    assert from_map == from_list
    assert isinstance(from_map.job.env["PASSWORD"], SecretEnv)
    assert from_map.model_dump(mode="json")["job"]["env"] == {"PASSWORD": REF, "MODE": "fast"}


def test_a_spec_without_the_new_fields_dumps_and_hashes_as_before() -> None:
    # Stored specs and idempotent resubmits compare by hash: the optional fields added
    # for the pod policy must not appear in the dump of a spec that does not use them.
    spec = TaskSpec.model_validate(body({"MODE": "fast"}))
    assert set(spec.model_dump(mode="json")["job"]) == {
        "image",
        "command",
        "args",
        "env",
        "resources",
        "annotations",
        "status_port",
    }
    assert spec_hash(spec) == spec_hash(TaskSpec.model_validate(spec.model_dump(mode="json")))


@pytest.mark.parametrize(
    ("env", "loc"),
    [
        ({"P": {"secret_ref": {"name": "DB_Creds", "key": "k"}}}, ("P", "secret_ref", "name")),
        ({"P": {"secret_ref": {"name": "a" * 254, "key": "k"}}}, ("P", "secret_ref", "name")),
        ({"P": {"secret_ref": {"name": "db", "key": "a/b"}}}, ("P", "secret_ref", "key")),
        ({"P": {"secret_ref": {"name": "db", "key": "..k"}}}, ("P", "secret_ref", "key")),
        ({"P": {"secret_ref": {"name": "db"}}}, ("P", "secret_ref", "key")),
        ({"P": {"secret": "x"}}, ("P", "secret_ref")),
        ({"P": 3}, ("P",)),
    ],
)
def test_bad_references_name_the_field(env: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body(env))
    assert ("job", "env", *loc) in [e["loc"] for e in info.value.errors()]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"name": "P", "valueFrom": {"configMapKeyRef": REF["secret_ref"]}}, "secretKeyRef"),
        ({"name": "P", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, "secretKeyRef"),
        ({"name": "P", "value": "x", "valueFrom": {"secretKeyRef": REF["secret_ref"]}}, "both"),
    ],
)
def test_list_form_accepts_only_secret_key_refs(entry: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body([entry]))
    assert words in str(info.value)


def test_a_patch_can_swap_a_literal_for_a_reference() -> None:
    spec = TaskSpec.model_validate(body({"PASSWORD": "hunter2", "MODE": "fast"}))
    patched = TaskPatch.model_validate({"job": {"env": {"PASSWORD": REF}}}).apply_to(spec)
    assert patched.model_dump(mode="json")["job"]["env"] == {"PASSWORD": REF, "MODE": "fast"}
    listed = TaskPatch.model_validate({"job": {"env": [LIST_REF]}}).apply_to(spec)
    assert listed == patched


async def test_only_the_reference_is_stored_and_shown(stage: Stage) -> None:
    sent = {**body([LIST_REF, {"name": "MODE", "value": "fast"}]), "id": "t-sec", "start": False}
    created = await stage.http.post("/v1/tasks", json=sent)
    assert created.status_code == 201, created.text
    shown = (await stage.http.get("/v1/tasks/t-sec")).json()["spec"]["job"]["env"]
    assert shown == {"PASSWORD": REF, "MODE": "fast"}
    stored = stage.store.get_unit_task("ads", "t-sec")
    assert stored is not None
    assert stored.spec.model_dump(mode="json")["job"]["env"] == shown


async def test_a_bad_reference_is_a_422_naming_the_field(stage: Stage) -> None:
    sent = {**body({"P": {"secret_ref": {"name": "Bad_Name", "key": "k"}}}), "start": False}
    for path in ("/v1/tasks", "/v1/placement:dry-run"):
        response = await stage.http.post(path, json=sent)
        assert response.status_code == 422, response.text
        locs = [e["loc"] for e in response.json()["detail"]]
        assert ["body", "job", "env", "P", "secret_ref", "name"] in locs
