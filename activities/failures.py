"""Kubernetes and node-pool failures as the ApplicationErrors workflows act on: one
mapping for every activity, following `meridian.kube.errors`' policy."""

from __future__ import annotations

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from meridian.kube.errors import KubeError, is_retryable
from meridian.nodepools.base import NodePoolError, NodePoolThrottled


def kube_failure(exc: KubeError) -> ApplicationError:
    # The type name lets a workflow tell a refused spec (the task's own final failure)
    # from an outage (move elsewhere); Retry-After paces the retries of a throttled API.
    delay = timedelta(seconds=exc.retry_after) if exc.retry_after else None
    return ApplicationError(
        str(exc),
        type=type(exc).__name__,
        non_retryable=not is_retryable(exc),
        next_retry_delay=delay,
    )


def pool_failure(exc: NodePoolError) -> ApplicationError:
    delay = None
    if isinstance(exc, NodePoolThrottled) and exc.retry_after:
        delay = timedelta(seconds=exc.retry_after)
    return ApplicationError(
        str(exc), type=type(exc).__name__, non_retryable=not exc.retryable, next_retry_delay=delay
    )
