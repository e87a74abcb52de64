"""Kubernetes errors mapped to Meridian's own types, once, at the boundary, and the one
policy for what a failure means: retry it, or give up because retrying cannot help.

- Retryable: the cluster could not answer (connection refused, timeout, 429, 5xx).
- Final for the request: every other status. Among them, `KubeInvalid` (400/422) and
  `KubeForbidden` (403: RBAC, an admission policy or a quota refused it) are the
  *task's* final failures: the same spec sent anywhere is refused the same way, so the
  task ends FAILED with the API's message instead of being re-placed for ever.

The client's `ApiException` is imported where an exception is mapped, not at module
level: the central worker and the API use these types but never talk to a cluster, and
must not import the `kubernetes` package (10 MiB of RSS) for them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from urllib3.exceptions import HTTPError as Urllib3HTTPError

if TYPE_CHECKING:
    from kubernetes.client.exceptions import ApiException

_BODY_LIMIT = 300


class KubeError(Exception):
    """Any failure talking to a cluster."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class KubeNotFound(KubeError):
    pass


class KubeConflict(KubeError):
    pass


class KubeInvalid(KubeError):
    pass


class KubeForbidden(KubeError):
    """403: refused by RBAC, an admission policy or a quota."""


class KubeGone(KubeError):
    """410: a resourceVersion or continue token too old; re-list."""


class KubeUnavailable(KubeError):
    """Connection refused, timeout, 429 or 5xx: the cluster may come back; retry."""


def _message(exc: ApiException) -> str:
    body = exc.body or ""
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and parsed.get("message"):
            return str(parsed["message"])[:_BODY_LIMIT]
    except (ValueError, TypeError):
        pass
    return (str(body) or str(exc.reason))[:_BODY_LIMIT]


def translate(exc: BaseException) -> KubeError:
    """Map a client exception to a KubeError subtype (callers `raise translate(e) from e`)."""
    if isinstance(exc, KubeError):
        return exc
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        status = exc.status or 0
        message = f"{status} {_message(exc)}"
        retry_after = None
        if exc.headers and exc.headers.get("Retry-After"):
            try:
                retry_after = float(exc.headers["Retry-After"])
            except ValueError:
                retry_after = None
        if status == 404:
            return KubeNotFound(message, status=status)
        if status == 409:
            return KubeConflict(message, status=status)
        if status == 410:
            return KubeGone(message, status=status)
        if status == 403:
            return KubeForbidden(message, status=status)
        if status == 422 or status == 400:
            return KubeInvalid(message, status=status)
        if status == 429 or status >= 500 or status == 0:
            return KubeUnavailable(message, status=status, retry_after=retry_after)
        return KubeError(message, status=status)
    if isinstance(exc, (Urllib3HTTPError, OSError, TimeoutError)):
        return KubeUnavailable(f"unreachable: {type(exc).__name__}: {str(exc)[:_BODY_LIMIT]}")
    return KubeError(f"{type(exc).__name__}: {str(exc)[:_BODY_LIMIT]}")


# ApplicationError types a workflow treats as the task's own final failure.
FINAL_FAILURE_TYPES = (KubeInvalid.__name__, KubeForbidden.__name__)


def is_retryable(exc: KubeError) -> bool:
    """Only a cluster that could not answer is worth asking again."""
    return isinstance(exc, KubeUnavailable)


def is_final_for_task(exc: KubeError) -> bool:
    return type(exc).__name__ in FINAL_FAILURE_TYPES
