"""Defaulting and validation on create/update, as the real REST strategies do.

Only what clients notice is covered: required fields, DNS-1123 names, the defaults the
Job and Pod strategies fill in, and immutable fields on update.
"""

from __future__ import annotations

from typing import Any

from kubesim import errors
from kubesim.resources import JOBS, NAMESPACES, NODES, PDBS, PODS, ResourceType
from kubesim.types import Obj
from kubesim.util import (
    clone,
    dns1123_label_errors,
    dns1123_subdomain_errors,
    new_uid,
    now_iso,
    random_suffix,
)

JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
CONTROLLER_UID_LABELS = ("batch.kubernetes.io/controller-uid", "controller-uid")


def assign_name(rt: ResourceType, obj: Obj) -> None:
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = f"{meta['generateName']}{random_suffix()}"


def _name_errors(rt: ResourceType, name: str) -> list[str]:
    if rt in (NAMESPACES,):
        return dns1123_label_errors(name)
    if rt is JOBS:
        # The job name becomes a label value, hence the 63-character limit.
        errs = dns1123_subdomain_errors(name)
        if len(name) > 63:
            errs.append("must be no more than 63 characters")
        return errs
    return dns1123_subdomain_errors(name)


def _container_defaults(container: Obj) -> None:
    image = str(container.get("image", ""))
    if "imagePullPolicy" not in container and image:
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container["imagePullPolicy"] = "Always" if latest else "IfNotPresent"
    container.setdefault("resources", {})
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def pod_spec_defaults(spec: Obj, restart_policy: str = "Always") -> None:
    spec.setdefault("restartPolicy", restart_policy)
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for container in spec.get("containers") or []:
        _container_defaults(container)
    for container in spec.get("initContainers") or []:
        _container_defaults(container)


def _pod_spec_errors(
    spec: Any, path: str, allowed_restart: tuple[str, ...]
) -> list[tuple[str, str]]:  # noqa: E501
    causes: list[tuple[str, str]] = []
    if not isinstance(spec, dict):
        return [(path, "Required value")]
    containers = spec.get("containers")
    if not containers:
        causes.append((f"{path}.containers", "Required value"))
    names: set[str] = set()
    for i, container in enumerate(containers or []):
        cpath = f"{path}.containers[{i}]"
        name = container.get("name")
        if not name:
            causes.append((f"{cpath}.name", "Required value"))
        else:
            for err in dns1123_label_errors(str(name)):
                causes.append((f"{cpath}.name", f'Invalid value: "{name}": {err}'))
            if name in names:
                causes.append((f"{cpath}.name", f'Duplicate value: "{name}"'))
            names.add(name)
        if not container.get("image"):
            causes.append((f"{cpath}.image", "Required value"))
        for j, port in enumerate(container.get("ports") or []):
            number = port.get("containerPort")
            if not isinstance(number, int) or not 0 < number < 65536:
                causes.append(
                    (
                        f"{cpath}.ports[{j}].containerPort",
                        f"Invalid value: {number}: must be between 1 and 65535, inclusive",
                    )
                )
        for j, env in enumerate(container.get("env") or []):
            if not env.get("name"):
                causes.append((f"{cpath}.env[{j}].name", "Required value"))
    policy = spec.get("restartPolicy")
    if policy is None and len(allowed_restart) < 3:
        causes.append(
            (
                f"{path}.restartPolicy",
                "Required value: valid values: " + ", ".join(f'"{p}"' for p in allowed_restart),
            )
        )
    elif policy is not None and policy not in allowed_restart:
        causes.append(
            (
                f"{path}.restartPolicy",
                f'Unsupported value: "{policy}": supported values: '
                + ", ".join(f'"{p}"' for p in allowed_restart),
            )
        )
    return causes


def _nonneg(spec: Obj, field: str, path: str, causes: list[tuple[str, str]]) -> None:
    value = spec.get(field)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        causes.append(
            (f"{path}.{field}", f"Invalid value: {value}: must be greater than or equal to 0")
        )  # noqa: E501


def prepare_create(rt: ResourceType, obj: Obj, namespace: str) -> Obj:
    """Validate and default a new object (mutating ``obj``), raising 422 on errors."""
    meta = obj.setdefault("metadata", {})
    assign_name(rt, obj)
    name = meta.get("name") or ""
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    else:
        for err in _name_errors(rt, name):
            causes.append(("metadata.name", f'Invalid value: "{name}": {err}'))
    for key in meta.get("labels") or {}:
        if not isinstance(meta["labels"][key], str):
            causes.append((f"metadata.labels[{key}]", "Invalid value: must be a string"))
    if rt is JOBS:
        causes += _job_errors(obj)
    elif rt is PODS:
        causes += _pod_spec_errors(obj.get("spec"), "spec", ("Always", "OnFailure", "Never"))
    elif rt is PDBS:
        spec = obj.get("spec") or {}
        if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
            causes.append(
                ("spec", "Invalid value: minAvailable and maxUnavailable cannot be both set")
            )  # noqa: E501
    if causes:
        raise errors.invalid(rt.kind, rt.group, name, causes)
    obj["apiVersion"] = rt.api_version
    obj["kind"] = rt.kind
    if rt.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["uid"] = new_uid()
    meta["creationTimestamp"] = now_iso()
    for transient in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(transient, None)
    if rt in (JOBS, PDBS, PODS):
        meta["generation"] = 1
    if rt is JOBS:
        _job_defaults(obj)
    elif rt is PODS:
        pod_spec_defaults(obj.setdefault("spec", {}))
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj["spec"])}
    elif rt is NAMESPACES:
        labels = meta.setdefault("labels", {})
        labels["kubernetes.io/metadata.name"] = name
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
    elif rt is PDBS:
        obj["status"] = {
            "currentHealthy": 0,
            "desiredHealthy": 0,
            "disruptionsAllowed": 0,
            "expectedPods": 0,
            "observedGeneration": 0,
        }
    elif rt is NODES:
        obj.setdefault("spec", {})
        obj.setdefault("status", {})
    return obj


def _job_errors(obj: Obj) -> list[tuple[str, str]]:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec.template.spec.containers", "Required value")]
    template = spec.get("template") or {}
    causes = _pod_spec_errors(template.get("spec"), "spec.template.spec", ("OnFailure", "Never"))
    for field in ("parallelism", "completions", "backoffLimit"):
        _nonneg(spec, field, "spec", causes)
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not isinstance(deadline, int) or deadline <= 0):
        causes.append(
            ("spec.activeDeadlineSeconds", f"Invalid value: {deadline}: must be greater than 0")
        )  # noqa: E501
    _nonneg(spec, "ttlSecondsAfterFinished", "spec", causes)
    return causes


def _job_defaults(job: Obj) -> None:
    meta = job["metadata"]
    spec = job["spec"]
    uid = meta["uid"]
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", None)
    if spec.get("manualSelector") is None:
        spec.pop("manualSelector", None)
    template = spec.setdefault("template", {})
    tmeta = template.setdefault("metadata", {})
    tlabels = tmeta.setdefault("labels", {})
    if not spec.get("manualSelector"):
        for label in CONTROLLER_UID_LABELS:
            tlabels[label] = uid
        for label in JOB_NAME_LABELS:
            tlabels[label] = meta["name"]
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    if not meta.get("labels"):
        # The Job strategy defaults the Job's labels to its pod template's labels.
        meta["labels"] = dict(tlabels)
    pod_spec_defaults(template.setdefault("spec", {}), restart_policy="Never")
    job["status"] = {}


def qos_class(spec: Obj) -> str:
    containers = spec.get("containers") or []
    any_set = False
    guaranteed = bool(containers)
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            any_set = True
        for key in ("cpu", "memory"):
            limit = lim.get(key)
            if limit is None or str(req.get(key, limit)) != str(limit):
                guaranteed = False
    if guaranteed:
        return "Guaranteed"
    return "Burstable" if any_set else "BestEffort"


IMMUTABLE_SPEC = {
    "jobs": ("selector", "template", "completionMode"),
    "pods": ("containers", "initContainers", "restartPolicy", "nodeSelector"),
}


def prepare_update(rt: ResourceType, old: Obj, new: Obj, status_only: bool) -> Obj:
    """Merge an update into the stored object's system fields and check immutables."""
    new = dict(clone(new))
    new["apiVersion"] = rt.api_version
    new["kind"] = rt.kind
    meta = new.setdefault("metadata", {})
    old_meta = old["metadata"]
    for field in (
        "uid",
        "creationTimestamp",
        "namespace",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "generateName",
    ):
        if field in old_meta:
            meta[field] = old_meta[field]
        else:
            meta.pop(field, None)
    meta["name"] = old_meta["name"]
    if status_only:
        updated: Obj = clone(old)
        updated["status"] = new.get("status", {})
        return updated
    if rt.subresources and "status" in rt.subresources and rt is not NAMESPACES:
        # With a status subresource, the main resource ignores status changes.
        if "status" in old:
            new["status"] = clone(old["status"])
        else:
            new.pop("status", None)
    causes: list[tuple[str, str]] = []
    old_spec, new_spec = old.get("spec") or {}, new.get("spec") or {}
    for field in IMMUTABLE_SPEC.get(rt.name, ()):
        if field == "template" and _template_equal(old_spec.get(field), new_spec.get(field)):
            continue
        if old_spec.get(field) != new_spec.get(field) and field in old_spec:
            causes.append((f"spec.{field}", "Invalid value: field is immutable"))
    if causes:
        raise errors.invalid(rt.kind, rt.group, old_meta["name"], causes)
    if "generation" in old_meta and old_spec != new_spec:
        meta["generation"] = int(old_meta["generation"]) + 1
    return new


def _template_equal(a: Any, b: Any) -> bool:
    return bool(a == b)
