"""The AWS, Azure and GCP Terraform modules, checked offline.

`terraform validate` needs provider binaries these machines cannot download, so the
modules are parsed with python-hcl2 and checked against the fleet contract (issue 13):
the common inputs and outputs, the cluster at the pinned version, one autoscaled pool per
fleet pool with Meridian's labels, the serverless capacity, and a unit-worker identity
that grants exactly the cloud calls the node-pool adapter in meridian/nodepools/ makes.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "infra" / "terraform" / "modules"
NODEPOOLS = ROOT / "meridian" / "nodepools"

# module directory -> (provider local name, registry source, major version)
PROVIDERS = {
    "aws-eks": ("aws", "hashicorp/aws", 5),
    "azure-aks": ("azurerm", "hashicorp/azurerm", 4),
    "gcp-gke": ("google", "hashicorp/google", 6),
}
WEST = sorted(PROVIDERS)

COMMON_VARIABLE_TYPES = {
    "name": "string",
    "region": "string",
    "kubernetes_version": "string",
    "node_pools": (
        "list(object({name=string,machine_type=string,min_size=number,"
        "desired_size=number,max_size=number}))"
    ),
    "network": (
        "object({vpc_id=optional(string),subnet_ids=optional(list(string),[]),"
        'cidr=optional(string,"10.0.0.0/16")})'
    ),
    "serverless": "object({enabled=optional(bool,true)})",
    "task_namespaces": "list(string)",
    "meridian_namespace": "string",
    "tags": "map(string)",
}
COMMON_DEFAULTS = {
    "network": {},
    "serverless": {},
    "task_namespaces": ["meridian-tasks"],
    "meridian_namespace": "meridian",
    "tags": {},
}
COMMON_OUTPUTS = {
    "cluster_name",
    "cluster_endpoint",
    "cluster_ca_certificate",
    "node_pool_ids",
    "unit_worker_identity",
    "serverless",
}
UNIT_SUBJECT = "system:serviceaccount:${var.meridian_namespace}:meridian-unit"
# A pool's Kubernetes labels: the region label plus its own pool name.
POOL_LABELS = 'merge(local.region_label,{"meridian.io/node-pool"=each.key})'


# ----------------------------------------------------------------------------- parsing
def _loads(text: str) -> dict[str, Any]:
    """Parse HCL into the classic python-hcl2 shape (plain strings, blocks as lists)."""
    try:
        from hcl2.utils import SerializationOptions
    except ImportError:  # python-hcl2 < 7 has no options and already uses this shape
        return dict(hcl2.loads(text))
    options = SerializationOptions(
        with_comments=False, explicit_blocks=False, strip_string_quotes=True
    )
    return dict(hcl2.loads(text, serialization_options=options))


@dataclass
class Module:
    resources: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    data: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        assert (kind, name) in self.resources, f"missing resource {kind}.{name}"
        return self.resources[(kind, name)]


def _add(module: Module, parsed: dict[str, Any]) -> None:
    for block in parsed.get("resource", []):
        for kind, named in block.items():
            for name, body in named.items():
                module.resources[(kind, name)] = body
    for block in parsed.get("data", []):
        for kind, named in block.items():
            for name, body in named.items():
                module.data[(kind, name)] = body
    for block in parsed.get("variable", []):
        module.variables.update(block)
    for block in parsed.get("output", []):
        module.outputs.update(block)
    for block in parsed.get("locals", []):
        module.locals.update(block)
    module.terraform.extend(parsed.get("terraform", []))


@functools.cache
def load(name: str) -> Module:
    """Every .tf file of a module (not its examples), merged."""
    module = Module()
    for path in sorted((MODULES / name).glob("*.tf")):
        parsed = _loads(path.read_text())
        module.files[path.name] = parsed
        _add(module, parsed)
    return module


def compact(expr: Any) -> str:
    """An HCL expression as a whitespace-free string, without the ${ } wrapper."""
    text = str(expr)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return re.sub(r"\s+", "", text)


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {name} block"
    inner: dict[str, Any] = blocks[0]
    return inner


def dynamic(body: dict[str, Any], name: str) -> dict[str, Any]:
    for entry in body.get("dynamic", []):
        if name in entry:
            found: dict[str, Any] = entry[name]
            return found
    raise AssertionError(f"expected a dynamic {name} block")


def ignored_changes(body: dict[str, Any]) -> set[str]:
    return {compact(item) for item in block(body, "lifecycle").get("ignore_changes", [])}


def quoted_actions(expr: Any) -> set[str]:
    """The "service:Action" strings of an IAM policy expression."""
    return set(re.findall(r'"([a-z0-9-]+:[A-Za-z*]+)"', str(expr)))


def camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


# ------------------------------------------------------------------- common contract
@pytest.mark.parametrize("name", WEST)
def test_every_tf_file_parses_and_the_module_has_the_contract_files(name: str) -> None:
    directory = MODULES / name
    for required in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (directory / required).is_file(), f"{name}/{required} is missing"
    assert set(load(name).files) == {p.name for p in directory.glob("*.tf")}
    example = _loads((directory / "examples" / "basic" / "main.tf").read_text())
    calls = [body for blk in example["module"] for body in blk.values()]
    assert calls and all(call["source"] == "../.." for call in calls)
    for call in calls:
        # An example a reader copies must set every input without a default.
        required = {v for v, body in load(name).variables.items() if "default" not in body}
        assert required <= set(call), f"{name} example misses {required - set(call)}"


@pytest.mark.parametrize("name", WEST)
def test_versions_pin_terraform_and_the_provider(name: str) -> None:
    local, source, major = PROVIDERS[name]
    (terraform,) = load(name).terraform
    assert terraform["required_version"] == ">= 1.6"
    (providers,) = terraform["required_providers"]
    assert providers[local]["source"] == source
    version = providers[local]["version"]
    match = re.fullmatch(r"~> (\d+)\.(\d+)", version)
    assert match, f"{name}: {source} version {version!r} is not pinned as '~> X.Y'"
    assert int(match.group(1)) == major


@pytest.mark.parametrize("name", WEST)
def test_common_inputs_have_the_contract_names_types_and_defaults(name: str) -> None:
    variables = load(name).variables
    for var, expected_type in COMMON_VARIABLE_TYPES.items():
        assert var in variables, f"{name} lacks variable {var}"
        assert compact(variables[var]["type"]) == expected_type, f"{name}.{var} type"
    for var, default in COMMON_DEFAULTS.items():
        assert variables[var]["default"] == default, f"{name}.{var} default"
    for var in ("name", "region", "kubernetes_version", "node_pools"):
        assert "default" not in variables[var], f"{name}.{var} must be required"


@pytest.mark.parametrize("name", WEST)
def test_every_input_is_typed_and_described(name: str) -> None:
    for var, body in load(name).variables.items():
        assert body.get("type"), f"{name}.{var} has no type"
        assert str(body.get("description", "")).strip(), f"{name}.{var} has no description"


@pytest.mark.parametrize("name", WEST)
def test_pool_bounds_and_version_are_validated(name: str) -> None:
    variables = load(name).variables
    pool_rules = " ".join(compact(v["condition"]) for v in variables["node_pools"]["validation"])
    assert "p.min_size<=p.desired_size" in pool_rules
    assert "p.desired_size<=p.max_size" in pool_rules
    assert "distinct(" in pool_rules  # unique pool names
    version_rules = [compact(v["condition"]) for v in variables["kubernetes_version"]["validation"]]
    assert any("regex(" in rule for rule in version_rules)


@pytest.mark.parametrize("name", WEST)
def test_common_outputs_exist_and_are_described(name: str) -> None:
    outputs = load(name).outputs
    assert COMMON_OUTPUTS <= set(outputs), f"{name} lacks {COMMON_OUTPUTS - set(outputs)}"
    for out in COMMON_OUTPUTS:
        assert str(outputs[out].get("description", "")).strip(), f"{name}.{out} undescribed"
    # The adapters look pools up by the fleet's pool names.
    assert compact(outputs["node_pool_ids"]["value"]).startswith("{fornam")


@pytest.mark.parametrize("name", WEST)
def test_unit_worker_identity_output_says_how_to_bind_the_service_account(name: str) -> None:
    identity = load(name).outputs["unit_worker_identity"]["value"]
    assert isinstance(identity, dict), f"{name} unit_worker_identity is not an object"
    assert {"kind", "service_account", "service_account_annotations", "pod_labels"} <= set(identity)
    assert identity["service_account"] == "${var.meridian_namespace}/meridian-unit"
    assert identity["service_account_annotations"], f"{name}: nothing to annotate with"


@pytest.mark.parametrize("name", WEST)
def test_region_label_is_the_meridian_region_name(name: str) -> None:
    assert load(name).locals["region_label"] == {"meridian.io/region": "${var.name}"}


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")
def test_terraform_fmt_is_clean() -> None:
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", *(str(MODULES / n) for n in WEST)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout or result.stderr


# ------------------------------------------------------------------------------- AWS
def test_eks_cluster_runs_the_pinned_version_with_logs_and_encrypted_secrets() -> None:
    cluster = load("aws-eks").resource("aws_eks_cluster", "this")
    assert cluster["version"] == "${var.kubernetes_version}"
    assert {"api", "audit", "authenticator"} <= set(cluster["enabled_cluster_log_types"])
    encryption = block(cluster, "encryption_config")
    assert encryption["resources"] == ["secrets"]
    assert block(encryption, "provider")["key_arn"] == "${aws_kms_key.this.arn}"
    assert block(cluster, "vpc_config")["endpoint_private_access"] is True


def test_eks_node_group_per_pool_with_bounds_labels_and_desired_size_left_to_meridian() -> None:
    group = load("aws-eks").resource("aws_eks_node_group", "this")
    assert group["for_each"] == "${local.pools}"
    assert group["node_group_name"] == "${each.key}"  # the adapter's default nodegroup id
    scaling = block(group, "scaling_config")
    assert scaling == {
        "min_size": "${each.value.min_size}",
        "desired_size": "${each.value.desired_size}",
        "max_size": "${each.value.max_size}",
    }
    assert compact(group["labels"]) == POOL_LABELS
    assert "meridian.io/node-pool" in group["tags"]
    assert "scaling_config[0].desired_size" in ignored_changes(group)


def test_eks_fargate_profile_selects_labelled_pods_in_every_task_namespace() -> None:
    module = load("aws-eks")
    profile = module.resource("aws_eks_fargate_profile", "tasks")
    assert profile["pod_execution_role_arn"] == "${aws_iam_role.fargate[0].arn}"
    selector = dynamic(profile, "selector")
    assert selector["for_each"] == "${toset(var.task_namespaces)}"
    assert selector["content"] == [
        {"namespace": "${selector.value}", "labels": "${local.serverless_label}"}
    ]
    assert module.locals["serverless_label"] == {"meridian.io/capacity": "serverless"}
    role = module.resource("aws_iam_role", "fargate")
    assert "eks-fargate-pods.amazonaws.com" in role["assume_role_policy"]


def eks_adapter_actions() -> set[str]:
    """IAM actions for every AWS API call meridian/nodepools/eks.py makes."""
    source = (NODEPOOLS / "eks.py").read_text()
    calls = set(re.findall(r"self\.(eks|autoscaling|ec2)\.(?!get_paginator)(\w+)\(", source))
    calls |= set(re.findall(r"self\.(autoscaling|ec2)\.get_paginator\(\"(\w+)\"\)", source))
    assert calls, "no AWS calls found in the EKS adapter"
    return {f"{service}:{camel(call)}" for service, call in calls}


def test_eks_unit_role_is_irsa_for_meridian_unit_and_allows_exactly_the_adapter_calls() -> None:
    module = load("aws-eks")
    assert module.locals["unit_sa"] == UNIT_SUBJECT
    module.resource("aws_iam_openid_connect_provider", "this")
    trust = compact(module.resource("aws_iam_role", "unit_worker")["assume_role_policy"])
    assert '"sts:AssumeRoleWithWebIdentity"' in trust
    assert "aws_iam_openid_connect_provider.this.arn" in trust
    assert '"${local.oidc_issuer}:sub"=local.unit_sa' in trust
    policy = module.resource("aws_iam_role_policy", "unit_worker")
    assert policy["role"] == "${aws_iam_role.unit_worker.id}"
    assert quoted_actions(policy["policy"]) == eks_adapter_actions()
    text = compact(policy["policy"])
    # Node-group calls are confined to this module's groups, removal to its ASGs.
    assert "Resource=[fornginaws_eks_node_group.this:ng.arn]" in text
    assert '"aws:ResourceTag/eks:cluster-name"=aws_eks_cluster.this.name' in text


# ----------------------------------------------------------------------------- Azure
def test_aks_cluster_runs_the_pinned_version_with_workload_identity_and_virtual_nodes() -> None:
    module = load("azure-aks")
    cluster = module.resource("azurerm_kubernetes_cluster", "this")
    assert cluster["kubernetes_version"] == "${var.kubernetes_version}"
    assert cluster["oidc_issuer_enabled"] is True
    assert cluster["workload_identity_enabled"] is True
    assert cluster["local_account_disabled"] is True
    aci = dynamic(cluster, "aci_connector_linux")
    assert aci["for_each"] == "${var.serverless.enabled ? [1] : []}"
    assert aci["content"] == [{"subnet_name": "${local.aci_subnet_name}"}]
    subnet = module.resource("azurerm_subnet", "virtual_nodes")
    delegation = block(block(subnet, "delegation"), "service_delegation")
    assert delegation["name"] == "Microsoft.ContainerInstance/containerGroups"
    module.resource("azurerm_role_assignment", "aci_connector_network")
    module.resource("azurerm_monitor_diagnostic_setting", "cluster")


def test_aks_agent_pool_per_pool_autoscaled_within_bounds_and_labelled() -> None:
    pool = load("azure-aks").resource("azurerm_kubernetes_cluster_node_pool", "this")
    assert pool["for_each"] == "${local.pools}"
    assert pool["name"] == "${each.key}"  # the adapter's default agent_pool
    assert pool["mode"] == "User"
    assert pool["auto_scaling_enabled"] is True
    assert pool["min_count"] == "${each.value.min_size}"
    assert pool["node_count"] == "${each.value.desired_size}"
    assert pool["max_count"] == "${each.value.max_size}"
    assert pool["orchestrator_version"] == "${var.kubernetes_version}"
    assert compact(pool["node_labels"]) == POOL_LABELS
    assert "node_count" in ignored_changes(pool)


AKS_CALL_ACTIONS = {
    ("agent_pools", "get"): "agentPools/read",
    ("agent_pools", "begin_create_or_update"): "agentPools/write",
    ("machines", "list"): "agentPools/machines/read",
    ("agent_pools", "begin_delete_machines"): "agentPools/deleteMachines/action",
}


def test_aks_unit_identity_is_federated_and_may_only_manage_its_fleet_agent_pools() -> None:
    module = load("azure-aks")
    module.resource("azurerm_user_assigned_identity", "unit_worker")
    federated = module.resource("azurerm_federated_identity_credential", "unit_worker")
    assert federated["subject"] == "${local.unit_subject}"
    assert module.locals["unit_subject"] == UNIT_SUBJECT
    assert federated["issuer"] == "${azurerm_kubernetes_cluster.this.oidc_issuer_url}"
    assert federated["audience"] == ["api://AzureADTokenExchange"]

    calls = set(
        re.findall(
            r"self\.client\.(agent_pools|machines)\.(\w+)\(",
            (NODEPOOLS / "aks.py").read_text(),
        )
    )
    unknown = calls - set(AKS_CALL_ACTIONS)
    assert not unknown, f"the AKS adapter makes calls this test cannot map: {unknown}"
    prefix = "Microsoft.ContainerService/managedClusters/"
    needed = {prefix + AKS_CALL_ACTIONS[call] for call in calls}
    role = module.resource("azurerm_role_definition", "node_pools")
    assert set(block(role, "permissions")["actions"]) == needed

    assignment = module.resource("azurerm_role_assignment", "unit_worker")
    assert assignment["for_each"] == "${azurerm_kubernetes_cluster_node_pool.this}"
    assert assignment["scope"] == "${each.value.id}"  # an agent pool, not the cluster
    assert assignment["principal_id"] == (
        "${azurerm_user_assigned_identity.unit_worker.principal_id}"
    )


# ------------------------------------------------------------------------------- GCP
def test_gke_cluster_is_private_vpc_native_pinned_with_workload_identity() -> None:
    module = load("gcp-gke")
    cluster = module.resource("google_container_cluster", "this")
    assert cluster["min_master_version"] == "${var.kubernetes_version}"
    assert cluster["remove_default_node_pool"] is True
    assert block(cluster, "private_cluster_config")["enable_private_nodes"] is True
    assert block(cluster, "workload_identity_config")["workload_pool"] == (
        "${local.project}.svc.id.goog"
    )
    allocation = block(cluster, "ip_allocation_policy")
    assert allocation["cluster_secondary_range_name"] == "${var.secondary_range_names.pods}"
    assert "APISERVER" in block(cluster, "logging_config")["enable_components"]
    subnet = module.resource("google_compute_subnetwork", "this")
    assert len(subnet["secondary_ip_range"]) == 2


def test_gke_node_pool_per_pool_with_total_bounds_and_labels() -> None:
    pool = load("gcp-gke").resource("google_container_node_pool", "this")
    assert pool["for_each"] == "${local.pools}"
    assert pool["name"] == "${each.key}"  # the adapter's default node_pool
    assert block(pool, "autoscaling") | {"location_policy": None} == {
        "total_min_node_count": "${each.value.min_size}",
        "total_max_node_count": "${each.value.max_size}",
        "location_policy": None,
    }
    assert compact(pool["initial_node_count"]) == "ceil(each.value.desired_size/local.zone_count)"
    node_config = block(pool, "node_config")
    assert compact(node_config["labels"]) == POOL_LABELS
    assert block(node_config, "workload_metadata_config")["mode"] == "GKE_METADATA"
    assert {"initial_node_count", "node_count"} <= ignored_changes(pool)


def test_gke_serverless_is_node_auto_provisioning_behind_a_compute_class() -> None:
    module = load("gcp-gke")
    autoscaling = block(module.resource("google_container_cluster", "this"), "cluster_autoscaling")
    assert autoscaling["enabled"] == "${var.serverless.enabled}"
    serverless = compact(module.outputs["serverless"]["value"])
    assert '"cloud.google.com/compute-class"=local.burst_class' in serverless
    assert 'kind="ComputeClass"' in serverless
    assert "nodePoolAutoCreation={enabled=true}" in serverless


def gke_adapter_permissions() -> set[str]:
    """IAM permissions for every GKE and Compute call meridian/nodepools/gke.py makes."""
    source = (NODEPOOLS / "gke.py").read_text()
    container = {
        "get_node_pool": "container.clusters.get",
        "set_node_pool_size": "container.clusters.update",
        "set_node_pool_autoscaling": "container.clusters.update",
    }
    calls = set(re.findall(r"self\.client\.(\w+)\(", source))
    unknown = calls - set(container)
    assert not unknown, f"the GKE adapter makes calls this test cannot map: {unknown}"
    needed = {container[call] for call in calls}
    # Compute REST calls on the pools' instance groups.
    compute = {
        r'_compute\("GET", url\)': "compute.instanceGroupManagers.get",
        r"/listManagedInstances": "compute.instanceGroupManagers.get",
        r"/deleteInstances": "compute.instanceGroupManagers.update",
    }
    needed |= {perm for pattern, perm in compute.items() if re.search(pattern, source)}
    assert len(re.findall(r"self\._compute\(", source)) == 3, "a new Compute call to map"
    return needed


def test_gke_unit_account_is_bound_to_meridian_unit_and_allows_exactly_the_adapter_calls() -> None:
    module = load("gcp-gke")
    binding = module.resource("google_service_account_iam_member", "unit_worker_workload_identity")
    assert binding["role"] == "roles/iam.workloadIdentityUser"
    assert binding["member"] == (
        "serviceAccount:${local.project}.svc.id.goog[${var.meridian_namespace}/meridian-unit]"
    )
    roles = [
        module.resource("google_project_iam_custom_role", "node_pools"),
        module.resource("google_project_iam_custom_role", "instance_groups"),
    ]
    granted = {perm for role in roles for perm in role["permissions"]}
    assert granted == gke_adapter_permissions()
    for member in ("unit_worker_node_pools", "unit_worker_instance_groups"):
        assert module.resource("google_project_iam_member", member)["member"] == (
            "serviceAccount:${google_service_account.unit_worker.email}"
        )
