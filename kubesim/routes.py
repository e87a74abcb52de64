"""URL routing of the Kubernetes API paths onto the REST verbs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from kubesim import discovery, errors, rest
from kubesim.api_core import pod_eviction, pod_log
from kubesim.faults import error_response
from kubesim.resources import PODS, lookup
from kubesim.rest import Target, json_response

if TYPE_CHECKING:
    from kubesim.cluster import Cluster

ROOT_PATHS = [
    "/api",
    "/api/v1",
    "/apis",
    "/apis/batch",
    "/apis/batch/v1",
    "/apis/policy",
    "/apis/policy/v1",
    "/apis/networking.k8s.io",
    "/apis/networking.k8s.io/v1",
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
]


def page_not_found() -> errors.ApiError:
    return errors.ApiError(
        errors.status_failure(
            404,
            "NotFound",
            "the server could not find the requested resource",  # noqa: E501
            {},
        )
    )


async def handle(request: web.Request) -> web.StreamResponse:
    cluster: Cluster = request.app["cluster"]
    try:
        return await _dispatch(request, cluster)
    except errors.ApiError as exc:
        return error_response(exc)


async def _dispatch(request: web.Request, cluster: Cluster) -> web.StreamResponse:
    parts = [p for p in request.path.split("/") if p]
    if not parts:
        return json_response({"paths": ROOT_PATHS})
    head = parts[0]
    if head in ("healthz", "livez", "readyz") and len(parts) == 1:
        return web.Response(text="ok", content_type="text/plain")
    if head == "version" and len(parts) == 1:
        return json_response(discovery.VERSION_INFO)
    if head == "api":
        if len(parts) == 1:
            host = request.host or f"{request.url.host}:{request.url.port}"
            return json_response(discovery.api_versions(host))
        if parts[1] != "v1":
            raise page_not_found()
        return await _resource(request, cluster, "", "v1", parts[2:])
    if head == "apis":
        if len(parts) == 1:
            return json_response(discovery.api_group_list())
        group = parts[1]
        if group not in discovery.GROUPS:
            raise page_not_found()
        if len(parts) == 2:
            return json_response(discovery.api_group(group))
        return await _resource(request, cluster, group, parts[2], parts[3:])
    raise page_not_found()


async def _resource(
    request: web.Request, cluster: Cluster, group: str, version: str, rest_parts: list[str]
) -> web.StreamResponse:
    if not rest_parts:
        listing = discovery.resource_list(group, version)
        if listing is None:
            raise page_not_found()
        return json_response(listing)
    if rest_parts[0] == "watch":
        # Legacy /watch/ paths mean ?watch=true on the collection.
        request["watch"] = True
        rest_parts = rest_parts[1:]
    namespace: str | None = None
    if len(rest_parts) >= 3 and rest_parts[0] == "namespaces":
        rt = lookup(group, version, rest_parts[2])
        if rt is not None and rt.namespaced:
            namespace = rest_parts[1]
            rest_parts = rest_parts[2:]
    rt = lookup(group, version, rest_parts[0])
    if rt is None or len(rest_parts) > 3:
        raise page_not_found()
    name = rest_parts[1] if len(rest_parts) > 1 else None
    sub = rest_parts[2] if len(rest_parts) > 2 else None
    if rt.namespaced and namespace is None and name is not None:
        raise page_not_found()
    target = Target(rt, namespace if rt.namespaced else None, name, sub)
    method = request.method
    if request.get("watch") and method == "GET":
        return await rest.list_or_watch(request, cluster, target)
    if name is None:
        if method == "GET":
            return await rest.list_or_watch(request, cluster, target)
        if method == "POST" and (namespace is not None or not rt.namespaced):
            return await rest.create(request, cluster, target)
        if method == "DELETE":
            return await rest.delete_collection(request, cluster, target)
        raise errors.method_not_allowed()
    if sub is None or sub == "status" and sub in rt.subresources:
        if method == "GET":
            return await rest.get(request, cluster, target)
        if method == "PUT":
            return await rest.replace(request, cluster, target)
        if method == "PATCH":
            return await rest.patch(request, cluster, target)
        if method == "DELETE" and sub is None:
            return await rest.delete(request, cluster, target)
        raise errors.method_not_allowed()
    if rt is PODS and sub == "log" and method == "GET":
        return await pod_log(request, cluster, target)
    if rt is PODS and sub == "eviction" and method == "POST":
        return await pod_eviction(request, cluster, target)
    raise page_not_found()
