"""Errors shaped as the real API server's ``Status`` objects.

Reasons and messages follow apimachinery's ``k8s.io/apimachinery/pkg/api/errors``
(NewNotFound, NewAlreadyExists, NewConflict, NewInvalid, NewResourceExpired,
NewTooManyRequests ...), because clients branch on ``reason`` and ``code``.
"""

from __future__ import annotations

from kubesim.types import Obj


class ApiError(Exception):
    """An API failure that the HTTP layer turns into a Status response."""

    def __init__(self, status: Obj, headers: dict[str, str] | None = None) -> None:
        super().__init__(status.get("message", ""))
        self.status = status
        self.code: int = int(status["code"])
        self.headers = headers or {}


def status_failure(code: int, reason: str, message: str, details: Obj | None = None) -> Obj:
    status: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        status["details"] = details
    status["code"] = code
    return status


def status_success(code: int = 200, details: Obj | None = None) -> Obj:
    status: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
    if details:
        status["details"] = details
    status["code"] = code
    return status


def qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def _details(name: str, group: str, kind: str) -> Obj:
    details: Obj = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    return details


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        status_failure(
            404,
            "NotFound",
            f'{qualified(resource, group)} "{name}" not found',
            _details(name, group, resource),
        )
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        status_failure(
            409,
            "AlreadyExists",
            f'{qualified(resource, group)} "{name}" already exists',
            _details(name, group, resource),
        )
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        status_failure(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {qualified(resource, group)} "{name}": {why}',
            _details(name, group, resource),
        )
    )


def modified_conflict(resource: str, group: str, name: str) -> ApiError:
    return conflict(
        resource,
        group,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str]]) -> ApiError:
    """422 Invalid; ``causes`` are (field, message) pairs as field.ErrorList renders them."""
    rendered = [f"{f}: {m}" for f, m in causes]
    if len(rendered) == 1:
        summary = rendered[0]
    else:
        summary = "[" + ", ".join(rendered) + "]"
    kind_q = f"{kind}.{group}" if group else kind
    details = _details(name, group, kind)
    details["causes"] = [{"reason": _cause_reason(m), "message": m, "field": f} for f, m in causes]
    return ApiError(
        status_failure(422, "Invalid", f'{kind_q} "{name}" is invalid: {summary}', details)
    )


def _cause_reason(message: str) -> str:
    if message.startswith("Required value"):
        return "FieldValueRequired"
    if message.startswith("Unsupported value"):
        return "FieldValueNotSupported"
    if message.startswith("Forbidden"):
        return "FieldValueForbidden"
    return "FieldValueInvalid"


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    """403 Forbidden, as NewForbidden words it (an admission plugin's refusal)."""
    return ApiError(
        status_failure(
            403,
            "Forbidden",
            f'{qualified(resource, group)} "{name}" is forbidden: {why}',
            _details(name, group, resource),
        )
    )


def bad_request(message: str) -> ApiError:
    return ApiError(status_failure(400, "BadRequest", message))


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:  # noqa: E501
    return ApiError(status_failure(405, "MethodNotAllowed", message, {}))


def unsupported_media(content_type: str) -> ApiError:
    return ApiError(
        status_failure(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json-patch+json, application/merge-patch+json, "
            f'application/apply-patch+yaml; got "{content_type}"',
        )
    )


def expired(message: str) -> ApiError:
    return ApiError(status_failure(410, "Expired", message))


def continue_expired() -> ApiError:
    # Message of storage.ErrResourceExpired when a continue token points before compaction.
    return expired(
        "The provided continue parameter is too old to display a consistent list result. "
        "You can start a new list without the continue parameter, or use the continue token "
        "in this response to retrieve the remainder of the results. Continuing with the "
        "provided token results in an inconsistent list - objects that were created, "
        "modified, or deleted between the time the first chunk was returned and now may "
        "show up in the list."
    )


def too_old_resource_version(requested: int, oldest: int) -> Obj:
    """The ERROR event object a watch from a compacted resourceVersion receives."""
    return status_failure(410, "Expired", f"too old resource version: {requested} ({oldest})")


def too_many_requests(message: str, retry_after: int | None) -> ApiError:
    details: Obj = {}
    if retry_after is not None:
        details["retryAfterSeconds"] = retry_after
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    return ApiError(status_failure(429, "TooManyRequests", message, details or None), headers)


def internal_error(message: str) -> ApiError:
    return ApiError(
        status_failure(
            500,
            "InternalError",
            f"Internal error occurred: {message}",
            {"causes": [{"message": message}]},
        )
    )


def service_unavailable(message: str) -> ApiError:
    return ApiError(status_failure(503, "ServiceUnavailable", message))
