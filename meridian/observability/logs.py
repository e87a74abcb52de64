"""Logs: plain text for a person at a terminal (`meridian up`'s default) or one JSON object
per line for a log pipeline (`MERIDIAN_LOG_FORMAT=json`, the manifests' default).

Every record carries, wherever they are known, the task it concerns (`task_id`,
`workflow_id`, `region`, `attempt` = the task's attempt, `business_unit`) and the
current trace (`trace_id`, `span_id`). They come from, weakest first:
- the Temporal SDK's `temporal_activity` / `temporal_workflow` extras (its activity and
  workflow loggers add them) and `activity.info()` inside an activity;
- `log_context(...)`, bound by `LogContextInterceptor` from an activity's input;
- the record's own `extra=`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal

from opentelemetry import trace
from temporalio import activity
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
)
from temporalio.worker import Interceptor as WorkerInterceptor

from meridian.observability.tracing import current_trace_id

CONTEXT_FIELDS = ("task_id", "workflow_id", "region", "attempt", "business_unit")
# Also carried when known: which activity ran, and Temporal's own retry of it (not the
# task's attempt, which is `attempt`).
EXTRA_FIELDS = ("workflow_type", "activity_type", "activity_attempt", "trace_id", "span_id")
TASK_WORKFLOW_TYPE = "TaskWorkflow"  # its workflow id is the task id

_NONE: Mapping[str, Any] = MappingProxyType({})
_fields: ContextVar[Mapping[str, Any]] = ContextVar("meridian_log_fields", default=_NONE)


@contextlib.contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add `fields` (those not None) to every record logged inside the block."""
    known = {key: value for key, value in fields.items() if value is not None}
    token = _fields.set({**_fields.get(), **known})
    try:
        yield
    finally:
        _fields.reset(token)


def _from_temporal(record: logging.LogRecord) -> dict[str, Any]:
    """The task's fields from what the Temporal SDK knows of the running code."""
    details: Mapping[str, Any] = (
        getattr(record, "temporal_activity", None)
        or getattr(record, "temporal_workflow", None)
        or {}
    )
    if not details and activity.in_activity():
        info = activity.info()
        details = {
            "workflow_id": info.workflow_id,
            "workflow_type": info.workflow_type,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    found: dict[str, Any] = {}
    if details.get("workflow_id"):
        found["workflow_id"] = details["workflow_id"]
        if details.get("workflow_type") == TASK_WORKFLOW_TYPE:
            found["task_id"] = details["workflow_id"]
    if details.get("workflow_type"):
        found["workflow_type"] = details["workflow_type"]
    if details.get("activity_type"):
        found["activity_type"] = details["activity_type"]
        found["activity_attempt"] = details.get("attempt")
    return found


def _from_trace() -> dict[str, Any]:
    trace_id = current_trace_id()
    if trace_id is None:
        return {}
    span_id = format(trace.get_current_span().get_span_context().span_id, "016x")
    return {"trace_id": trace_id, "span_id": span_id}


class ContextFilter(logging.Filter):
    """Sets the task's fields and the trace on every record that passes (on a handler,
    so that records from every logger get them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = {**_from_temporal(record), **_fields.get(), **_from_trace()}
        for key, value in fields.items():
            if getattr(record, key, None) is None:  # the record's own extra wins
                setattr(record, key, value)
        return True


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, exception, and the
    task's fields and the trace where known."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key in (*CONTEXT_FIELDS, *EXTRA_FIELDS):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str = "INFO", log_format: Literal["text", "json"] = "text") -> None:
    """The root handler in `log_format`, the task's fields on every record, and the
    Temporal SDK's activity-failure lines at the level they deserve."""
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    json_lines = log_format == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    failures = logging.getLogger("temporalio.activity")
    if not any(isinstance(f, ActivityFailureFilter) for f in failures.filters):
        failures.addFilter(ActivityFailureFilter())


# -- activity failures ---------------------------------------------------------------------

_FAILED = "Completing activity as failed"


def _thinned(attempt: int) -> bool:
    """Attempts 1, 2, 4, 8, ...: an activity retried through a long outage says so a
    handful of times, not once per retry."""
    return attempt & (attempt - 1) == 0


class ActivityFailureFilter(logging.Filter):
    """The SDK logs every failed activity attempt at WARNING with its traceback. Of those:
    - a classified failure (an ApplicationError: a cluster that did not answer, a refused
      spec) is a WARNING of one line, its type and message saying all a traceback would;
    - anything else is a bug: ERROR, with its traceback;
    - a retried one is logged on attempts 1, 2, 4, 8, ... only (DEBUG in between), so an
      outage across many tasks does not flood the log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(_FAILED) or not record.exc_info:
            return True
        error = record.exc_info[1]
        details = getattr(record, "temporal_activity", None) or {}
        attempt = int(details.get("attempt") or 1)
        name = details.get("activity_type", "activity")
        if isinstance(error, ApplicationError):
            kind = error.type or type(error).__name__
            outcome = "final" if error.non_retryable else f"attempt {attempt}, will retry"
            record.msg = f"{name} failed ({outcome}): {kind}: {error.message}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
            shown = error.non_retryable or _thinned(attempt)
            _set_level(record, logging.WARNING if shown else logging.DEBUG)
        else:
            record.msg = f"{name} failed (attempt {attempt}): {type(error).__name__}: {error}"
            record.args = None
            _set_level(record, logging.ERROR if _thinned(attempt) else logging.DEBUG)
        return record.levelno >= logging.getLogger(record.name).getEffectiveLevel()


def _set_level(record: logging.LogRecord, level: int) -> None:
    record.levelno = level
    record.levelname = logging.getLevelName(level)


# -- binding the task's fields from an activity's input ------------------------------------


class _BindInputs(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        first = input.args[0] if input.args else None
        fields = {name: getattr(first, name, None) for name in CONTEXT_FIELDS}
        fields["business_unit"] = fields["business_unit"] or _business_unit(first)
        # A sync activity runs in a copy of this context (the SDK copies it into the
        # thread), so the fields reach its logs too.
        with log_context(**fields):
            return await super().execute_activity(input)


def _business_unit(value: object) -> Any:
    spec = getattr(value, "spec", None)
    return getattr(spec, "business_unit", None)


class LogContextInterceptor(ClientInterceptor, WorkerInterceptor):
    """Binds the task's fields (`task_id`, `region`, `attempt`, `business_unit`) from each
    activity's input for its logs. A client interceptor too, so that workers built from
    the client inherit it, as they do the tracing interceptor."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _BindInputs(next)
