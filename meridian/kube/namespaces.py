"""Each business unit's own namespace in each region: its name, its objects, ensuring it.

Task Jobs never run in the services' namespace (`settings.kubernetes_namespace`): a unit's
tasks run in `<prefix><unit>` (`meridian-ads`), created by the unit worker before its
first Job there (the ensure_namespace activity), with

- the Pod Security Admission labels for `restricted` (enforce, warn and audit, all at
  `latest`), so the API server itself refuses a pod that could escape its sandbox;
- a default-deny ingress NetworkPolicy, and beside it the one opening that resident tasks
  need: the unit worker (in the services' namespace) reaches their `status` port;
- the unit's quota as a ResourceQuota, when it has one Kubernetes can enforce.

Jobs created before namespaces existed stay in the services' namespace (LEGACY_NAMESPACE)
until they end: their namespace travels with them (TaskProgress, JobRef).
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import TYPE_CHECKING, Any

from meridian.kube.labels import LABEL_BUSINESS_UNIT, LABEL_MANAGED
from meridian.tenancy.quotas import QuotaSettings, UnitQuota
from meridian.tenancy.resource_quota import resource_quota

if TYPE_CHECKING:
    from meridian.kube.gateway import JobGateway

DEFAULT_PREFIX = "meridian-"
# Where every Job ran before units had namespaces (and the services' namespace).
LEGACY_NAMESPACE = "meridian"
NAME_MAX = 63  # a namespace name is a DNS-1123 label
HASH_LEN = 10
# Between a cut or changed slug and its hash. An unchanged unit name never contains it
# (see `unit_namespace`), so a hashed name can never equal an unhashed one.
HASH_SEPARATOR = "--"

PSA_LEVEL = "restricted"
PSA_LABELS = {
    f"pod-security.kubernetes.io/{mode}{suffix}": value
    for mode in ("enforce", "warn", "audit")
    for suffix, value in (("", PSA_LEVEL), ("-version", "latest"))
}
# Set by the API server on every namespace (Kubernetes 1.21+): what a NetworkPolicy's
# namespaceSelector can select the services' namespace by without labelling it ourselves.
LABEL_NAMESPACE_NAME = "kubernetes.io/metadata.name"
DENY_INGRESS_POLICY = "meridian-deny-ingress"
ALLOW_STATUS_POLICY = "meridian-allow-status-port"
# The name of the container port a resident task announces its status on (kube/jobs.py).
STATUS_PORT_NAME = "status"

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_DASHES = re.compile(r"-{2,}")


def unit_namespace(business_unit: str, prefix: str = DEFAULT_PREFIX) -> str:
    """`<prefix><unit>` when the unit is already a DNS-1123 label that fits; otherwise
    the slug (lower case, runs of other characters as one `-`), cut to fit, then `--`
    and a hash of the unit as given.

    Stable (a pure function of its inputs) and distinct for distinct units: an unhashed
    name is the unit itself; a hashed one carries `--`, which no unhashed name does, and
    a hash of the whole unit name. `prefix` must not contain `--` (settings check it).
    """
    slug = _DASHES.sub("-", _NOT_DNS.sub("-", business_unit.lower())).strip("-")
    plain = f"{prefix}{business_unit}"
    if slug == business_unit and len(plain) <= NAME_MAX:
        return plain
    digest = hashlib.sha256(business_unit.encode()).hexdigest()[:HASH_LEN]
    keep = NAME_MAX - len(prefix) - len(HASH_SEPARATOR) - HASH_LEN
    head = slug[:keep].rstrip("-") or "unit"
    return f"{prefix}{head}{HASH_SEPARATOR}{digest}"


def namespace_manifest(name: str, business_unit: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {**PSA_LABELS, **_owned(business_unit)},
        },
    }


def deny_ingress_policy(namespace: str, business_unit: str) -> dict[str, Any]:
    """No pod of the namespace accepts a connection, unless another policy allows it.

    A task is a batch job or a service of its own unit; nothing else in the cluster has
    a reason to call it, and other units' tasks must not be able to."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": DENY_INGRESS_POLICY,
            "namespace": namespace,
            "labels": _owned(business_unit),
        },
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def allow_status_policy(
    namespace: str, business_unit: str, services_namespace: str
) -> dict[str, Any]:
    """The unit worker's resident channel connects to each resident task's WebSocket
    status port; without this the default deny would cut it, and every resident task
    would look silent and be moved. Only from the services' namespace, only TCP, only
    the port named `status`, and only to Meridian's own task pods."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": ALLOW_STATUS_POLICY,
            "namespace": namespace,
            "labels": _owned(business_unit),
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_MANAGED: "true"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {LABEL_NAMESPACE_NAME: services_namespace}
                            }
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": STATUS_PORT_NAME}],
                }
            ],
        },
    }


def unit_manifests(
    business_unit: str,
    *,
    namespace: str,
    services_namespace: str,
    quota: UnitQuota,
) -> list[dict[str, Any]]:
    """Everything a unit's namespace holds before its first Job, in creation order (the
    namespace first: the others live in it)."""
    manifests = [
        namespace_manifest(namespace, business_unit),
        deny_ingress_policy(namespace, business_unit),
        allow_status_policy(namespace, business_unit, services_namespace),
    ]
    quota_manifest = resource_quota(business_unit, quota, namespace=namespace)
    if quota_manifest is not None:
        manifests.append(quota_manifest)
    return manifests


def _owned(business_unit: str) -> dict[str, str]:
    return {LABEL_MANAGED: "true", LABEL_BUSINESS_UNIT: business_unit}


class UnitNamespaces:
    """Names units' namespaces and makes sure each exists, once per region per process.

    Sync, like the gateway: it runs in the Job activities' threads (ensure_namespace,
    which the task workflow calls before a create, with a budget of its own). Two calls
    for one unit wait for one ensure; other units and regions do not wait behind it (a
    dead region's timeouts stay its own).
    """

    def __init__(
        self,
        gateway: JobGateway,
        *,
        prefix: str = DEFAULT_PREFIX,
        services_namespace: str = LEGACY_NAMESPACE,
        quotas: QuotaSettings | None = None,
    ):
        self.gateway = gateway
        self.prefix = prefix
        self.services_namespace = services_namespace
        self.quotas = quotas or QuotaSettings()
        self._ensured: set[tuple[str, str]] = set()
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._guard = threading.Lock()

    def name_for(self, business_unit: str) -> str:
        return unit_namespace(business_unit, self.prefix)

    def manifests(self, business_unit: str) -> list[dict[str, Any]]:
        return unit_manifests(
            business_unit,
            namespace=self.name_for(business_unit),
            services_namespace=self.services_namespace,
            quota=self.quotas.for_unit(business_unit),
        )

    def ready(self, region: str, business_unit: str) -> str | None:
        """The unit's namespace in `region` if this process has prepared it, else None;
        sends no request."""
        name = self.name_for(business_unit)
        return name if (region, name) in self._ensured else None

    def ensure(self, region: str, business_unit: str, *, again: bool = False) -> str:
        """The unit's namespace in `region`, created (or brought up to date) on first use.

        `again`: it was found missing (deleted since): ensure it even if done before."""
        name = self.name_for(business_unit)
        key = (region, name)
        if key in self._ensured and not again:
            return name
        with self._lock_for(key):
            if again:
                self._ensured.discard(key)
            if key not in self._ensured:
                # Two round trips at most, whatever the region's latency: the namespace,
                # then everything that lives in it at once. Each is one server-side
                # apply, whether the object is absent, stale or already right.
                namespace, *inside = self.manifests(business_unit)
                self.gateway.apply(region, namespace)
                self.gateway.apply_together(region, inside)
                self._ensured.add(key)
        return name

    def _lock_for(self, key: tuple[str, str]) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())
