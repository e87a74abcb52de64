"""Kubernetes API request metrics, at the one place every request passes: the region's
ApiClient's REST client. The gateway's calls, the Job watch and the scaling activities'
node calls are all counted alike, each request once (retries are separate requests).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from meridian.observability import metrics as m

# A request that got no answer (refused, reset, timed out): client-go says "<error>".
NO_ANSWER = "error"


def request_verb(method: str, url: str) -> str:
    """The Kubernetes verb of a request, as the apiserver's own metrics name it: get,
    list, watch, create, update, patch, delete, deletecollection."""
    parts = urlsplit(url)
    method = method.upper()
    if method == "GET" and parse_qs(parts.query).get("watch", [""])[0] in ("true", "1"):
        return "watch"
    named = _names_an_object(parts.path)
    if method in ("GET", "HEAD"):
        return "get" if named else "list"
    if method == "DELETE":
        return "delete" if named else "deletecollection"
    return {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())


def _names_an_object(path: str) -> bool:
    """/api/v1/namespaces/ns/pods/name(/sub) names an object; .../pods lists them."""
    segments = [s for s in path.split("/") if s]
    if segments[:1] == ["api"]:
        rest = segments[2:]  # api, v1
    elif segments[:1] == ["apis"]:
        rest = segments[3:]  # apis, group, version
    else:
        return False
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]  # a namespaced resource (namespaces/ns alone names a namespace)
    return len(rest) >= 2


def instrument(api_client: Any, region: str) -> None:
    """Count and time every request of this region's ApiClient."""
    rest = api_client.rest_client
    send = rest.request

    def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        verb = request_verb(method, url)
        started = time.monotonic()
        code = NO_ANSWER
        try:
            response = send(method, url, *args, **kwargs)
            code = str(getattr(response, "status", NO_ANSWER))
            return response
        finally:
            m.KUBE_REQUESTS.labels(region, verb, code).inc()
            m.KUBE_REQUEST_DURATION.labels(region, verb).observe(time.monotonic() - started)

    rest.request = request
