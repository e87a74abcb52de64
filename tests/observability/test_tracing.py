"""Traces: one task's trace is connected from the API's POST to the Job create, and
tracing costs nothing when no `OTEL_*` variable asks for it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from kubesim.process import start_kubesim
from meridian.observability.logs import ContextFilter
from meridian.observability.tracing import export_requested
from meridian.temporal import connect
from tests.api.stage import DEV_REGIONS
from tests.conftest import REPO
from tests.integration.harness import Engine, engine_settings, task_body
from tests.support import start_dev_server


def test_export_follows_the_standard_variables() -> None:
    assert not export_requested({})
    assert not export_requested({"OTEL_SERVICE_NAME": "x"})  # a name alone exports nothing
    assert export_requested({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert export_requested({"OTEL_TRACES_EXPORTER": "console"})
    assert not export_requested({"OTEL_TRACES_EXPORTER": "none"})


PROBE = """
import json, sys
from meridian.temporal import client_interceptors
from api.main import create_app
from meridian.settings import Settings
names = [type(i).__name__ for i in client_interceptors()]
print(json.dumps({"interceptors": names, "sdk_loaded": "opentelemetry.sdk" in sys.modules}))
"""


def _probe(extra_env: dict[str, str]) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra_env, PYTHONPATH=str(REPO))
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, check=True, capture_output=True, text=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_tracing_is_off_and_free_without_otel_variables() -> None:
    off = _probe({})
    assert off == {"interceptors": ["LogContextInterceptor"], "sdk_loaded": False}


def test_an_otlp_endpoint_turns_tracing_on() -> None:
    on = _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})  # never reached
    assert on == {
        "interceptors": ["TracingInterceptor", "LogContextInterceptor"],
        "sdk_loaded": True,
    }


@pytest.fixture(scope="module")
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span this process ends, in memory. The provider is process-wide and can be
    set only once: a provider set before is reused."""
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()


@pytest.mark.timeout(240)
async def test_one_task_is_one_connected_trace(
    spans: InMemorySpanExporter,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.handler.addFilter(ContextFilter())  # as every Meridian process's handler has it
    caplog.set_level(logging.INFO, logger="meridian.kube.gateway")
    # A Temporal server of its own: the regions' task queues are named by region only, so
    # on the shared server another engine's unit workers (connected before tracing was on)
    # could take this task's activities.
    temporal = await start_dev_server(tmp_path / "temporal.db")
    kubesim = start_kubesim(DEV_REGIONS, tmp_path / "kubesim")
    try:
        settings = engine_settings(
            database_url=f"sqlite:///{tmp_path / 'meridian.db'}",
            temporal_address=temporal.client.service_client.config.target_host,
            kubeconfig=Path(kubesim.kubeconfig),
            regions_file=DEV_REGIONS,
            control_url=kubesim.control_url,
            state_dir=tmp_path / "state",
        )
        # The production connection: its interceptors are the ones under test.
        engine = await Engine(settings, await connect(settings)).start()
        try:
            submitted = await engine.submit(task_body())
            assert submitted.status_code == 201, submitted.text
            task_id = submitted.json()["id"]
            # What the worker side knows the task by: the key, its workflow id.
            workflow_id = submitted.json()["workflow_id"]
            await engine.wait_status(task_id, "SUCCEEDED", timeout=90)
        finally:
            await engine.stop()
    finally:
        kubesim.stop()
        await temporal.shutdown()

    finished = list(spans.get_finished_spans())
    post = next(s for s in finished if s.kind == SpanKind.SERVER and s.name == "POST /v1/tasks")
    assert post.context is not None
    in_trace = [s for s in finished if s.context and s.context.trace_id == post.context.trace_id]
    names = {s.name for s in in_trace}
    for expected in (
        "StartWorkflow:TaskWorkflow",
        "RunWorkflow:TaskWorkflow",
        "RunActivity:place_task",
        "RunActivity:create_job",
        "CreateJob",
    ):
        assert expected in names, f"{expected} not in the POST's trace: {sorted(names)}"
    create = _one(in_trace, "CreateJob")
    assert create.attributes is not None and create.attributes["meridian.task_id"] == workflow_id
    # A unit's first task in a region tries the create once before the namespace step
    # (refused before any request): the Job's create is a child of one of those runs.
    runs = [s for s in in_trace if s.name == "RunActivity:create_job"]
    assert create.parent is not None
    assert create.parent.span_id in {r.context.span_id for r in runs if r.context}

    # The Job create's log line names the task and the trace an operator would look up.
    (created,) = [
        r for r in caplog.records if r.name == "meridian.kube.gateway" and "created" in r.message
    ]
    fields = {k: getattr(created, k, None) for k in ("task_id", "workflow_id", "attempt")}
    assert fields == {"task_id": workflow_id, "workflow_id": workflow_id, "attempt": 1}
    assert getattr(created, "business_unit", None) == "ads"
    assert getattr(created, "region", None) == create.attributes["meridian.region"]
    assert getattr(created, "trace_id", None) == format(post.context.trace_id, "032x")


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    return next(s for s in spans if s.name == name)
