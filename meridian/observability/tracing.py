"""OpenTelemetry traces: one task's trace runs from the API's POST through StartWorkflow,
the workflow and its activities to the Kubernetes Job create.

Export is configured by the standard `OTEL_*` variables only (`OTEL_TRACES_EXPORTER`,
`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, ...), read by the SDK itself. When none of them asks for
export, no provider is installed: the OTel API stays its no-op self, Temporal's client
gets no tracing interceptor and the API no instrumentation, so tracing costs nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import trace
from temporalio.client import Interceptor

log = logging.getLogger(__name__)

# Variables that ask for export; any one of them set turns tracing on.
_EXPORT_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)


def export_requested(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment asks for traces to be exported (`none` is a no)."""
    env = os.environ if env is None else env
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return any(env.get(name, "").strip() for name in _EXPORT_VARIABLES)


def tracing_active() -> bool:
    """Whether a real (SDK) tracer provider is installed in this process, by
    `configure_tracing` or by a test; the default is the API's proxy to a no-op."""
    provider = trace.get_tracer_provider()
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


def configure_tracing(service_name: str, env: Mapping[str, str] | None = None) -> bool:
    """Install the SDK's tracer provider with the exporter the `OTEL_*` variables name
    (OTLP over HTTP by default, `console` for stdout), once per process. `service_name`
    is the default for `OTEL_SERVICE_NAME`. Returns whether tracing is on."""
    if tracing_active():
        return True
    if not export_requested(env):
        return False
    # Imported here: a process that does not trace does not load the SDK.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    env = os.environ if env is None else env
    # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; attributes
    # given to it win over those, so the default name is given only when none is set.
    given = {} if env.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service_name}
    resource = Resource.create(given)
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    provider = TracerProvider(resource=resource)
    for name in names:
        exporter: SpanExporter
        if name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
        else:
            log.warning("OTEL_TRACES_EXPORTER=%s is not supported here (otlp, console)", name)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on: %s exports %s", service_name, ", ".join(names))
    return True


def temporal_interceptors() -> list[Interceptor]:
    """The Temporal client's tracing interceptor when tracing is on, else nothing.

    It is also a worker interceptor, so every worker built from the client inherits it
    (the SDK prepends a client's worker interceptors): workflows and activities continue
    the trace that StartWorkflow's headers carry.
    """
    if not tracing_active():
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def current_trace_id() -> str | None:
    """The current span's trace id as 32 hex digits, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x")
