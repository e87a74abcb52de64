"""Fault injection: outage, API errors with Retry-After, latency."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from kubesim.control import KubesimControl, KubesimControlError
from kubesim.process import KubesimProcess

from .conftest import FAULTS, job_body, wait_for


@pytest.fixture
def faults_api(kubesim: KubesimProcess, control: KubesimControl) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(
        config_file=kubesim.kubeconfig, context=FAULTS, client_configuration=cfg
    )
    # urllib3's default Retry silently retries 429/503 that carry Retry-After (three
    # times); these tests look at the raw answers, so retries are off.
    cfg.retries = False
    api = client.ApiClient(cfg)
    yield api
    api.close()
    control.restore(FAULTS)
    control.clear_api_errors(FAULTS)
    control.clear_latency(FAULTS)


def test_outage_refuses_connections_and_state_survives(
    faults_api: client.ApiClient, control: KubesimControl
) -> None:
    batch = client.BatchV1Api(faults_api)
    name = f"survivor-{int(time.time() * 1000)}"
    batch.create_namespaced_job("default", job_body(name, duration="1s"))
    assert control.outage(FAULTS)["outage"] is True
    # The pooled keep-alive connection is cut: depending on whether the client notices
    # before it writes, the first request fails with a reset or with a refused new
    # connection. Once the pool holds nothing, every new connection is refused.
    with pytest.raises(urllib3.exceptions.HTTPError):
        batch.read_namespaced_job(name, "default", _request_timeout=2)
    with pytest.raises(urllib3.exceptions.HTTPError) as err:
        batch.read_namespaced_job(name, "default", _request_timeout=2)
    assert "refused" in str(err.value).lower() or "NewConnectionError" in repr(err.value)
    # The cluster keeps running behind the dead API: the Job completes meanwhile.
    time.sleep(1.5)
    assert control.regions()[FAULTS]["outage"] is True
    assert control.restore(FAULTS)["outage"] is False
    job = batch.read_namespaced_job(name, "default")
    assert job.metadata.name == name
    assert any(c.type == "Complete" for c in job.status.conditions or [])


def test_outage_cuts_open_watches(faults_api: client.ApiClient, control: KubesimControl) -> None:
    core = client.CoreV1Api(faults_api)
    response = core.list_namespace(watch=True, _preload_content=False)
    wait_for(lambda: control.region(FAULTS)["watches"] >= 1)
    control.outage(FAULTS)
    with pytest.raises(urllib3.exceptions.HTTPError):
        for _ in response.stream(1024):
            pass
    response.release_conn()


def test_network_probe_endpoint_is_unreachable_during_outage(
    faults_api: client.ApiClient, control: KubesimControl
) -> None:
    control.outage(FAULTS)
    with pytest.raises(KubesimControlError) as err:
        control.network(FAULTS)
    assert err.value.status == 503


def test_api_errors_answer_with_status_and_retry_after(
    faults_api: client.ApiClient, control: KubesimControl
) -> None:
    core = client.CoreV1Api(faults_api)
    control.api_errors(FAULTS, rate=1.0, codes=[429], retry_after=3)
    with pytest.raises(ApiException) as err:
        core.list_namespace()
    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "3"
    status = json.loads(err.value.body)
    assert status["reason"] == "TooManyRequests" and status["code"] == 429
    assert status["details"]["retryAfterSeconds"] == 3
    control.api_errors(FAULTS, rate=1.0, codes=[503], retry_after=1)
    with pytest.raises(ApiException) as err:
        core.list_namespace()
    assert err.value.status == 503 and err.value.headers["Retry-After"] == "1"
    assert json.loads(err.value.body)["reason"] == "ServiceUnavailable"
    control.api_errors(FAULTS, rate=1.0, codes=[500])
    with pytest.raises(ApiException) as err:
        core.list_namespace()
    assert err.value.status == 500 and json.loads(err.value.body)["reason"] == "InternalError"
    control.clear_api_errors(FAULTS)
    assert core.list_namespace().items


def test_api_error_rate_is_a_fraction(
    faults_api: client.ApiClient, control: KubesimControl
) -> None:
    core = client.CoreV1Api(faults_api)
    control.api_errors(FAULTS, rate=0.5, retry_after=0)
    failures = 0
    for _ in range(200):
        try:
            core.list_namespace()
        except ApiException as exc:
            assert exc.status in (500, 503, 429)
            failures += 1
    assert 50 < failures < 150


def test_latency_delays_every_response(
    faults_api: client.ApiClient, control: KubesimControl
) -> None:
    core = client.CoreV1Api(faults_api)
    core.list_namespace()
    control.latency(FAULTS, 300)
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.3
    control.latency(FAULTS, 0)
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started < 0.3


def test_unknown_region_is_404(control: KubesimControl) -> None:
    with pytest.raises(KubesimControlError) as err:
        control.outage("nowhere-1")
    assert err.value.status == 404
