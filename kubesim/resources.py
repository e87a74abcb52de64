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

# Stored and served, nothing more (no controller acts on them): what `kubectl apply` of
# Meridian's own manifests creates (infra/k8s), so that a deployment can be applied to a
# simulated region as to a real one.
SERVICE_ACCOUNTS = ResourceType(
    "serviceaccounts", "ServiceAccount", "", "v1", True, "serviceaccount", ("sa",)
)
CONFIG_MAPS = ResourceType("configmaps", "ConfigMap", "", "v1", True, "configmap", ("cm",))
SECRETS = ResourceType("secrets", "Secret", "", "v1", True, "secret")
SERVICES = ResourceType("services", "Service", "", "v1", True, "service", ("svc",), ("all",))
DEPLOYMENTS = ResourceType(
    "deployments",
    "Deployment",
    "apps",
    "v1",
    True,
    "deployment",
    ("deploy",),
    ("all",),
    ("status",),
)
RBAC = "rbac.authorization.k8s.io"
ROLES = ResourceType("roles", "Role", RBAC, "v1", True, "role")
ROLE_BINDINGS = ResourceType("rolebindings", "RoleBinding", RBAC, "v1", True, "rolebinding")
CLUSTER_ROLES = ResourceType("clusterroles", "ClusterRole", RBAC, "v1", False, "clusterrole")
CLUSTER_ROLE_BINDINGS = ResourceType(
    "clusterrolebindings", "ClusterRoleBinding", RBAC, "v1", False, "clusterrolebinding"
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

STORED_ONLY = [
    SERVICE_ACCOUNTS,
    CONFIG_MAPS,
    SECRETS,
    SERVICES,
    DEPLOYMENTS,
    ROLES,
    ROLE_BINDINGS,
    CLUSTER_ROLES,
    CLUSTER_ROLE_BINDINGS,
    NETWORK_POLICIES,
    RESOURCE_QUOTAS,
]

ALL: list[ResourceType] = [NAMESPACES, PODS, NODES, EVENTS, JOBS, PDBS, *STORED_ONLY]
BY_GROUP_VERSION: dict[tuple[str, str], dict[str, ResourceType]] = {}
for _rt in ALL:
    BY_GROUP_VERSION.setdefault((_rt.group, _rt.version), {})[_rt.name] = _rt


def lookup(group: str, version: str, name: str) -> ResourceType | None:
    return BY_GROUP_VERSION.get((group, version), {}).get(name)
