"""Connecting to Temporal the same way everywhere: one data converter for all, and the
connection's security (TLS, mTLS client certificates, API keys) from Temporal's own
client configuration.

That configuration is the SDK's (`temporalio.envconfig`), read from the `TEMPORAL_*`
environment variables (`TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY`,
`TEMPORAL_TLS`, `TEMPORAL_TLS_SERVER_CA_CERT_PATH`, `TEMPORAL_TLS_CLIENT_CERT_PATH`,
`TEMPORAL_TLS_CLIENT_KEY_PATH`, `TEMPORAL_TLS_SERVER_NAME`, ...) and from the profile
`TEMPORAL_PROFILE` of the file `TEMPORAL_CONFIG_FILE`, the same that the `temporal` CLI
reads. Meridian's `temporal_address` and `temporal_namespace` win when set.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, Interceptor
from temporalio.envconfig import ClientConfig, ClientConnectConfig
from temporalio.service import RPCError

from meridian.observability.logs import LogContextInterceptor
from meridian.observability.server import temporal_runtime
from meridian.observability.tracing import configure_tracing, temporal_interceptors
from meridian.security.codec import data_converter
from meridian.settings import Settings

log = logging.getLogger(__name__)

# A live worker long-polls at least once a minute; the server remembers pollers for
# minutes after they stop, so only those seen within this window count.
POLLER_FRESH_SECONDS = 90.0


def connect_options(
    settings: Settings, env: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """Temporal's client configuration from `env` (default: this process's environment),
    with Meridian's address and namespace over it when they are set, and as the default
    when neither names one."""
    options = ClientConfig.load_client_connect_config(override_env_vars=env)
    explicit = settings.model_fields_set
    if "temporal_address" in explicit or "target_host" not in options:
        options["target_host"] = settings.temporal_address
    if "temporal_namespace" in explicit or "namespace" not in options:
        options["namespace"] = settings.temporal_namespace
    return options


def client_interceptors() -> list[Interceptor]:
    """Tracing (when on) and the logs' task fields. Both are worker interceptors too, and
    a worker built from this client inherits them (the SDK prepends a client's worker
    interceptors to the worker's own), so workers must not pass them again."""
    configure_tracing("meridian")  # a no-op when already configured or not asked for
    return [*temporal_interceptors(), LogContextInterceptor()]


async def connect(
    settings: Settings,
    *,
    attempts: int = 30,
    delay: float = 1.0,
    env: Mapping[str, str] | None = None,
) -> Client:
    """Connect, retrying while the server starts (the dev server takes a moment)."""
    options = connect_options(settings, env)
    converter = data_converter(settings)
    if converter.payload_codec is None:
        log.warning("no codec keys: payloads go to Temporal unencrypted")
    last: Exception | None = None
    for _ in range(attempts):
        try:
            return await Client.connect(
                **options,
                data_converter=converter,
                runtime=temporal_runtime(),
                interceptors=client_interceptors(),
            )
        except RuntimeError as exc:  # the SDK raises RuntimeError on connection failure
            last = exc
            await asyncio.sleep(delay)
    raise RuntimeError(f"cannot reach Temporal at {options['target_host']}: {last}")


async def _poll_times(client: Client, queue: str, timeout: float) -> list[float] | None:
    """When each poller of the activity task queue `queue` last polled (epoch seconds;
    +inf when Temporal does not say), as its task-queue description lists them; None when
    Temporal does not answer in time."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
    )
    try:
        answer = await asyncio.wait_for(
            client.workflow_service.describe_task_queue(request), timeout=timeout
        )
    except (RPCError, RuntimeError, TimeoutError) as exc:
        log.info("describing task queue %s failed: %s", queue, exc)
        return None
    return [
        poller.last_access_time.ToDatetime(tzinfo=UTC).timestamp()
        if poller.HasField("last_access_time")
        else math.inf
        for poller in answer.pollers
    ]


async def recent_pollers(client: Client, queue: str, *, timeout: float = 2.0) -> int | None:
    """Workers that polled the activity task queue `queue` lately, as Temporal's
    task-queue description lists them; None when Temporal does not answer in time."""
    times = await _poll_times(client, queue, timeout)
    if times is None:
        return None
    fresh_after = datetime.now(UTC).timestamp() - POLLER_FRESH_SECONDS
    return sum(1 for at in times if at >= fresh_after)


async def last_poll_age(client: Client, queues: list[str], *, timeout: float = 2.0) -> float | None:
    """Seconds since any worker last polled one of the activity task queues `queues`,
    per Temporal (0 when it lists a poller without a time); None when it lists none or
    does not answer.

    Temporal notes a poll when it arrives. A worker busy with work polls again as soon
    as it has a free slot, so a recent poll on a queue of its tells a busy worker from a
    dead one even while a particular task waits for it.
    """
    answers = await asyncio.gather(*(_poll_times(client, q, timeout) for q in queues))
    newest = max((at for times in answers if times for at in times), default=None)
    if newest is None:
        return None
    return max(0.0, datetime.now(UTC).timestamp() - newest)
