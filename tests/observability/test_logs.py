"""Logs: JSON lines with the task's fields and the trace id; plain text by default; and
activity failures at the level they deserve."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from meridian.app.cli import _configure_logging
from meridian.kube.contracts import CreateJobInput
from meridian.observability.logs import (
    ActivityFailureFilter,
    ContextFilter,
    JsonFormatter,
    LogContextInterceptor,
    log_context,
)
from meridian.settings import Settings
from meridian.tasks.spec import TaskSpec
from tests.integration.harness import task_body


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """A JSON handler on the root logger, as `MERIDIAN_LOG_FORMAT=json` installs it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_plain_function_logs_json_with_the_context_it_is_given(json_lines: io.StringIO) -> None:
    log = logging.getLogger("meridian.test")
    with log_context(task_id="t-1", region="aws-us-east-1", attempt=2, business_unit="ads"):
        log.warning("placing %s", "t-1")
    log.info("outside")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("it failed")

    inside, outside, failed = _lines(json_lines)
    assert inside["message"] == "placing t-1"
    assert inside["level"] == "WARNING" and inside["logger"] == "meridian.test"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", inside["time"])
    assert {k: inside[k] for k in ("task_id", "region", "attempt", "business_unit")} == {
        "task_id": "t-1",
        "region": "aws-us-east-1",
        "attempt": 2,
        "business_unit": "ads",
    }
    assert "task_id" not in outside and "trace_id" not in outside
    assert "ValueError: boom" in failed["exception"]


def test_the_trace_id_is_on_every_line_logged_inside_a_span(json_lines: io.StringIO) -> None:
    tracer = TracerProvider().get_tracer(__name__)
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("meridian.test").info("traced")
    (line,) = _lines(json_lines)
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


async def test_an_activity_logs_its_task_workflow_and_attempt(json_lines: io.StringIO) -> None:
    spec = TaskSpec.model_validate(task_body())
    given = CreateJobInput.model_validate(
        {"task_id": "t-7", "spec": spec, "attempt": 3, "region": "aws-us-east-1"}
    )

    @activity.defn(name="create_job")
    async def create_job(_: CreateJobInput) -> None:
        activity.logger.info("creating")  # the SDK's logger
        logging.getLogger("meridian.kube").info("calling the cluster")  # any logger

    class Run(ActivityInboundInterceptor):
        def __init__(self) -> None:
            pass

        async def execute_activity(self, input: ExecuteActivityInput) -> Any:
            return await input.fn(*input.args)

    bound = LogContextInterceptor().intercept_activity(Run())
    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info, activity_type="create_job", workflow_id="t-7", workflow_type="TaskWorkflow"
    )
    run = ExecuteActivityInput(fn=create_job, args=[given], executor=None, headers={})
    await env.run(bound.execute_activity, run)

    for line in _lines(json_lines):
        assert line["task_id"] == "t-7" and line["workflow_id"] == "t-7"
        assert line["region"] == "aws-us-east-1" and line["attempt"] == 3
        assert line["business_unit"] == "ads"
        assert line["activity_type"] == "create_job"
    assert len(_lines(json_lines)) == 2


def test_text_stays_the_default(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("MERIDIAN_LOG_FORMAT", raising=False)
    assert Settings().log_format == "text"
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        _configure_logging("INFO")
        logging.getLogger("meridian.test").warning("plain")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    err = capsys.readouterr().err
    assert re.search(r"^\S+ \S+ WARNING meridian\.test: plain$", err, re.MULTILINE), err


def test_json_when_asked(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("MERIDIAN_LOG_FORMAT", "json")
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        _configure_logging("INFO")
        logging.getLogger("meridian.test").warning("structured")
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "structured" and line["level"] == "WARNING"


def _sdk_failure(error: BaseException, attempt: int) -> logging.LogRecord:
    """The record the SDK's worker logs for a failed activity attempt."""
    try:
        raise error
    except BaseException:
        exc_info = sys.exc_info()
    record = logging.getLogger("temporalio.activity").makeRecord(
        "temporalio.activity",
        logging.WARNING,
        __file__,
        0,
        "Completing activity as failed ({'activity_type': 'create_job'})",
        (),
        exc_info,
        extra={"temporal_activity": {"activity_type": "create_job", "attempt": attempt}},
    )
    return record


def _filtered(record: logging.LogRecord) -> logging.LogRecord | None:
    return record if ActivityFailureFilter().filter(record) else None


def test_a_retryable_failure_is_a_one_line_warning_and_thinned() -> None:
    outage = ApplicationError("aws-us-east-1: connection refused", type="KubeUnavailable")
    first = _filtered(_sdk_failure(outage, attempt=1))
    assert first is not None and first.levelno == logging.WARNING
    assert first.exc_info is None  # one line: its type and message say it all
    assert "create_job failed (attempt 1, will retry): KubeUnavailable" in first.getMessage()
    shown = [n for n in range(1, 20) if _filtered(_sdk_failure(outage, attempt=n))]
    assert shown == [1, 2, 4, 8, 16]


def test_a_final_failure_is_a_warning_and_a_bug_is_an_error_with_its_traceback() -> None:
    refused = ApplicationError("forbidden", type="KubeForbidden", non_retryable=True)
    final = _filtered(_sdk_failure(refused, attempt=5))
    assert final is not None and final.levelno == logging.WARNING
    assert "(final)" in final.getMessage()
    bug = _filtered(_sdk_failure(KeyError("spec"), attempt=1))
    assert bug is not None and bug.levelno == logging.ERROR and bug.exc_info is not None


def test_retryable_failures_reach_the_log_once_configured(capsys: Any) -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        _configure_logging("INFO")
        try:
            raise ApplicationError("connection refused", type="KubeUnavailable")
        except ApplicationError:
            # As the SDK's worker logs it (temporalio.worker._activity).
            logging.getLogger("temporalio.activity").warning(
                "Completing activity as failed",
                exc_info=True,
                extra={"temporal_activity": {"activity_type": "create_job", "attempt": 1}},
            )
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])
    assert "WARNING temporalio.activity: create_job failed" in capsys.readouterr().err
