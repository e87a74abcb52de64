"""Generic REST verbs over the store: get, list, watch, create, update, patch, delete."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from kubesim import errors, podsecurity, protobuf
from kubesim.admission import prepare_create, prepare_update
from kubesim.patch import APPLY, apply_patch
from kubesim.resources import JOBS, NAMESPACES, NODES, PODS, ResourceType
from kubesim.selectors import FieldSelector, LabelSelector
from kubesim.store import dumps
from kubesim.tables import table, wants_table
from kubesim.types import Obj
from kubesim.watch import serve_watch

if TYPE_CHECKING:
    from kubesim.cluster import Cluster


JOB_ORPHAN_WARNING = (
    '299 - "child pods are preserved by default when jobs are deleted; set '
    "propagationPolicy=Background to remove them or set propagationPolicy=Orphan to "
    'suppress this warning"'
)


@dataclass(slots=True)
class Target:
    rt: ResourceType
    namespace: str | None  # None: all namespaces (or cluster-scoped)
    name: str | None
    sub: str | None


def json_response(
    obj: Obj, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:  # noqa: E501
    return web.Response(
        body=dumps(obj), status=status, content_type="application/json", headers=headers
    )


def raw_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


async def read_body(request: web.Request) -> Any:
    raw = await request.read()
    if not raw:
        return None
    content_type = request.headers.get("Content-Type", "application/json")
    if content_type.startswith(protobuf.CONTENT_TYPE):
        return protobuf.decode(raw)
    if "yaml" in content_type:
        import yaml

        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise errors.bad_request(f"invalid YAML: {exc}") from exc
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(
            f"the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml: {exc}"
        ) from exc


def _ensure_namespace(cluster: Cluster, namespace: str) -> None:
    if cluster.store.get(NAMESPACES.name, "", namespace) is None:
        raise errors.not_found("namespaces", "", namespace)


def _int_param(request: web.Request, name: str) -> int | None:
    value = request.query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise errors.bad_request(f"invalid {name} {value!r}") from exc


def _dry_run(request: web.Request, body: Obj | None = None) -> bool:
    if request.query.get("dryRun"):
        return True
    return bool(body and body.get("dryRun"))


# ---- read ----------------------------------------------------------------------------------
async def get(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    assert target.name is not None
    cluster.stats.record("get", target.rt.name)
    entry = cluster.store.get_entry(target.rt.name, target.namespace or "", target.name)
    if entry is None:
        raise errors.not_found(target.rt.name, target.rt.group, target.name)
    if wants_table(request.headers.get("Accept", "")):
        return json_response(
            table(
                target.rt,
                [entry.obj],
                entry.obj["metadata"]["resourceVersion"],
                request.query.get("includeObject", "Metadata"),
            )
        )
    return raw_response(entry.raw())


async def list_or_watch(
    request: web.Request, cluster: Cluster, target: Target
) -> web.StreamResponse:  # noqa: E501
    rt = target.rt
    labels = LabelSelector.parse(request.query.get("labelSelector"))
    fields = FieldSelector.parse(request.query.get("fieldSelector"), rt.name)
    if request.get("watch") or request.query.get("watch", "").lower() in ("1", "true"):
        return await serve_watch(
            request, cluster, rt, target.namespace, labels, fields, request.app["bookmark_interval"]
        )
    cluster.stats.record("list", rt.name)
    limit = _int_param(request, "limit") or 0
    result = cluster.store.select(
        rt.name, target.namespace, labels, fields, limit, request.query.get("continue") or None
    )
    if wants_table(request.headers.get("Accept", "")):
        return json_response(
            table(
                rt,
                [e.obj for e in result.entries],
                str(result.resource_version),
                request.query.get("includeObject", "Metadata"),
                result.continue_token,
            )
        )
    meta: Obj = {"resourceVersion": str(result.resource_version)}
    if result.continue_token:
        meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
    head = dumps({"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta})
    body = head[:-1] + b',"items":[' + b",".join(e.raw() for e in result.entries) + b"]}"
    return raw_response(body)


# ---- write ---------------------------------------------------------------------------------
async def create(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    rt = target.rt
    cluster.stats.record("create", rt.name)
    body = await read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    _check_type(rt, body)
    namespace = target.namespace or ""
    meta = body.setdefault("metadata", {}) or {}
    body["metadata"] = meta
    if rt.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        _ensure_namespace(cluster, namespace)
    obj = prepare_create(rt, body, namespace)
    name = obj["metadata"]["name"]
    _admit_pod_security(cluster, rt, obj, namespace, name)
    if cluster.store.get(rt.name, namespace if rt.namespaced else "", name) is not None:
        raise errors.already_exists(rt.name, rt.group, name)
    if _dry_run(request):
        return json_response(obj, 201)
    stored = cluster.store.create(rt.name, obj)
    return json_response(stored, 201)


def _admit_pod_security(
    cluster: Cluster, rt: ResourceType, obj: Obj, namespace: str, name: str
) -> None:
    """Pod Security admission runs after defaulting and validation (a 422 comes first),
    dry runs included, as a validating admission plugin does."""
    if rt is PODS:
        spec = obj.get("spec") or {}
    elif rt is JOBS:
        # A real API server admits such a Job with only a warning, and its controller's
        # pod creation fails (FailedCreate). kubesim refuses the Job itself, 403 naming
        # the pod template's violations, so a client learns at once; it still happens
        # only in a namespace labelled for enforcement. (Pods of a Job created before
        # the label are refused in the Job controller, as on a real cluster.)
        spec = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    else:
        return
    ns = cluster.store.get(NAMESPACES.name, "", namespace)
    podsecurity.forbid(ns, rt.name, rt.group, name, spec)


def _check_type(rt: ResourceType, body: Obj) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != rt.kind:
        raise errors.bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({rt.api_version})"
            if api_version and api_version != rt.api_version
            else f'{kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
        )


def _store_update(
    cluster: Cluster, target: Target, current: Obj, desired: Obj, dry_run: bool
) -> Obj:
    rt = target.rt
    requested_rv = (desired.get("metadata") or {}).get("resourceVersion")
    if requested_rv and str(requested_rv) != current["metadata"]["resourceVersion"]:
        raise errors.modified_conflict(rt.name, rt.group, current["metadata"]["name"])
    name = (desired.get("metadata") or {}).get("name")
    if name and name != current["metadata"]["name"]:
        raise errors.bad_request(
            f"the name of the object ({name}) does not match the name on the URL "
            f"({current['metadata']['name']})"
        )
    updated = prepare_update(rt, current, desired, status_only=target.sub == "status")
    if dry_run:
        return updated
    return cluster.store.update(rt.name, updated)


async def replace(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    rt = target.rt
    assert target.name is not None
    cluster.stats.record("update", rt.name if not target.sub else f"{rt.name}/{target.sub}")
    body = await read_body(request)
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be a JSON object")
    current = cluster.store.get(rt.name, target.namespace or "", target.name)
    if current is None:
        raise errors.not_found(rt.name, rt.group, target.name)
    stored = _store_update(cluster, target, current, body, _dry_run(request))
    return json_response(stored)


async def patch(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    rt = target.rt
    assert target.name is not None
    cluster.stats.record("patch", rt.name if not target.sub else f"{rt.name}/{target.sub}")
    body = await read_body(request)
    content_type = request.headers.get("Content-Type", "application/merge-patch+json")
    applying = content_type.split(";")[0].strip().lower() == APPLY
    if applying and not request.query.get("fieldManager"):
        raise errors.invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            [("fieldManager", "Required value: is required for apply patch")],
        )
    current = cluster.store.get(rt.name, target.namespace or "", target.name)
    if current is None:
        if applying:
            # Server-side apply of an absent object creates it (201), as the API server does.
            return _create_applied(request, cluster, target, body)
        raise errors.not_found(rt.name, rt.group, target.name)
    patched = apply_patch(content_type, current, body)
    if not isinstance(patched, dict):
        raise errors.bad_request("the patch must produce an object")
    if patched.get("metadata", {}).get("resourceVersion") == current["metadata"]["resourceVersion"]:  # noqa: E501
        # An unchanged resourceVersion carried over from the stored object is no precondition.
        patched["metadata"] = dict(patched["metadata"])
        patched["metadata"].pop("resourceVersion", None)
    if patched == current:
        return json_response(current)
    stored = _store_update(cluster, target, current, patched, _dry_run(request))
    return json_response(stored)


def _create_applied(
    request: web.Request, cluster: Cluster, target: Target, body: Any
) -> web.StreamResponse:
    rt = target.rt
    assert target.name is not None
    if not isinstance(body, dict):
        raise errors.bad_request("the request body must be an object")
    _check_type(rt, body)
    meta = dict(body.get("metadata") or {})
    if meta.get("name") and meta["name"] != target.name:
        raise errors.bad_request(
            f"the name of the object ({meta['name']}) does not match the name on the URL "
            f"({target.name})"
        )
    meta["name"] = target.name
    namespace = target.namespace or ""
    if rt.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )
        _ensure_namespace(cluster, namespace)
    obj = prepare_create(rt, {**body, "metadata": meta}, namespace)
    _admit_pod_security(cluster, rt, obj, namespace, target.name)
    if _dry_run(request):
        return json_response(obj, 201)
    return json_response(cluster.store.create(rt.name, obj), 201)


async def _delete_options(request: web.Request) -> Obj:
    options: Obj = {}
    if request.can_read_body:
        body = await read_body(request)
        if isinstance(body, dict):
            options.update(body)
    if request.query.get("propagationPolicy"):
        options["propagationPolicy"] = request.query["propagationPolicy"]
    grace = _int_param(request, "gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    if request.query.get("orphanDependents"):
        options["orphanDependents"] = request.query["orphanDependents"].lower() == "true"
    if request.query.get("dryRun"):
        options["dryRun"] = [request.query["dryRun"]]
    return options


def _propagation(rt: ResourceType, options: Obj) -> tuple[str, bool]:
    """(policy, defaulted); batch/v1 Jobs default to Orphan for backward compatibility."""
    policy = options.get("propagationPolicy")
    if policy:
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                "",
                [
                    (
                        "propagationPolicy",
                        f'Unsupported value: "{policy}": supported values: "Foreground", '
                        '"Background", "Orphan", "nil"',
                    )
                ],
            )
        return str(policy), False
    if options.get("orphanDependents") is True:
        return "Orphan", False
    if options.get("orphanDependents") is False:
        return "Background", False
    return ("Orphan", True) if rt is JOBS else ("Background", True)


async def delete(request: web.Request, cluster: Cluster, target: Target) -> web.StreamResponse:
    rt = target.rt
    assert target.name is not None
    cluster.stats.record("delete", rt.name)
    options = await _delete_options(request)
    namespace = target.namespace or ""
    current = cluster.store.get(rt.name, namespace, target.name)
    if current is None:
        raise errors.not_found(rt.name, rt.group, target.name)
    preconditions = options.get("preconditions") or {}
    if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
        raise errors.conflict(
            rt.name,
            rt.group,
            target.name,
            f"Precondition failed: UID in precondition: {preconditions['uid']}, UID in object "
            f"meta: {current['metadata']['uid']}",
        )
    if preconditions.get("resourceVersion") and (
        preconditions["resourceVersion"] != current["metadata"]["resourceVersion"]
    ):
        raise errors.conflict(
            rt.name,
            rt.group,
            target.name,
            f"Precondition failed: ResourceVersion in precondition: "
            f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
            f"{current['metadata']['resourceVersion']}",
        )
    if options.get("dryRun"):
        return json_response(current)
    details = {"name": target.name, "kind": rt.name, "uid": current["metadata"]["uid"]}
    if rt.group:
        details = {
            "name": target.name,
            "group": rt.group,
            "kind": rt.name,
            "uid": current["metadata"]["uid"],
        }
    success = errors.status_success(200, details)
    if rt is PODS:
        grace = options.get("gracePeriodSeconds")
        result = cluster.delete_pod(namespace, target.name, None if grace is None else int(grace))
        return json_response(result or current)
    if rt is JOBS:
        policy, defaulted = _propagation(rt, options)
        obj, deleted_now = cluster.delete_job(namespace, target.name, policy)
        headers = {"Warning": JOB_ORPHAN_WARNING} if defaulted else None
        if deleted_now:
            return json_response(success, headers=headers)
        return json_response(obj, headers=headers)
    if rt is NAMESPACES:
        if target.name in ("default", "kube-system", "kube-public"):
            raise errors.ApiError(
                errors.status_failure(
                    403,
                    "Forbidden",
                    f'namespaces "{target.name}" is forbidden: this namespace may not be deleted',
                    {"name": target.name, "kind": "namespaces"},
                )
            )
        final = cluster.delete_namespace(target.name) or current
        final = {**final, "status": {"phase": "Terminating"}}
        return json_response(final)
    if rt is NODES:
        cluster.delete_node(target.name)
        return json_response(success)
    cluster.store.delete(rt.name, namespace, target.name)
    return json_response(success)


async def delete_collection(
    request: web.Request, cluster: Cluster, target: Target
) -> web.StreamResponse:  # noqa: E501
    rt = target.rt
    cluster.stats.record("deletecollection", rt.name)
    options = await _delete_options(request)
    labels = LabelSelector.parse(request.query.get("labelSelector"))
    fields = FieldSelector.parse(request.query.get("fieldSelector"), rt.name)
    result = cluster.store.select(rt.name, target.namespace, labels, fields)
    for entry in result.entries:
        meta = entry.obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        if rt is PODS:
            grace = options.get("gracePeriodSeconds")
            cluster.delete_pod(namespace, name, None if grace is None else int(grace))
        elif rt is JOBS:
            cluster.delete_job(namespace, name, _propagation(rt, options)[0])
        elif rt is NODES:
            cluster.delete_node(name)
        elif rt is NAMESPACES:
            continue
        else:
            cluster.store.delete(rt.name, namespace, name)
    return json_response(errors.status_success(200))
