"""Serving `/metrics`: one port per process, the role's families and the Temporal SDK's.

The Temporal SDK exports its own metrics (workflow task latency, poll results, RPC
errors...) through the Rust core's Prometheus exporter, which needs a port of its own.
It is bound on loopback to a free port and read on every scrape, so that a process still
shows Prometheus one endpoint with everything on it.

`serve_metrics(role, settings)` starts both (nothing when the role's port is 0) and sets
the process's Temporal runtime, which `meridian.temporal.connect` gives every client
(and so every worker built on one).
"""

from __future__ import annotations

import logging
import socket
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from threading import Thread
from typing import Literal
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from meridian.observability.metrics import REGISTRIES
from meridian.settings import Settings

log = logging.getLogger(__name__)

Role = Literal["api", "central", "unit"]

# The process's Temporal runtime once metrics are on; None: the SDK's default runtime.
_runtime: Runtime | None = None


def temporal_runtime() -> Runtime | None:
    """The runtime every Temporal client of this process is to use (None: the default)."""
    return _runtime


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TemporalSdkCollector(Collector):
    """The SDK exporter's families, read on each scrape (a second or less on loopback).

    When the exporter does not answer, the scrape still shows Meridian's own families."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout

    def collect(self) -> Iterable[Metric]:
        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310 - our loopback URL
                text = response.read().decode("utf-8")
        except OSError as exc:
            log.debug("Temporal SDK metrics unavailable at %s: %s", self.url, exc)
            return []
        return list(text_string_to_metric_families(text))

    def describe(self) -> Iterable[Metric]:
        return []  # not known until read; the registry then skips the name check


def sdk_runtime(bind_address: str) -> Runtime:
    """A runtime whose SDK metrics follow Prometheus conventions (`_total` counters,
    durations in seconds with the unit in the name)."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            )
        )
    )


@dataclass
class MetricsEndpoint:
    role: Role
    host: str
    port: int
    server: WSGIServer
    thread: Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def serve(role: Role, host: str, port: int, registry: CollectorRegistry) -> MetricsEndpoint:
    """Serve `registry` on http://host:port/metrics in a daemon thread."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsEndpoint(role, host, int(server.server_port), server, thread)


def serve_metrics(role: Role, settings: Settings) -> MetricsEndpoint | None:
    """Start the role's `/metrics` and the Temporal SDK's exporter behind it; None when
    the role's port is 0. Call before connecting to Temporal, once per process."""
    global _runtime
    port = {
        "api": settings.metrics.api_port,
        "central": settings.metrics.central_port,
        "unit": settings.metrics.unit_port,
    }[role]
    if port == 0:
        return None
    registry = REGISTRIES[role]
    if _runtime is None:
        sdk_address = f"127.0.0.1:{free_loopback_port()}"
        _runtime = sdk_runtime(sdk_address)
        registry.register(TemporalSdkCollector(f"http://{sdk_address}/metrics"))
    endpoint = serve(role, settings.metrics.host, port, registry)
    log.info("%s metrics at %s", role, endpoint.url)
    return endpoint
