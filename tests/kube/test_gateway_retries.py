"""The gateway's answered-error retries: a failing API is retried and counted, a dead
one is reported at once."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from temporalio.testing import ActivityEnvironment
from urllib3.exceptions import NewConnectionError, ReadTimeoutError

from activities.jobs import JobActivities
from meridian.kube.errors import KubeError, KubeUnavailable
from meridian.kube.gateway import JobGateway
from meridian.regions.contracts import RegionProbeInput
from meridian.tasks.spec import TaskSpec


class Response:
    data = json.dumps({"items": [1]}).encode()

    def release_conn(self) -> None:
        pass


def scripted(*outcomes: BaseException | None) -> tuple[Any, list[int]]:
    """A client call that raises the scripted errors in turn (None: answers)."""
    calls: list[int] = []

    def call(**_: Any) -> Response:
        calls.append(1)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        if outcome is not None:
            raise outcome
        return Response()

    return call, calls


def gateway() -> JobGateway:
    return JobGateway(SimpleNamespace(timeout=1), max_retry_wait=0)  # type: ignore[arg-type]


def api_error(status: int) -> ApiException:
    return ApiException(status=status, reason="injected")


def test_answered_errors_are_retried_and_counted() -> None:
    call, calls = scripted(api_error(503), api_error(429), None)
    gw = gateway()
    with gw.counting() as stats:
        assert gw.get_json(call) == {"items": [1]}
    assert len(calls) == 3 and (stats.requests, stats.errors) == (3, 2)
    assert stats.error_rate == pytest.approx(2 / 3)
    assert gw.requests == 3


def test_an_api_that_only_fails_raises_after_the_attempts() -> None:
    call, calls = scripted(api_error(500))
    gw = gateway()
    with gw.counting() as stats, pytest.raises(KubeUnavailable):
        gw.get_json(call)
    assert len(calls) == gw.answered_attempts == 3 and stats.error_rate == 1.0


def test_a_refused_connection_is_not_retried() -> None:
    # Failover detection waits on this answer: no retries, no sleeping.
    call, calls = scripted(NewConnectionError(None, "Connection refused"))  # type: ignore[arg-type]
    gw = gateway()
    with gw.counting() as stats, pytest.raises(KubeUnavailable):
        gw.get_json(call)
    assert len(calls) == 1 and (stats.requests, stats.errors) == (1, 0)


def test_errors_of_meaning_are_not_retried() -> None:
    # An eviction's 429 is a PodDisruptionBudget refusing; a 404 or 409 is an answer.
    for outcome, opt_out in (
        (api_error(429), True),
        (api_error(404), False),
        (api_error(409), False),
    ):
        call, calls = scripted(outcome)
        with pytest.raises(KubeError):
            gateway().get_json(call, retry_answered=not opt_out)
        assert len(calls) == 1, outcome


class Batch:
    """A cluster whose first write answer is lost to a 5xx after the write landed."""

    def __init__(self, landed_status: int) -> None:
        self.landed_status = landed_status
        self.calls = 0

    def _answer(self, **_: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            raise api_error(500)  # the write landed; its answer did not
        raise api_error(self.landed_status)

    def create_namespaced_job(self, *_: Any, **kw: Any) -> None:
        self._answer(**kw)

    def delete_namespaced_job(self, *_: Any, **kw: Any) -> None:
        self._answer(**kw)


def test_a_create_whose_answer_was_lost_is_not_a_failure() -> None:
    # The retry finds the Job there (409): created by us, one Job, no error.
    batch = Batch(landed_status=409)
    gw = JobGateway(SimpleNamespace(timeout=1, batch=lambda _: batch), max_retry_wait=0)  # type: ignore[arg-type]
    spec = TaskSpec.model_validate(
        {
            "name": "n",
            "business_unit": "bu",
            "data_source": {"provider": "aws", "region": "us-east-1"},
            "job": {"image": "img"},
        }
    )
    assert gw.create_job("r", "ns", "t1", spec, 1) == ("t1-a1", False)
    assert batch.calls == 2


def test_a_delete_whose_answer_was_lost_reports_the_job_gone() -> None:
    batch = Batch(landed_status=404)
    gw = JobGateway(SimpleNamespace(timeout=1, batch=lambda _: batch), max_retry_wait=0)  # type: ignore[arg-type]
    assert gw.delete_job("r", "ns", "t1-a1") is False
    assert batch.calls == 2


def test_a_deadline_bounds_every_attempt_and_stops_the_retries() -> None:
    timeouts: list[Any] = []

    def slow_failing(**kw: Any) -> Response:
        timeouts.append(kw["_request_timeout"])
        time.sleep(0.05)
        raise api_error(503)

    gw = JobGateway(SimpleNamespace(timeout=(3.0, 10.0)), max_retry_wait=0.2)  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(KubeUnavailable):
        gw.get_json(slow_failing, deadline=started + 0.15)
    # Each request may take no longer than what is left; no retry starts past the deadline.
    assert all(read <= 0.15 for _, read in timeouts) and len(timeouts) < 3


class SlowCore:
    """A core API whose pod list takes `pods_delay` (a read timeout past the caller's)."""

    def __init__(self, pods_delay: float) -> None:
        self.pods_delay = pods_delay
        self.pods_started = threading.Event()
        self.overlapped = False

    def list_node(self, **_: Any) -> Response:
        # Sent together, the pod list is already out while the nodes are read.
        self.overlapped = self.pods_started.wait(timeout=5)
        return Response()

    def list_pod_for_all_namespaces(self, **kw: Any) -> Response:
        self.pods_started.set()
        read_timeout = kw["_request_timeout"][1]
        time.sleep(min(self.pods_delay, read_timeout))
        if self.pods_delay > read_timeout:
            raise ReadTimeoutError(None, "/api/v1/pods", "read timed out")  # type: ignore[arg-type]
        return Response()


def test_nodes_and_pods_are_read_together_and_counted() -> None:
    core = SlowCore(pods_delay=0.0)
    gw = JobGateway(SimpleNamespace(timeout=(3.0, 10.0), core=lambda _: core))  # type: ignore[arg-type]
    with gw.counting() as stats:
        nodes, pods = gw.nodes_and_live_pods("r", within=10.0)
    assert nodes == pods == {"items": [1]}
    assert core.overlapped  # one round trip, not two
    assert stats.requests == 2  # the pool thread's request counts for the caller


def test_an_api_slower_than_the_deadline_does_not_answer() -> None:
    core = SlowCore(pods_delay=5.0)
    gw = JobGateway(SimpleNamespace(timeout=(3.0, 10.0), core=lambda _: core))  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(KubeUnavailable):
        gw.nodes_and_live_pods("r", within=0.3)
    assert time.monotonic() - started < 4.0  # the deadline, not the 5 s the API takes


def test_a_probe_of_an_api_slower_than_its_budget_reports_no_answer() -> None:
    # The probe must answer inside its own start-to-close, naming the API, so the monitor
    # never mistakes a slow region for a unit worker that is not polling.
    gw = JobGateway(SimpleNamespace(timeout=(3.0, 10.0), core=lambda _: SlowCore(5.0)))  # type: ignore[arg-type]
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, start_to_close_timeout=timedelta(seconds=1.5))
    started = time.monotonic()
    result = env.run(JobActivities(gw, namespace="ns").probe_region, RegionProbeInput(region="r"))
    assert time.monotonic() - started < 3.0  # the deadline, not the 5 s the API takes
    assert not result.reachable
    assert result.error is not None and result.error.startswith("API did not answer within 0.5s")
