"""Pod Security admission, as k8s.io/pod-security-admission enforces it.

A namespace labelled `pod-security.kubernetes.io/enforce: baseline|restricted` refuses a
pod that breaks the level with 403 Forbidden and every violation, worded and ordered as
the real checks word them (by check id), so that clients and tests see what a real API
server answers. Covered: the checks a task pod can break through its spec (host
namespaces, privileged, capabilities, hostPath and other restricted volume types, host
ports, seccomp, privilege escalation, runAsNonRoot, runAsUser). Not covered: AppArmor,
SELinux, procMount, sysctls and Windows host processes, which nothing here sets; the
`audit` and `warn` modes; exemptions; and pod updates (a pod's spec is immutable anyway).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from kubesim import errors
from kubesim.types import Obj

ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
ENFORCE_VERSION_LABEL = "pod-security.kubernetes.io/enforce-version"
BASELINE, RESTRICTED = "baseline", "restricted"
PRIVILEGED = "privileged"

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_VOLUME_TYPES_ALLOWED = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
SECCOMP_ALLOWED = ("RuntimeDefault", "Localhost")

# (reason, detail): detail may be "" when the reason says it all.
Violation = tuple[str, str]
Check = Callable[[Obj], Violation | None]


def enforced_level(namespace: Obj | None) -> tuple[str, str] | None:
    """(level, version) a namespace enforces, or None (privileged, or no label).

    A value that is not a level enforces restricted, as the real admission does: a typo
    must not open the namespace."""
    labels = ((namespace or {}).get("metadata") or {}).get("labels") or {}
    level = labels.get(ENFORCE_LABEL)
    if level is None or level == PRIVILEGED:
        return None
    if level not in (BASELINE, RESTRICTED):
        level = RESTRICTED
    return level, str(labels.get(ENFORCE_VERSION_LABEL) or "latest")


def violations(spec: Obj, level: str) -> list[Violation]:
    """Every check of `level` the pod spec fails, in check-id order."""
    checks = dict(BASELINE_CHECKS)
    if level == RESTRICTED:
        checks.update(RESTRICTED_CHECKS)
        # The restricted versions replace their baseline namesakes.
        del checks["capabilities_baseline"], checks["seccompProfile_baseline"]
    found = (checks[check_id](spec) for check_id in sorted(checks))
    return [v for v in found if v is not None]


def refusal(namespace: Obj | None, spec: Obj) -> str | None:
    """`violates PodSecurity "restricted:latest": ...` when the namespace refuses a pod
    of this spec; None when it admits it."""
    enforced = enforced_level(namespace)
    if enforced is None:
        return None
    level, version = enforced
    found = violations(spec or {}, level)
    if not found:
        return None
    listed = ", ".join(f"{reason} ({detail})" if detail else reason for reason, detail in found)
    return f'violates PodSecurity "{level}:{version}": {listed}'


def forbid(namespace: Obj | None, resource: str, group: str, name: str, spec: Obj) -> None:
    """Raise 403 Forbidden when the namespace's Pod Security level refuses `spec`."""
    why = refusal(namespace, spec)
    if why is not None:
        raise errors.forbidden(resource, group, name, why)


# ---- helpers, as the upstream checks phrase lists ------------------------------------------
def _plural(singular: str, plural: str, count: int) -> str:
    return singular if count == 1 else plural


def _quoted(items: list[str]) -> str:
    return ", ".join(f'"{item}"' for item in items)


def _containers_phrase(names: list[str]) -> str:
    return f"{_plural('container', 'containers', len(names))} {_quoted(names)}"


def _containers(spec: Obj) -> Iterator[Obj]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                yield container


def _context(obj: Obj) -> Obj:
    value = obj.get("securityContext")
    return value if isinstance(value, dict) else {}


def _name(container: Obj) -> str:
    return str(container.get("name", ""))


def _dedup_sorted(values: list[str]) -> list[str]:
    return sorted(set(values))


# ---- baseline ------------------------------------------------------------------------------
def _host_namespaces(spec: Obj) -> Violation | None:
    used = [f"{field}=true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    return ("host namespaces", ", ".join(used)) if used else None


def _privileged(spec: Obj) -> Violation | None:
    bad = [_name(c) for c in _containers(spec) if _context(c).get("privileged") is True]
    if not bad:
        return None
    return "privileged", f"{_containers_phrase(bad)} must not set securityContext.privileged=true"


def _added_capabilities(container: Obj) -> list[str]:
    caps = _context(container).get("capabilities")
    return [str(c) for c in ((caps or {}).get("add") or [])] if isinstance(caps, dict) else []


def _capabilities_baseline(spec: Obj) -> Violation | None:
    bad: list[str] = []
    forbidden: list[str] = []
    for container in _containers(spec):
        extra = [c for c in _added_capabilities(container) if c not in BASELINE_CAPABILITIES]
        if extra:
            bad.append(_name(container))
            forbidden += extra
    if not bad:
        return None
    detail = (
        f"{_containers_phrase(bad)} must not include "
        f"{_quoted(_dedup_sorted(forbidden))} in securityContext.capabilities.add"
    )
    return "non-default capabilities", detail


def _volume_type(volume: Obj) -> str:
    return next((str(k) for k in volume if k != "name"), "unknown")


def _host_path_volumes(spec: Obj) -> Violation | None:
    bad = [str(v.get("name", "")) for v in spec.get("volumes") or [] if "hostPath" in v]
    if not bad:
        return None
    return "hostPath volumes", f"{_plural('volume', 'volumes', len(bad))} {_quoted(bad)}"


def _host_ports(spec: Obj) -> Violation | None:
    bad: list[str] = []
    ports: list[str] = []
    for container in _containers(spec):
        used = [str(p.get("hostPort")) for p in container.get("ports") or [] if p.get("hostPort")]
        if used:
            bad.append(_name(container))
            ports += used
    if not bad:
        return None
    ports = _dedup_sorted(ports)
    detail = (
        f"{_containers_phrase(bad)} {_plural('uses', 'use', len(bad))} "
        f"{_plural('hostPort', 'hostPorts', len(ports))} {', '.join(ports)}"
    )
    return "hostPort", detail


def _seccomp_type(obj: Obj) -> Any:
    profile = _context(obj).get("seccompProfile")
    return profile.get("type") if isinstance(profile, dict) else None


def _seccomp_baseline(spec: Obj) -> Violation | None:
    setters: list[str] = []
    if _seccomp_type(spec) == "Unconfined":
        setters.append('pod must not set securityContext.seccompProfile.type to "Unconfined"')
    bad = [_name(c) for c in _containers(spec) if _seccomp_type(c) == "Unconfined"]
    if bad:
        setters.append(
            f"{_containers_phrase(bad)} must not set securityContext.seccompProfile.type "
            'to "Unconfined"'
        )
    return ("seccompProfile", "; ".join(setters)) if setters else None


BASELINE_CHECKS: dict[str, Check] = {
    "capabilities_baseline": _capabilities_baseline,
    "hostNamespaces": _host_namespaces,
    "hostPathVolumes": _host_path_volumes,
    "hostPorts": _host_ports,
    "privileged": _privileged,
    "seccompProfile_baseline": _seccomp_baseline,
}


# ---- restricted ----------------------------------------------------------------------------
def _allow_privilege_escalation(spec: Obj) -> Violation | None:
    bad = [
        _name(c)
        for c in _containers(spec)
        if _context(c).get("allowPrivilegeEscalation") is not False
    ]
    if not bad:
        return None
    detail = f"{_containers_phrase(bad)} must set securityContext.allowPrivilegeEscalation=false"
    return "allowPrivilegeEscalation != false", detail


def _capabilities_restricted(spec: Obj) -> Violation | None:
    missing_drop: list[str] = []
    adding: list[str] = []
    forbidden: list[str] = []
    for container in _containers(spec):
        caps = _context(container).get("capabilities")
        if not isinstance(caps, dict):
            missing_drop.append(_name(container))
            continue
        if "ALL" not in (caps.get("drop") or []):
            missing_drop.append(_name(container))
        extra = [c for c in _added_capabilities(container) if c != "NET_BIND_SERVICE"]
        if extra:
            adding.append(_name(container))
            forbidden += extra
    details: list[str] = []
    if missing_drop:
        details.append(
            f'{_containers_phrase(missing_drop)} must set securityContext.capabilities.drop=["ALL"]'
        )
    if adding:
        details.append(
            f"{_containers_phrase(adding)} must not include "
            f"{_quoted(_dedup_sorted(forbidden))} in securityContext.capabilities.add"
        )
    return ("unrestricted capabilities", "; ".join(details)) if details else None


def _restricted_volumes(spec: Obj) -> Violation | None:
    bad: list[str] = []
    kinds: list[str] = []
    for volume in spec.get("volumes") or []:
        kind = _volume_type(volume)
        if kind not in RESTRICTED_VOLUME_TYPES_ALLOWED:
            bad.append(str(volume.get("name", "")))
            kinds.append(kind)
    if not bad:
        return None
    kinds = _dedup_sorted(kinds)
    detail = (
        f"{_plural('volume', 'volumes', len(bad))} {_quoted(bad)} "
        f"{_plural('uses', 'use', len(bad))} "
        f"{_plural('restricted volume type', 'restricted volume types', len(kinds))} "
        f"{_quoted(kinds)}"
    )
    return "restricted volume types", detail


def _run_as_non_root(spec: Obj) -> Violation | None:
    setters: list[str] = []
    pod_value = _context(spec).get("runAsNonRoot")
    if pod_value is False:
        setters.append("pod")
    explicit: list[str] = []
    implicit: list[str] = []
    for container in _containers(spec):
        value = _context(container).get("runAsNonRoot")
        if value is False:
            explicit.append(_name(container))
        elif value is None and pod_value is not True:
            implicit.append(_name(container))
    if explicit:
        setters.append(_containers_phrase(explicit))
    if setters:
        detail = f"{' and '.join(setters)} must not set securityContext.runAsNonRoot=false"
        return "runAsNonRoot != true", detail
    if implicit:
        detail = f"pod or {_containers_phrase(implicit)} must set securityContext.runAsNonRoot=true"
        return "runAsNonRoot != true", detail
    return None


def _run_as_user(spec: Obj) -> Violation | None:
    setters = ["pod"] if _context(spec).get("runAsUser") == 0 else []
    bad = [_name(c) for c in _containers(spec) if _context(c).get("runAsUser") == 0]
    if bad:
        setters.append(_containers_phrase(bad))
    if not setters:
        return None
    return "runAsUser=0", f"{' and '.join(setters)} must not set runAsUser=0"


def _seccomp_restricted(spec: Obj) -> Violation | None:
    setters: list[str] = []
    pod_type = _seccomp_type(spec)
    if pod_type is not None and pod_type not in SECCOMP_ALLOWED:
        setters.append(f'pod must not set securityContext.seccompProfile.type to "{pod_type}"')
    explicit: list[str] = []
    values: list[str] = []
    implicit: list[str] = []
    for container in _containers(spec):
        kind = _seccomp_type(container)
        if kind is not None and kind not in SECCOMP_ALLOWED:
            explicit.append(_name(container))
            values.append(str(kind))
        elif kind is None and pod_type not in SECCOMP_ALLOWED:
            implicit.append(_name(container))
    if explicit:
        setters.append(
            f"{_containers_phrase(explicit)} must not set securityContext.seccompProfile.type "
            f"to {_quoted(values)}"
        )
    if setters:
        return "seccompProfile", " and ".join(setters)
    if implicit:
        detail = (
            f"pod or {_containers_phrase(implicit)} must set securityContext.seccompProfile.type "
            'to "RuntimeDefault" or "Localhost"'
        )
        return "seccompProfile", detail
    return None


RESTRICTED_CHECKS: dict[str, Check] = {
    "allowPrivilegeEscalation": _allow_privilege_escalation,
    "capabilities_restricted": _capabilities_restricted,
    "restrictedVolumes": _restricted_volumes,
    "runAsNonRoot": _run_as_non_root,
    "runAsUser": _run_as_user,
    "seccompProfile_restricted": _seccomp_restricted,
}
