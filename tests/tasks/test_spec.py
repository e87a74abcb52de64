"""The task model: validation names the field; patches merge and re-validate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from api.schemas import TaskCreate, TaskEventPublic
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.store import spec_hash
from meridian.store.records import TaskEventRecord
from meridian.tasks.contracts import ModifyInput
from meridian.tasks.service import NULL_FIELD
from meridian.tasks.spec import (
    DNS1123_LABEL,
    JobPatch,
    RetryPatch,
    RetryPolicy,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    job_name_for,
    json_merge_patch,
    validate_task_id,
)
from tests.api.stage import Stage, staged


def body(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
    }
    base.update(overrides)
    return base


def field_of(exc: ValidationError) -> str:
    return ".".join(str(p) for p in exc.errors()[0]["loc"])


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"data_source": {"provider": "oracle", "region": "x"}}, "data_source.provider"),
        ({"job": {"image": ""}}, "job.image"),
        ({"job": {"image": "  "}}, "job.image"),
        ({"job": {"image": "b", "resources": {"cpu": "lots"}}}, "job.resources.cpu"),
        ({"job": {"image": "b", "resources": {"memory": "-1Gi"}}}, "job.resources.memory"),
        ({"job": {"image": "b", "env": {"1BAD": "x"}}}, "job.env"),
        ({"job": {"image": "b", "env": {"MERIDIAN_ATTEMPT": "9"}}}, "job.env"),
        ({"labels": {"meridian.io/task-id": "x"}}, "labels"),
        ({"kind": "daemon"}, "kind"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts"),
        ({"business_unit": "Not Valid!"}, "business_unit"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_fields_are_named(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body(**overrides))
    assert field_of(info.value) == field


def test_status_port_only_on_resident_tasks() -> None:
    with pytest.raises(ValidationError, match="status_port"):
        TaskSpec.model_validate(body(job={"image": "b", "status_port": 8080}))
    spec = TaskSpec.model_validate(body(kind="resident", job={"image": "b", "status_port": 8080}))
    assert spec.job.status_port == 8080


@pytest.mark.parametrize("task_id", ["Upper", "-lead", "trail-", "under_score", "a" * 64])
def test_bad_ids(task_id: str) -> None:
    with pytest.raises(ValueError):
        validate_task_id(task_id)


def test_good_id_and_deterministic_job_name() -> None:
    assert validate_task_id("a" * 63) == "a" * 63
    assert job_name_for("nightly-1", 3) == "nightly-1-a3"
    assert job_name_for("a" * 60, 9) == "a" * 60 + "-a9"  # fits: the plain form


@pytest.mark.parametrize("attempt", [1, 10, 12345])
def test_long_ids_get_valid_distinct_job_names(attempt: int) -> None:
    first = "x" * 50 + "-" + "a" * 12
    second = "x" * 50 + "-" + "b" * 12
    names = {job_name_for(task_id, attempt) for task_id in (first, second)}
    assert len(names) == 2
    for name in names:
        assert len(name) <= 63
        assert DNS1123_LABEL.match(name), name
        assert name.endswith(f"-a{attempt}")
    assert job_name_for(first, attempt) == job_name_for(first, attempt)


def test_patch_merges_and_revalidates() -> None:
    spec = TaskSpec.model_validate(body(job={"image": "busybox", "env": {"A": "1"}}))
    patch = TaskPatch(job=JobPatch(image="busybox:2"), retry=RetryPatch(max_attempts=5))
    merged = patch.apply_to(spec)
    assert merged.job.image == "busybox:2"
    assert merged.job.env == {"A": "1"}  # untouched fields survive
    assert merged.retry.max_attempts == 5
    assert patch.changes_job(spec)
    assert not TaskPatch(name="renamed").changes_job(spec)
    with pytest.raises(ValidationError):
        TaskPatch(labels={"meridian.io/x": "y"}).apply_to(spec)


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(backoff_seconds=2, backoff_multiplier=3, max_backoff_seconds=10)
    assert [policy.backoff_for(n) for n in (1, 2, 3)] == [2, 6, 10]


def test_terminal_statuses() -> None:
    assert {s for s in TaskStatus if s.is_terminal} == {
        TaskStatus.SUCCEEDED,
        TaskStatus.FAILED,
        TaskStatus.STOPPED,
    }


@pytest.mark.parametrize(("text", "millis"), [("500m", 500), ("2", 2000), ("0.25", 250)])
def test_cpu_quantities(text: str, millis: int) -> None:
    assert parse_cpu_millis(text) == millis
    assert parse_cpu_millis(f"{millis}m") == millis  # the same amount in millicores


@pytest.mark.parametrize(("text", "size"), [("256Mi", 256 << 20), ("1Gi", 1 << 30), ("1G", 10**9)])
def test_memory_quantities(text: str, size: int) -> None:
    assert parse_memory_bytes(text) == size
    assert parse_memory_bytes(str(size)) == size  # the same amount in plain bytes


def test_not_a_quantity() -> None:
    with pytest.raises(ValueError):
        parse_cpu_millis("lots")


# -- numeric resource quantities ---------------------------------------------------------


@pytest.mark.parametrize(
    ("resources", "cpu", "memory"),
    [
        ({"cpu": 1}, "1", "256Mi"),
        ({"cpu": 0.5}, "0.5", "256Mi"),
        ({"cpu": 1.0}, "1", "256Mi"),
        ({"cpu": 2, "memory": 1073741824}, "2", "1073741824"),
        ({"cpu": 1e-3}, "0.001", "256Mi"),
        ({"memory": 1e9}, "500m", "1000000000"),
    ],
)
def test_numeric_quantities_become_their_decimal_text(
    resources: dict[str, Any], cpu: str, memory: str
) -> None:
    spec = TaskSpec.model_validate(body(job={"image": "b", "resources": resources}))
    assert (spec.job.resources.cpu, spec.job.resources.memory) == (cpu, memory)
    assert spec.job.resources.cpu_millis == parse_cpu_millis(cpu)
    # Stable: the stored (dumped) spec validates back to itself.
    assert TaskSpec.model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("number", "text"),
    [
        ({"cpu": 1}, {"cpu": "1"}),
        ({"cpu": 0.5}, {"cpu": "0.5"}),
        ({"memory": 1073741824}, {"memory": "1073741824"}),
    ],
)
def test_number_and_its_text_are_the_same_spec(
    number: dict[str, Any], text: dict[str, Any]
) -> None:
    as_number = TaskSpec.model_validate(body(job={"image": "b", "resources": number}))
    as_text = TaskSpec.model_validate(body(job={"image": "b", "resources": text}))
    assert as_number == as_text
    assert spec_hash(as_number) == spec_hash(as_text)  # idempotent submit sees one task


def test_string_quantities_are_kept_as_given() -> None:
    spec = TaskSpec.model_validate(
        body(job={"image": "b", "resources": {"cpu": "1000m", "memory": "1024Mi"}})
    )
    assert (spec.job.resources.cpu, spec.job.resources.memory) == ("1000m", "1024Mi")


@pytest.mark.parametrize(
    "resources",
    [
        {"cpu": True},
        {"memory": False},
        {"cpu": 0},
        {"cpu": -1},
        {"memory": 0.0},
        {"cpu": float("inf")},
        {"cpu": None},
        {"cpu": [1]},
    ],
)
def test_bad_numeric_quantities_name_the_field(resources: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body(job={"image": "b", "resources": resources}))
    assert field_of(info.value) == f"job.resources.{next(iter(resources))}"


# -- retry: `backoff` alias --------------------------------------------------------------


def test_retry_backoff_is_an_alias_of_backoff_seconds() -> None:
    spec = TaskSpec.model_validate(body(retry={"backoff": 7, "max_attempts": 4}))
    assert spec.retry.backoff_seconds == 7.0
    assert spec.model_dump()["retry"] == {
        "max_attempts": 4,
        "backoff_seconds": 7.0,
        "backoff_multiplier": 2.0,
        "max_backoff_seconds": 300.0,
    }
    same = TaskSpec.model_validate(body(retry={"backoff_seconds": 7, "max_attempts": 4}))
    assert spec_hash(spec) == spec_hash(same)
    assert RetryPolicy(backoff_seconds=3).backoff_seconds == 3.0


@pytest.mark.parametrize(
    ("retry", "field"),
    [
        ({"backoff": -1}, "retry.backoff"),
        ({"backoff": "soon"}, "retry.backoff"),
        ({"backoff": 1, "backoff_seconds": 2}, "retry"),
        ({"backoff_sec": 1}, "retry.backoff_sec"),
        ({"jitter": True}, "retry.jitter"),
    ],
)
def test_retry_unknown_or_bad_keys_are_named(retry: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body(retry=retry))
    assert field_of(info.value) == field


# -- env: Kubernetes list form -----------------------------------------------------------


def test_env_list_form_is_normalised_to_the_map() -> None:
    listed = TaskSpec.model_validate(
        body(job={"image": "b", "env": [{"name": "A", "value": "1"}, {"name": "B"}]})
    )
    mapped = TaskSpec.model_validate(body(job={"image": "b", "env": {"A": "1", "B": ""}}))
    assert listed.job.env == {"A": "1", "B": ""}
    assert listed == mapped and spec_hash(listed) == spec_hash(mapped)
    assert TaskSpec.model_validate(body(job={"image": "b", "env": []})).job.env == {}


@pytest.mark.parametrize(
    ("env", "field", "words"),
    [
        ([{"name": "A", "value": "1"}, {"name": "A", "value": "2"}], "job.env", "more than once"),
        (
            [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "s", "key": "k"}}}],
            "job.env",
            "valueFrom supports only secretKeyRef",
        ),
        ([{"value": "1"}], "job.env", "needs a name"),
        ([{"name": "A", "value": "1", "extra": 1}], "job.env", "unknown key"),
        (["A=1"], "job.env", "object with a name"),
        ([{"name": "1A", "value": "x"}], "job.env", "not a valid environment variable"),
        ([{"name": "MERIDIAN_X", "value": "x"}], "job.env", "reserved"),
        ([{"name": "A", "value": 1}], "job.env.A", "valid string"),
    ],
)
def test_bad_env_lists_name_env(env: list[Any], field: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body(job={"image": "b", "env": env}))
    assert field_of(info.value) == field
    assert words in info.value.errors()[0]["msg"]


# -- status_port on a batch task names the field ----------------------------------------


def test_status_port_error_points_at_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        TaskSpec.model_validate(body(job={"image": "b", "status_port": 8080}))
    assert [e["loc"] for e in info.value.errors()] == [("job", "status_port")]
    with pytest.raises(ValidationError) as created:
        TaskCreate.model_validate({**body(job={"image": "b", "status_port": 8080}), "id": "x"})
    assert created.value.errors()[0]["loc"] == ("job", "status_port")


# -- PATCH is a JSON merge patch ---------------------------------------------------------


def full_spec() -> TaskSpec:
    return TaskSpec.model_validate(
        body(
            job={
                "image": "busybox",
                "command": ["sh", "-c"],
                "args": ["echo hi"],
                "env": {"A": "1", "B": "2"},
                "resources": {"cpu": "2", "memory": "1Gi"},
                "annotations": {"x.io/a": "1", "x.io/b": "2"},
            },
            retry={"max_attempts": 5, "backoff_seconds": 7, "backoff_multiplier": 3},
            labels={"team": "ads", "tier": "gold"},
        )
    )


def test_patch_merges_sub_objects_field_by_field() -> None:
    spec = full_spec()
    merged = TaskPatch.model_validate({"job": {"resources": {"cpu": "1"}}}).apply_to(spec)
    assert merged.job.resources.cpu == "1"
    assert merged.job.resources.memory == "1Gi"  # not reset to the default
    assert merged.job.env == spec.job.env and merged.job.command == spec.job.command
    merged = TaskPatch.model_validate({"retry": {"max_attempts": 2}}).apply_to(spec)
    assert merged.retry.max_attempts == 2
    assert merged.retry.backoff_seconds == 7.0 and merged.retry.backoff_multiplier == 3.0
    merged = TaskPatch.model_validate({"retry": {"backoff": 1}}).apply_to(spec)
    assert merged.retry.backoff_seconds == 1.0 and merged.retry.max_attempts == 5


def test_patch_maps_merge_and_null_removes_a_key() -> None:
    spec = full_spec()
    patch = TaskPatch.model_validate(
        {
            "job": {"env": {"B": None, "C": "3"}, "annotations": {"x.io/a": None}},
            "labels": {"tier": None, "zone": "eu"},
        }
    )
    merged = patch.apply_to(spec)
    assert merged.job.env == {"A": "1", "C": "3"}
    assert merged.job.annotations == {"x.io/b": "2"}
    assert merged.labels == {"team": "ads", "zone": "eu"}
    assert merged.retry == spec.retry and merged.job.resources == spec.job.resources


def test_patch_lists_replace_and_env_list_form_merges() -> None:
    spec = full_spec()
    merged = TaskPatch.model_validate({"job": {"args": ["echo bye"]}}).apply_to(spec)
    assert merged.job.args == ["echo bye"] and merged.job.command == ["sh", "-c"]
    merged = TaskPatch.model_validate({"job": {"command": []}}).apply_to(spec)
    assert merged.job.command == []
    merged = TaskPatch.model_validate({"job": {"env": [{"name": "B", "value": "20"}]}}).apply_to(
        spec
    )
    assert merged.job.env == {"A": "1", "B": "20"}


def test_patch_only_applies_what_was_sent() -> None:
    spec = full_spec()
    patch = TaskPatch.model_validate({"job": {"image": "busybox:2"}})
    assert patch.merge_document() == {"job": {"image": "busybox:2"}}
    merged = patch.apply_to(spec)
    assert merged.model_dump(exclude={"job"}) == spec.model_dump(exclude={"job"})
    assert merged.job.model_dump(exclude={"image"}) == spec.job.model_dump(exclude={"image"})
    assert TaskPatch.model_validate({}).apply_to(spec) == spec
    assert TaskPatch.model_validate({"job": {}, "labels": {}}).apply_to(spec) == spec


def test_null_fields_are_not_applied_and_are_reported() -> None:
    spec = full_spec()
    patch = TaskPatch.model_validate(
        {"name": None, "job": {"command": None, "resources": None}, "retry": None}
    )
    assert patch.apply_to(spec) == spec
    assert patch.null_fields() == [("job", "command"), ("job", "resources"), ("name",), ("retry",)]
    assert TaskPatch.model_validate({"labels": {"tier": None}}).null_fields() == []


def test_patch_means_the_same_after_the_temporal_round_trip() -> None:
    spec = full_spec()
    patch = TaskPatch.model_validate(
        {
            "job": {"resources": {"cpu": 1}, "env": {"A": None, "C": "3"}},
            "retry": {"max_attempts": 2},
            "labels": {"tier": None},
        }
    )
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([ModifyInput(patch=patch)])
    (received,) = converter.from_payloads(payloads, [ModifyInput])
    assert isinstance(received, ModifyInput)
    assert received.patch.apply_to(spec) == patch.apply_to(spec)
    merged = received.patch.apply_to(spec)
    assert merged.job.resources.memory == "1Gi" and merged.job.env == {"B": "2", "C": "3"}
    assert merged.retry.backoff_seconds == 7.0 and merged.labels == {"team": "ads"}


def test_merged_spec_is_revalidated_naming_the_field() -> None:
    spec = full_spec()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"job": {"resources": {"cpu": "lots"}}}, "job.resources.cpu"),
        ({"job": {"resources": {"memory": 0}}}, "job.resources.memory"),
        ({"job": {"env": {"MERIDIAN_X": "1"}}}, "job.env"),
        ({"retry": {"max_attempts": 0}}, "retry.max_attempts"),
        ({"labels": {"meridian.io/x": "y"}}, "labels"),
        ({"job": {"image": " "}}, "job.image"),
    ]
    for doc, field in cases:
        with pytest.raises(ValidationError) as info:
            TaskPatch.model_validate(doc).apply_to(spec)
        assert field_of(info.value) == field, doc
    # Shapes that are wrong in the patch itself fail before any merge.
    early: list[tuple[dict[str, Any], str]] = [
        ({"job": {"resources": {"cpu": True}}}, "job.resources.cpu"),
        ({"job": {"env": [{"name": "A"}, {"name": "A"}]}}, "job.env"),
        ({"job": {"status": 1}}, "job.status"),
        ({"retry": {"backoff": 1, "backoff_seconds": 1}}, "retry"),
    ]
    for doc, field in early:
        with pytest.raises(ValidationError) as info:
            TaskPatch.model_validate(doc)
        assert field_of(info.value) == field, doc


def test_changes_job_only_when_the_job_changes() -> None:
    spec = full_spec()

    def changes(doc: dict[str, Any]) -> bool:
        return TaskPatch.model_validate(doc).changes_job(spec)

    assert changes({"job": {"resources": {"cpu": "1"}}})
    assert changes({"job": {"env": {"A": None}}})
    assert changes({"job": {"args": []}})
    assert not changes({"name": "renamed", "retry": {"max_attempts": 1}, "labels": {"x": "y"}})
    assert not changes({"job": {"env": {"A": "1"}, "annotations": {"x.io/gone": None}}})
    assert not changes({"job": {"resources": {"cpu": 2, "memory": "1024Mi"}}})  # same amounts
    assert not changes({"job": {}})


def test_json_merge_patch_follows_rfc_7396() -> None:
    # The examples of RFC 7396, section 3 (a sample of them).
    assert json_merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert json_merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert json_merge_patch({"a": "b"}, {"a": None}) == {}
    assert json_merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert json_merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert json_merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert json_merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert json_merge_patch({}, {"a": {"bb": {"ccc": None}}}) == {"a": {"bb": {}}}


# -- events: `time` and `at` -------------------------------------------------------------


def test_event_has_time_and_at() -> None:
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    record = TaskEventRecord(
        id=1,
        task_id="t",
        event_key="k",
        seq=1,
        status=TaskStatus.RUNNING,
        attempt=1,
        region="aws-us-east-1",
        job_name="t-a1",
        reason="started",
        at=at,
        error=None,
        exit_code=None,
        placement_summary=None,
        details=None,
        applied=True,
    )
    public = TaskEventPublic.of(record).model_dump(mode="json")
    assert public["time"] == public["at"] == "2025-01-02T03:04:05Z"


# -- the API's 422s name the field -------------------------------------------------------


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Stage]:
    """The real /v1/tasks router and TaskService (validation, error shapes), with the
    PENDING task t-1 of `full_spec()` (a PENDING task is modified without Temporal)."""
    async with staged(tmp_path) as stage:
        stage.store.create_task("t-1", full_spec(), status=TaskStatus.PENDING)
        yield stage


def stored_spec(stage: Stage) -> TaskSpec:
    task = stage.store.get_task("t-1")
    assert task is not None
    return task.spec


def locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["detail"]]


async def test_api_status_port_on_batch_names_the_field(api: Stage) -> None:
    response = await api.http.post("/v1/tasks", json=body(job={"image": "b", "status_port": 8080}))
    assert locs(response) == [["body", "job", "status_port"]]
    assert "resident" in response.json()["detail"][0]["msg"]


async def test_api_bad_env_list_names_env(api: Stage) -> None:
    env = [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    response = await api.http.post("/v1/tasks", json=body(job={"image": "b", "env": env}))
    assert locs(response) == [["body", "job", "env"]]
    assert "valueFrom supports only secretKeyRef" in response.json()["detail"][0]["msg"]


async def test_api_patch_merges(api: Stage) -> None:
    response = await api.http.patch("/v1/tasks/t-1", json={"job": {"resources": {"cpu": 1}}})
    assert response.status_code == 200, response.text
    assert response.json()["spec"]["job"]["resources"] == {"cpu": "1", "memory": "1Gi"}
    assert stored_spec(api).job.resources.model_dump() == {"cpu": "1", "memory": "1Gi"}


async def test_api_patch_bad_merged_value_is_a_422_naming_the_field(api: Stage) -> None:
    response = await api.http.patch("/v1/tasks/t-1", json={"job": {"resources": {"cpu": "lots"}}})
    assert locs(response) == [["body", "job", "resources", "cpu"]]
    response = await api.http.patch("/v1/tasks/t-1", json={"labels": {"meridian.io/x": "y"}})
    assert locs(response) == [["body", "labels"]]
    assert stored_spec(api) == full_spec()


async def test_api_patch_refuses_null_fields(api: Stage) -> None:
    response = await api.http.patch("/v1/tasks/t-1", json={"retry": None, "job": {"command": None}})
    assert locs(response) == [["body", "job", "command"], ["body", "retry"]]
    assert response.json()["detail"][0] == {
        "type": "value_error",
        "loc": ["body", "job", "command"],
        "msg": NULL_FIELD,
        "input": None,
    }
    assert stored_spec(api) == full_spec()
