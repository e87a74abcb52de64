"""Watches: from a resourceVersion, bookmarks, timeouts, selectors, 410 Gone, drops."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kubesim.control import KubesimControl
from kubesim.process import KubesimProcess, start_kubesim

from .conftest import FAULTS, job_body, wait_for


def test_watch_from_resource_version_sees_only_later_events(
    batch: client.BatchV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("before", duration="30s"))
    rv = batch.list_namespaced_job(namespace).metadata.resource_version
    batch.create_namespaced_job(namespace, job_body("after", duration="30s"))
    batch.patch_namespaced_job("before", namespace, {"metadata": {"labels": {"x": "1"}}})
    events = []
    for event in watch.Watch().stream(
        batch.list_namespaced_job, namespace, resource_version=rv, timeout_seconds=1
    ):
        events.append((event["type"], event["object"].metadata.name))
    assert ("ADDED", "after") in events
    assert ("MODIFIED", "before") in events
    assert ("ADDED", "before") not in events


def test_watch_without_resource_version_starts_with_current_state(
    batch: client.BatchV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("existing", duration="30s"))
    events = list(watch.Watch().stream(batch.list_namespaced_job, namespace, timeout_seconds=1))
    assert [(e["type"], e["object"].metadata.name) for e in events][:1] == [("ADDED", "existing")]


def test_bookmarks_carry_a_resource_version(batch: client.BatchV1Api, namespace: str) -> None:
    rv = batch.list_namespaced_job(namespace).metadata.resource_version
    w = watch.Watch()
    bookmarks = [
        e
        for e in w.stream(
            batch.list_namespaced_job,
            namespace,
            resource_version=rv,
            allow_watch_bookmarks=True,
            timeout_seconds=2,
        )
        if e["type"] == "BOOKMARK"
    ]
    assert bookmarks, "no BOOKMARK within 2s (kubesim under test sends one every 0.5s)"
    marked = int(bookmarks[-1]["raw_object"]["metadata"]["resourceVersion"])
    assert marked >= int(rv)
    assert int(w.resource_version) == marked


def test_timeout_seconds_ends_the_stream(batch: client.BatchV1Api, namespace: str) -> None:
    started = time.monotonic()
    list(watch.Watch().stream(batch.list_namespaced_job, namespace, timeout_seconds=1))
    assert 0.9 <= time.monotonic() - started < 3


def test_watch_with_label_selector_reports_leaving_as_deleted(
    batch: client.BatchV1Api, namespace: str
) -> None:
    batch.create_namespaced_job(namespace, job_body("sel", duration="30s", labels={"w": "yes"}))
    rv = batch.list_namespaced_job(namespace).metadata.resource_version
    batch.create_namespaced_job(namespace, job_body("other", duration="30s", labels={"w": "no"}))
    batch.patch_namespaced_job("sel", namespace, {"metadata": {"labels": {"w": "no"}}})
    events = [
        (e["type"], e["object"].metadata.name)
        for e in watch.Watch().stream(
            batch.list_namespaced_job,
            namespace,
            label_selector="w=yes",
            resource_version=rv,
            timeout_seconds=1,
        )
    ]
    # Selector watches (API concepts, "Efficient detection of changes"): an object that
    # stops matching is delivered as DELETED to that watch.
    assert events == [("DELETED", "sel")]


def test_job_status_changes_arrive_by_watch(batch: client.BatchV1Api, namespace: str) -> None:
    created = batch.create_namespaced_job(namespace, job_body("watched", duration="100ms"))
    w = watch.Watch()
    for event in w.stream(
        batch.list_namespaced_job,
        namespace,
        resource_version=created.metadata.resource_version,
        timeout_seconds=5,
    ):
        job = event["object"]
        if any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or []):
            w.stop()
            break
    else:
        pytest.fail("no Complete condition seen by watch")
    assert job.status.succeeded == 1


def test_drop_watches_cuts_open_streams(api_clients: Any, control: KubesimControl) -> None:
    batch = client.BatchV1Api(api_clients(FAULTS))
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            for _ in watch.Watch().stream(batch.list_namespaced_job, "default", timeout_seconds=30):
                pass
            outcome["ended"] = "cleanly"
        except (urllib3.exceptions.HTTPError, ApiException) as exc:
            outcome["ended"] = type(exc).__name__

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    wait_for(lambda: control.region(FAULTS)["watches"] >= 1, what="the watch to open")
    started = time.monotonic()
    assert control.drop_watches(FAULTS)["dropped"] >= 1
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert outcome["ended"] != "cleanly"  # a cut connection, not an orderly end


# ---- a second kubesim with a tiny event window, for 410 Gone ---------------------------
@pytest.fixture(scope="module")
def small_window(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubesimProcess]:
    path = tmp_path_factory.mktemp("small") / "regions.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"job_duration": "100ms"},
                "regions": [
                    {
                        "name": "idc-lab-1",
                        "provider": "idc",
                        "location": "lab-1",
                        "node_pools": [{"name": "rack", "count": 1, "cpu": "4", "memory": "8Gi"}],
                    }
                ],
            }
        )
    )
    process = start_kubesim(
        path, tmp_path_factory.mktemp("small-state"), extra_args=["--watch-window", "20"]
    )
    yield process
    process.stop()


@pytest.fixture
def small_core(small_window: KubesimProcess) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=small_window.kubeconfig, context="idc-lab-1")
    yield client.CoreV1Api(api)
    api.close()


def _churn(core: client.CoreV1Api, count: int) -> None:
    for _ in range(count):
        core.create_namespace({"metadata": {"generateName": "churn-"}})


def test_watch_from_compacted_version_gets_410_expired(small_core: client.CoreV1Api) -> None:
    old_rv = small_core.list_namespace().metadata.resource_version
    _churn(small_core, 30)
    # kube-apiserver answers a too-old watch with HTTP 200 and one ERROR event.
    response = small_core.list_namespace(
        watch=True, resource_version=old_rv, _preload_content=False
    )
    assert response.status == 200
    lines = [line for line in response.read().decode().splitlines() if line]
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    status = event["object"]
    assert status["kind"] == "Status" and status["code"] == 410
    assert status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old_rv} (")
    # The official client's Watch turns it into ApiException(410) after one retry.
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(small_core.list_namespace, resource_version=old_rv))
    assert err.value.status == 410


def test_continue_token_older_than_window_is_410(small_core: client.CoreV1Api) -> None:
    _churn(small_core, 3)
    page = small_core.list_namespace(limit=2)
    assert page.metadata._continue
    _churn(small_core, 30)
    with pytest.raises(ApiException) as err:
        small_core.list_namespace(limit=2, _continue=page.metadata._continue)
    status = json.loads(err.value.body)
    assert err.value.status == 410 and status["reason"] == "Expired"
    assert status["message"].startswith("The provided continue parameter is too old")


def test_relist_then_watch_recovers_after_410(small_core: client.CoreV1Api) -> None:
    listed = small_core.list_namespace()
    _churn(small_core, 1)
    events = list(
        watch.Watch().stream(
            small_core.list_namespace,
            resource_version=listed.metadata.resource_version,
            timeout_seconds=1,
        )
    )
    assert [e["type"] for e in events] == ["ADDED"]


def test_kubesim_json_is_beside_kubeconfig(small_window: KubesimProcess) -> None:
    info = json.loads((Path(small_window.kubeconfig).parent / "kubesim.json").read_text())
    assert info["regions"] == {"idc-lab-1": small_window.region_urls["idc-lab-1"]}
