"""What a task may ask for: registries, sizes, annotations and the characters of its
strings. Each breach is a 422 naming the field, from the one check behind submit, modify
and the placement dry run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from meridian.regions.catalog import Catalog
from meridian.regions.config import RegionsFile, load_regions
from meridian.settings import PolicySettings
from meridian.tasks.service import SpecInvalid, check_spec
from meridian.tasks.spec import TaskSpec, TaskStatus
from tests.api.stage import DEV_REGIONS, Stage, staged

CATALOG = Catalog.default()
REGIONS = load_regions(DEV_REGIONS)  # every pool: 8 CPU, 32Gi nodes
ADS_ONLY = PolicySettings(
    image_registries={"*": [], "ads": ["registry.example.com/ads/", "docker.io/library"]}
)


def spec(business_unit: str = "ads", **job: Any) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "etl",
            "business_unit": business_unit,
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "registry.example.com/ads/etl:1", **job},
        }
    )


def errors(
    task: TaskSpec,
    policy: PolicySettings = ADS_ONLY,
    regions: RegionsFile = REGIONS,
    before: TaskSpec | None = None,
) -> dict[tuple[Any, ...], str]:
    try:
        check_spec(task, CATALOG, regions, policy=policy, before=before)
    except SpecInvalid as exc:
        return {tuple(e["loc"]): e["msg"] for e in exc.errors}
    return {}


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/ads/etl:1",
        "registry.example.com/ads/team/etl@sha256:" + "a" * 64,
        "busybox",  # docker.io/library/busybox
        "docker.io/library/python:3.12",
    ],
)
def test_images_from_the_units_registries_pass(image: str) -> None:
    assert errors(spec(image=image)) == {}


@pytest.mark.parametrize(
    "image",
    [
        "registry.example.com/ads-evil/etl:1",
        "registry.example.com.evil.io/ads/etl:1",
        "evil.io/registry.example.com/ads/etl",
        "someone/busybox",  # docker.io/someone/busybox
    ],
)
def test_images_from_elsewhere_are_refused_naming_the_field(image: str) -> None:
    found = errors(spec(image=image))
    assert list(found) == [("job", "image")]
    assert "registry.example.com/ads/" in found[("job", "image")]


def test_a_docker_hub_organisation_may_be_allowed() -> None:
    hub = PolicySettings(image_registries={"*": ["myorg"]})
    assert errors(spec(image="myorg/app:1"), hub) == {}
    assert errors(spec(image="docker.io/myorg/app:1"), hub) == {}
    assert list(errors(spec(image="busybox"), hub)) == [("job", "image")]
    assert list(errors(spec(image="myorg.evil/app"), hub)) == [("job", "image")]


def test_a_unit_without_its_own_list_follows_the_default() -> None:
    assert errors(spec("search", image="anything.io/x:1")) == {}
    strict = PolicySettings(image_registries={"*": ["registry.example.com/"]})
    assert list(errors(spec("search", image="anything.io/x:1"), strict)) == [("job", "image")]


def test_cpu_and_memory_bounds_from_settings() -> None:
    bounded = PolicySettings(max_cpu="4", max_memory="8Gi")
    found = errors(spec(resources={"cpu": "4500m", "memory": "9Gi"}), bounded)
    assert set(found) == {("job", "resources", "cpu"), ("job", "resources", "memory")}
    assert "4" in found[("job", "resources", "cpu")]
    assert errors(spec(resources={"cpu": "4", "memory": "8Gi"}), bounded) == {}


def test_no_task_larger_than_the_largest_node() -> None:
    found = errors(spec(resources={"cpu": "9", "memory": "1Gi"}))
    assert list(found) == [("job", "resources", "cpu")]
    assert "largest node" in found[("job", "resources", "cpu")]
    found = errors(spec(resources={"cpu": "1", "memory": "33Gi"}))
    assert list(found) == [("job", "resources", "memory")]
    assert errors(spec(resources={"cpu": "8", "memory": "32Gi"})) == {}


def test_cpu_and_memory_must_fit_the_same_node() -> None:
    regions = RegionsFile.model_validate(
        {
            "regions": [
                {
                    "name": "aws-us-east-1",
                    "provider": "aws",
                    "location": "us-east-1",
                    "node_pools": [
                        {"name": "cpu", "cpu": "32", "memory": "16Gi"},
                        {"name": "mem", "cpu": "4", "memory": "128Gi"},
                    ],
                }
            ]
        }
    )
    assert errors(spec(resources={"cpu": "30", "memory": "8Gi"}), regions=regions) == {}
    assert errors(spec(resources={"cpu": "2", "memory": "100Gi"}), regions=regions) == {}
    found = errors(spec(resources={"cpu": "30", "memory": "100Gi"}), regions=regions)
    assert list(found) == [("job", "resources")]


def test_unknown_node_sizes_do_not_refuse() -> None:
    # A cloud pool that does not say its machine size: the fleet's largest node is not
    # known, so nothing is refused for size.
    regions = RegionsFile.model_validate(
        {
            "regions": [
                {
                    "name": "aws-us-east-1",
                    "provider": "aws",
                    "location": "us-east-1",
                    "node_pools": [{"name": "general", "driver": "eks", "cluster": "c"}],
                }
            ]
        }
    )
    assert errors(spec(resources={"cpu": "64", "memory": "1Ti"}), regions=regions) == {}


@pytest.mark.parametrize(
    "key",
    [
        "meridian.io/task-id",
        "container.apparmor.security.beta.kubernetes.io/task",
        "seccomp.security.alpha.kubernetes.io/pod",
        "example.com/blocked",
    ],
)
def test_reserved_and_denied_annotations_are_refused(key: str) -> None:
    policy = PolicySettings(denied_annotation_prefixes=["example.com/"])
    found = errors(spec(annotations={key: "x", "kubesim.io/duration": "1s"}), policy)
    assert list(found) == [("job", "annotations", key)]


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"name": "etl\x00"}, ("name",)),
        ({"job": {"image": "busybox\x1b[2J"}}, ("job", "image")),
        ({"job": {"image": "busybox", "command": ["sh", "a\x00b"]}}, ("job", "command", 1)),
        ({"job": {"image": "busybox", "args": ["\x07"]}}, ("job", "args", 0)),
        ({"job": {"image": "busybox", "env": {"A": "x\x00"}}}, ("job", "env", "A")),
        (
            {"job": {"image": "busybox", "annotations": {"a/b": "\x7f"}}},
            ("job", "annotations", "a/b"),
        ),
        ({"job": {"image": "busybox", "annotations": {"a\x01": "v"}}}, ("job", "annotations")),
    ],
)
def test_control_characters_are_refused(overrides: dict[str, Any], loc: tuple[Any, ...]) -> None:
    body: dict[str, Any] = {
        "name": "etl",
        "business_unit": "ads",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "busybox"},
    } | overrides
    found = errors(TaskSpec.model_validate(body), PolicySettings())
    assert list(found) == [loc]
    assert "control character" in found[loc]


def test_scripts_may_keep_their_newlines_and_tabs() -> None:
    script = "set -e\n\techo one\r\necho two\n"
    task = spec(image="busybox", args=["-c", script], env={"SCRIPT": script})
    assert errors(task, PolicySettings()) == {}


def test_a_modify_is_judged_only_on_what_it_breaks() -> None:
    # The registry list tightened after the task was submitted: changing its labels is
    # still fine, moving it to another disallowed image is not.
    before = spec(image="old.example.com/etl:1")
    strict = PolicySettings(image_registries={"*": ["registry.example.com/"]})
    relabelled = before.model_copy(update={"labels": {"team": "x"}})
    assert errors(relabelled, strict, before=before) == {}
    moved = spec(image="other.example.com/etl:1")
    assert list(errors(moved, strict, before=before)) == [("job", "image")]


@pytest.fixture
async def stage(tmp_path: Path) -> AsyncIterator[Stage]:
    async with staged(tmp_path, "ads") as stage:
        stage.service.settings.policy = ADS_ONLY
        yield stage


def body(**job: Any) -> dict[str, Any]:
    return {
        "name": "etl",
        "data_source": {"provider": "aws", "region": "us-east-1"},
        "job": {"image": "registry.example.com/ads/etl:1", **job},
        "start": False,
    }


async def test_submit_modify_and_dry_run_answer_the_same_422(stage: Stage) -> None:
    bad = body(image="evil.io/miner:1")
    answers = [
        await stage.http.post("/v1/tasks", json={**bad, "id": "t-bad"}),
        await stage.http.post("/v1/placement:dry-run", json=bad),
    ]
    created = await stage.http.post("/v1/tasks", json={**body(), "id": "t-ok"})
    assert created.status_code == 201, created.text
    answers.append(
        await stage.http.patch("/v1/tasks/t-ok", json={"job": {"image": "evil.io/miner:1"}})
    )
    for answer in answers:
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["detail"]
        assert error["loc"] == ["body", "job", "image"]
    assert (await stage.http.get("/v1/tasks/t-bad")).status_code == 404
    task = stage.store.get_unit_task("ads", "t-ok")
    assert task is not None and task.status is TaskStatus.PENDING
    assert task.spec.job.image == "registry.example.com/ads/etl:1"
