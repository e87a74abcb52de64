"""The resource types kubesim serves, with the discovery facts kubectl needs."""

from __future__ import annotations

from dataclasses import dataclass, field

VERBS_ALL = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True, slots=True)
class ResourceType:
    name: str  # plural, as in the URL
    kind: str
    group: str
    version: str
    namespaced: bool
    singular: str
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: list[str] = field(default_factory=lambda: list(VERBS_ALL))

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"


NAMESPACES = ResourceType(
    "namespaces",
    "Namespace",
    "",
    "v1",
    False,
    "namespace",
    ("ns",),
    (),
    ("status",),
    ["create", "delete", "get", "list", "patch", "update", "watch"],
)
PODS = ResourceType(
    "pods", "Pod", "", "v1", True, "pod", ("po",), ("all",), ("status", "log", "eviction")
)
NODES = ResourceType("nodes", "Node", "", "v1", False, "node", ("no",), (), ("status",))
EVENTS = ResourceType("events", "Event", "", "v1", True, "event", ("ev",))
JOBS = ResourceType("jobs", "Job", "batch", "v1", True, "job", (), ("all",), ("status",))
PDBS = ResourceType(
    "poddisruptionbudgets",
    "PodDisruptionBudget",
    "policy",
    "v1",
    True,
    "poddisruptionbudget",
    ("pdb",),
    (),
    ("status",),
)

# Stored and served only: kubesim neither enforces a NetworkPolicy (it has no network
# between pods) nor a ResourceQuota (Meridian's own admission counts quotas).
NETWORK_POLICIES = ResourceType(
    "networkpolicies",
    "NetworkPolicy",
    "networking.k8s.io",
    "v1",
    True,
    "networkpolicy",
    ("netpol",),
)
RESOURCE_QUOTAS = ResourceType(
    "resourcequotas", "ResourceQuota", "", "v1", True, "resourcequota", ("quota",), (), ("status",)
)

ALL: list[ResourceType] = [NAMESPACES, PODS, NODES, EVENTS, JOBS, PDBS]
ALL.append(NETWORK_POLICIES)
ALL.append(RESOURCE_QUOTAS)
BY_GROUP_VERSION: dict[tuple[str, str], dict[str, ResourceType]] = {}
for _rt in ALL:
    BY_GROUP_VERSION.setdefault((_rt.group, _rt.version), {})[_rt.name] = _rt


def lookup(group: str, version: str, name: str) -> ResourceType | None:
    return BY_GROUP_VERSION.get((group, version), {}).get(name)
