"""The Terraform modules of the eastern clouds (Alibaba ACK, Tencent TKE, Baidu CCE, Huawei
CCE), checked offline: provider binaries cannot be downloaded here, so `terraform
validate` is out of reach and these tests parse the HCL (python-hcl2) and assert what
the fleet root, `meridian deploy kubeconfig` and the node-pool adapters rely on: the
common inputs and outputs, the pinned provider, the cluster at the pinned version, one
pool per fleet pool with its bounds and Meridian's labels, the serverless capacity, and
an identity that allows exactly the cloud calls the adapter makes on this cluster."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ROOT / "infra" / "terraform" / "modules"
ADAPTERS = ROOT / "meridian" / "nodepools"

# The shared contract of issue 13: common input name => (type, default or MISSING).
MISSING = object()
COMMON_VARIABLES: dict[str, tuple[str, Any]] = {
    "name": ("string", MISSING),
    "region": ("string", MISSING),
    "kubernetes_version": ("string", MISSING),
    "node_pools": (
        "list(object({name=string,machine_type=string,min_size=number,"
        "desired_size=number,max_size=number}))",
        MISSING,
    ),
    "network": (
        "object({vpc_id=optional(string),subnet_ids=optional(list(string),[]),"
        'cidr=optional(string,"10.0.0.0/16")})',
        {},
    ),
    "serverless": ("object({enabled=optional(bool,true)})", {}),
    "task_namespaces": ("list(string)", ["meridian-tasks"]),
    "meridian_namespace": ("string", "meridian"),
    "tags": ("map(string)", {}),
}
COMMON_OUTPUTS = {
    "cluster_name",
    "cluster_endpoint",
    "cluster_ca_certificate",
    "node_pool_ids",
    "unit_worker_identity",
    "serverless",
}
UNIT_SA = "system:serviceaccount:${var.meridian_namespace}:${local.unit_sa}"


@dataclass(frozen=True)
class Cloud:
    module: str
    provider: str
    source: str
    cluster: str
    version_attr: str
    pool: str
    # Paths inside the pool resource, e.g. ("scaling_config", "min_size"); None where the
    # provider has no such argument.
    min_path: tuple[str, ...] | None
    max_path: tuple[str, ...] | None
    desired_path: tuple[str, ...]
    ignore_desired: str
    labels_path: tuple[str, ...] | None
    pool_id_attr: str


CLOUDS = {
    c.module: c
    for c in [
        Cloud(
            module="alicloud-ack",
            provider="alicloud",
            source="aliyun/alicloud",
            cluster="alicloud_cs_managed_kubernetes",
            version_attr="version",
            pool="alicloud_cs_kubernetes_node_pool",
            min_path=("scaling_config", "min_size"),
            max_path=("scaling_config", "max_size"),
            desired_path=("desired_size",),
            ignore_desired="desired_size",
            labels_path=None,  # a dynamic "labels" block, checked separately
            pool_id_attr="node_pool_id",
        ),
        Cloud(
            module="tencent-tke",
            provider="tencentcloud",
            source="tencentcloudstack/tencentcloud",
            cluster="tencentcloud_kubernetes_cluster",
            version_attr="cluster_version",
            pool="tencentcloud_kubernetes_node_pool",
            min_path=("min_size",),
            max_path=("max_size",),
            desired_path=("desired_capacity",),
            ignore_desired="desired_capacity",
            labels_path=("labels",),
            pool_id_attr="id",
        ),
        Cloud(
            module="baidu-cce",
            provider="baiducloud",
            source="baidubce/baiducloud",
            cluster="baiducloud_ccev2_cluster",
            version_attr="cluster_spec.k8s_version",
            pool="baiducloud_ccev2_instance_group",
            min_path=None,
            max_path=None,
            desired_path=("spec", "replicas"),
            ignore_desired="spec[0].replicas",
            labels_path=("spec", "instance_template", "labels"),
            pool_id_attr="id",
        ),
        Cloud(
            module="huawei-cce",
            provider="huaweicloud",
            source="huaweicloud/huaweicloud",
            cluster="huaweicloud_cce_cluster",
            version_attr="cluster_version",
            pool="huaweicloud_cce_node_pool",
            min_path=("min_node_count",),
            max_path=("max_node_count",),
            desired_path=("initial_node_count",),
            ignore_desired="initial_node_count",
            labels_path=("labels",),
            pool_id_attr="id",
        ),
    ]
}
params = pytest.mark.parametrize("cloud", list(CLOUDS.values()), ids=list(CLOUDS))


# ------------------------------------------------------------------------------ parsing


def _norm(value: Any) -> Any:
    """python-hcl2 keeps the quotes of keys and string literals and adds `__...__`
    markers; strip both so the tests read values as written in HCL."""
    if isinstance(value, dict):
        return {_unquote(k): _norm(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    if isinstance(value, str):
        return _unquote(value)
    return value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def parsed(module: str, name: str) -> dict[str, Any]:
    with (MODULES / module / name).open() as handle:
        return _norm(hcl2.load(handle))  # type: ignore[no-any-return]


def blocks(module: str, name: str, kind: str) -> dict[str, Any]:
    """All top-level blocks of one kind (variable, output, ...) by name."""
    found: dict[str, Any] = {}
    for block in parsed(module, name).get(kind, []):
        found.update(block)
    return found


def resources(module: str, kind: str = "resource") -> dict[str, dict[str, Any]]:
    """type => {name => body} of the module's main.tf."""
    found: dict[str, dict[str, Any]] = {}
    for block in parsed(module, "main.tf").get(kind, []):
        for rtype, named in block.items():
            found.setdefault(rtype, {}).update(named)
    return found


def locals_of(module: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for name in ("main.tf", "outputs.tf"):
        for block in parsed(module, name).get("locals", []):
            merged.update(block)
    return merged


def one(module: str, rtype: str) -> dict[str, Any]:
    named = resources(module).get(rtype)
    assert named, f"{module}: no {rtype} resource"
    assert len(named) == 1, f"{module}: expected one {rtype}, found {sorted(named)}"
    return next(iter(named.values()))


def at(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    """Follow a path through nested blocks (python-hcl2 gives blocks as one-item lists)."""
    value: Any = body
    for key in path:
        if isinstance(value, list):
            assert len(value) == 1, f"expected one {key!r} block"
            value = value[0]
        assert isinstance(value, dict) and key in value, f"no {key!r} in {path}"
        value = value[key]
    return value


def refers_to(
    expr: Any, target: str, local_defs: dict[str, Any], seen: frozenset[str] = frozenset()
) -> bool:
    """Whether an expression uses `target`, directly or through the module's locals."""
    text = str(expr)
    if target in text:
        return True
    for name in re.findall(r"local\.(\w+)", text):
        if name not in seen and name in local_defs:
            if refers_to(local_defs[name], target, local_defs, seen | {name}):
                return True
    return False


def squash(text: str) -> str:
    text = str(text)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return re.sub(r"\s+", "", text).replace('\\"', '"')


def quoted(expr: str, prefix: str) -> set[str]:
    """The string literals in an expression that start with `prefix` (policy actions)."""
    return set(re.findall(rf'\\?"({re.escape(prefix)}[A-Za-z:]+)\\?"', expr))


def adapter(name: str) -> str:
    return (ADAPTERS / name).read_text()


# ------------------------------------------------------------------------------ layout


@params
def test_module_has_the_agreed_files(cloud: Cloud) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (MODULES / cloud.module / name).is_file(), f"{cloud.module}/{name} missing"
    example = MODULES / cloud.module / "examples" / "basic" / "main.tf"
    assert example.is_file()
    calls = blocks(cloud.module, "examples/basic/main.tf", "module")
    assert [body["source"] for body in calls.values()] == ["../.."]


@params
def test_provider_source_and_version_are_pinned(cloud: Cloud) -> None:
    (terraform,) = parsed(cloud.module, "versions.tf")["terraform"]
    assert terraform["required_version"] == ">= 1.6"
    (providers,) = terraform["required_providers"]
    assert set(providers) == {cloud.provider}
    assert providers[cloud.provider]["source"] == cloud.source
    assert re.fullmatch(r"~> \d+\.\d+", providers[cloud.provider]["version"])
    # The example pins the same provider the same way.
    (example,) = parsed(cloud.module, "examples/basic/main.tf")["terraform"]
    assert example["required_providers"][0][cloud.provider] == providers[cloud.provider]


# ------------------------------------------------------------------------------ interface


@params
def test_common_variables_match_the_contract(cloud: Cloud) -> None:
    variables = blocks(cloud.module, "variables.tf", "variable")
    for name, (vtype, default) in COMMON_VARIABLES.items():
        assert name in variables, f"{cloud.module}: variable {name} missing"
        assert squash(variables[name]["type"]) == vtype, f"{cloud.module}: {name} type"
        if default is MISSING:
            assert "default" not in variables[name], f"{cloud.module}: {name} must be required"
        else:
            assert variables[name]["default"] == default, f"{cloud.module}: {name} default"


@params
def test_every_variable_is_typed_described_and_the_extras_optional(cloud: Cloud) -> None:
    variables = blocks(cloud.module, "variables.tf", "variable")
    for name, body in variables.items():
        assert body.get("type"), f"{cloud.module}: {name} has no type"
        assert body.get("description"), f"{cloud.module}: {name} has no description"
        if name not in COMMON_VARIABLES:
            # The fleet root sets only the common inputs.
            assert "default" in body, f"{cloud.module}: extra input {name} needs a default"


@params
def test_pool_bounds_and_version_are_validated(cloud: Cloud) -> None:
    variables = blocks(cloud.module, "variables.tf", "variable")
    pool_rules = " ".join(v["condition"] for v in variables["node_pools"]["validation"])
    assert "p.min_size <= p.desired_size" in pool_rules
    assert "p.desired_size <= p.max_size" in pool_rules
    (version_rule,) = variables["kubernetes_version"]["validation"]
    assert "regex" in version_rule["condition"]


@params
def test_common_outputs_exist_with_descriptions(cloud: Cloud) -> None:
    outputs = blocks(cloud.module, "outputs.tf", "output")
    assert COMMON_OUTPUTS <= set(outputs)
    for name in COMMON_OUTPUTS:
        assert outputs[name].get("description"), f"{cloud.module}: {name} undescribed"
        # A sensitive common output would make the fleet root's aggregate sensitive.
        assert not outputs[name].get("sensitive"), f"{cloud.module}: {name} is sensitive"


# ------------------------------------------------------------------------------ cluster


@params
def test_cluster_runs_the_pinned_kubernetes_version(cloud: Cloud) -> None:
    cluster = one(cloud.module, cloud.cluster)
    version = at(cluster, tuple(cloud.version_attr.split(".")))
    assert refers_to(version, "var.kubernetes_version", locals_of(cloud.module))
    outputs = blocks(cloud.module, "outputs.tf", "output")
    assert refers_to(outputs["cluster_name"]["value"], cloud.cluster, {}) or (
        outputs["cluster_name"]["value"] == "${var.name}"
    )


@params
def test_network_is_created_from_the_cidr_unless_ids_are_given(cloud: Cloud) -> None:
    local_defs = locals_of(cloud.module)
    assert squash(local_defs["create_network"]) == "var.network.vpc_id==null"
    vpc_types = [t for t in resources(cloud.module) if t.endswith("_vpc")]
    assert len(vpc_types) == 1
    (vpc,) = resources(cloud.module)[vpc_types[0]].values()
    assert vpc["count"] == "${local.create_network ? 1 : 0}"
    assert "var.network.cidr" in str(vpc)
    assert "var.network.vpc_id" in str(local_defs["vpc_id"])


# ------------------------------------------------------------------------------ node pools


@params
def test_one_pool_per_fleet_pool_with_bounds(cloud: Cloud) -> None:
    pool = one(cloud.module, cloud.pool)
    local_defs = locals_of(cloud.module)
    assert pool["for_each"] == "${local.pools}"
    assert squash(local_defs["pools"]) == "{forpinvar.node_pools:p.name=>p}"
    assert at(pool, cloud.desired_path) == "${each.value.desired_size}"
    if cloud.min_path is None:
        # Baidu: the provider has no autoscaler arguments; the module says so.
        text = str(pool)
        assert "min_size" not in text and "max_size" not in text
        readme = (MODULES / cloud.module / "README.md").read_text()
        assert "bounds" in readme and "regions file" in readme
    else:
        assert at(pool, cloud.min_path) == "${each.value.min_size}"
        assert cloud.max_path is not None
        assert at(pool, cloud.max_path) == "${each.value.max_size}"


@params
def test_pool_ignores_desired_size_drift(cloud: Cloud) -> None:
    pool = one(cloud.module, cloud.pool)
    (lifecycle,) = pool["lifecycle"]
    assert cloud.ignore_desired in [squash(x) for x in lifecycle["ignore_changes"]]


@params
def test_pool_nodes_carry_meridians_labels(cloud: Cloud) -> None:
    pool = one(cloud.module, cloud.pool)
    local_defs = locals_of(cloud.module)
    labels = squash(local_defs["pool_labels"])
    assert labels == (
        '{forpinvar.node_pools:p.name=>{"meridian.io/region"=var.name,'
        '"meridian.io/node-pool"=p.name}}'
    )
    if cloud.labels_path is None:
        (dynamic,) = [d["labels"] for d in pool["dynamic"] if "labels" in d]
        assert dynamic["for_each"] == "${local.pool_labels[each.key]}"
    else:
        assert at(pool, cloud.labels_path) == "${local.pool_labels[each.key]}"


@params
def test_node_pool_ids_map_pool_names_to_the_adapter_ids(cloud: Cloud) -> None:
    value = squash(blocks(cloud.module, "outputs.tf", "output")["node_pool_ids"]["value"])
    assert value.startswith(f"{{forname,poolin{cloud.pool}.this:name=>") or value.startswith(
        f"{{forname,groupin{cloud.pool}.this:name=>"
    )
    assert f".{cloud.pool_id_attr}" in value


def test_tke_pool_id_is_the_second_half_of_the_resource_id() -> None:
    # tencentcloud_kubernetes_node_pool's id is "<cluster>#<pool>"; the adapter wants the pool.
    value = blocks("tencent-tke", "outputs.tf", "output")["node_pool_ids"]["value"]
    assert 'split("#", pool.id)[1]' in value


# ------------------------------------------------------------------------------ serverless


def test_ack_serverless_is_the_ack_virtual_node_addon() -> None:
    addons = resources("alicloud-ack")["alicloud_cs_kubernetes_addon"]
    (virtual,) = [a for a in addons.values() if a["name"] == "ack-virtual-node"]
    assert virtual["count"] == "${var.serverless.enabled ? 1 : 0}"


def test_tke_serverless_is_a_super_node_pool() -> None:
    pool = one("tencent-tke", "tencentcloud_kubernetes_serverless_node_pool")
    assert pool["count"] == "${var.serverless.enabled ? 1 : 0}"
    (dynamic,) = pool["dynamic"]
    assert dynamic["serverless_nodes"]["for_each"] == "${local.subnet_ids}"
    assert pool["labels"]["meridian.io/region"] == "${var.name}"


def test_huawei_serverless_is_the_cci_bursting_addon() -> None:
    addon = one("huawei-cce", "huaweicloud_cce_addon")
    assert addon["template_name"] == "virtual-kubelet"
    assert addon["count"] == "${var.serverless.enabled ? 1 : 0}"
    # The bursting add-on only works with the VPC network model.
    cluster = one("huawei-cce", "huaweicloud_cce_cluster")
    assert cluster["container_network_type"] == "vpc-router"


def test_baidu_has_no_serverless_resource_and_says_where_bci_comes_from() -> None:
    types = set(resources("baidu-cce"))
    assert not [t for t in types if "bci" in t or "virtual" in t or "addon" in t]
    outputs = blocks("baidu-cce", "outputs.tf", "output")
    assert outputs["serverless"]["value"] is None
    readme = (MODULES / "baidu-cce" / "README.md").read_text()
    assert "BCI" in readme and "infra/k8s/" in readme


@params
def test_serverless_output_is_null_when_disabled(cloud: Cloud) -> None:
    value = blocks(cloud.module, "outputs.tf", "output")["serverless"]["value"]
    assert value is None or str(value).startswith("${var.serverless.enabled ? {")


# ------------------------------------------------------------------------------ identity


def test_ack_identity_is_rrsa_for_meridian_unit_with_exactly_the_adapter_calls() -> None:
    cluster = one("alicloud-ack", "alicloud_cs_managed_kubernetes")
    assert cluster["enable_rrsa"] is True
    role = one("alicloud-ack", "alicloud_ram_role")
    trust = role["assume_role_policy_document"]
    assert UNIT_SA in trust and "ram_oidc_provider_arn" in trust
    assert locals_of("alicloud-ack")["unit_sa"] == "meridian-unit"
    policy = one("alicloud-ack", "alicloud_ram_policy")["policy_document"]
    called = {
        "".join(part.title() for part in name.split("_"))
        for name in re.findall(r"self\.client\.(\w+)\(", adapter("ack.py"))
    }
    assert {a.removeprefix("cs:") for a in quoted(policy, "cs:")} == called
    assert "cluster/${alicloud_cs_managed_kubernetes.this.id}" in policy
    attach = one("alicloud-ack", "alicloud_ram_role_policy_attachment")
    assert "alicloud_ram_role.unit_worker" in attach["role_name"]
    addons = resources("alicloud-ack")["alicloud_cs_kubernetes_addon"]
    assert any(a["name"] == "ack-pod-identity-webhook" for a in addons.values())


def test_tke_identity_is_oidc_pod_identity_with_exactly_the_adapter_calls() -> None:
    auth = one("tencent-tke", "tencentcloud_kubernetes_auth_attachment")
    assert auth["auto_create_oidc_config"] is True
    assert auth["auto_install_pod_identity_webhook_addon"] is True
    role = one("tencent-tke", "tencentcloud_cam_role")
    assert UNIT_SA in role["document"] and "AssumeRoleWithWebIdentity" in role["document"]
    assert "oidc-provider/${tencentcloud_kubernetes_cluster.this.id}" in role["document"]
    policy = one("tencent-tke", "tencentcloud_cam_policy")["document"]
    called = set(re.findall(r'_call\(\s*"(\w+)"', adapter("tke.py")))
    assert {a.removeprefix("tke:") for a in quoted(policy, "tke:")} == called
    assert "cluster/${tencentcloud_kubernetes_cluster.this.id}" in policy
    one("tencent-tke", "tencentcloud_cam_role_policy_attachment")


# CCE's IAM action for each huaweicloudsdkcce call the adapter makes.
HUAWEI_ACTIONS = {
    "show_node_pool": "cce:nodepool:get",
    "list_nodes": "cce:node:list",
    "scale_node_pool": "cce:nodepool:scale",
    "update_node_pool": "cce:nodepool:update",
    "delete_node": "cce:node:delete",
}


def test_huawei_identity_is_pod_identity_with_exactly_the_adapter_calls() -> None:
    association = one("huawei-cce", "huaweicloud_cce_cluster_pod_identity_association")
    assert association["namespace"] == "${var.meridian_namespace}"
    assert association["service_account"] == "${local.unit_sa}"
    assert "huaweicloud_identity_agency.unit_worker" in association["agency_name"]
    calls = set(re.findall(r"self\.client\.(\w+)\(", adapter("cce_huawei.py")))
    assert calls == set(HUAWEI_ACTIONS), "the adapter's calls changed: update the policy"
    policy = one("huawei-cce", "huaweicloud_identityv5_policy")["policy_document"]
    assert quoted(policy, "cce:") == set(HUAWEI_ACTIONS.values())
    assert "cluster:${huaweicloud_cce_cluster.this.id}" in policy
    attach = one("huawei-cce", "huaweicloud_identityv5_policy_agency_attach")
    assert "huaweicloud_identity_agency.unit_worker" in attach["agency_id"]


def test_baidu_identity_is_an_iam_user_key_limited_to_cce_in_the_region() -> None:
    policy = one("baidu-cce", "baiducloud_iam_policy")["document"]
    assert 'service = "bce:cce"' in policy and "region = var.region" in policy
    # The adapter reads (GET) and resizes (PUT); nothing else.
    methods = set(re.findall(r'_request\(\s*"(\w+)"', adapter("cce_baidu.py")))
    assert methods == {"GET", "PUT"}
    granted = set(re.findall(r'\\?"(CCE_[A-Z_]+)\\?"', policy))
    assert granted == {"CCE_READ", "CCE_OPERATE"}
    one("baidu-cce", "baiducloud_iam_user_policy_attachment")
    key = one("baidu-cce", "baiducloud_iam_access_key")
    assert key["username"] == "${baiducloud_iam_user.unit_worker.name}"
    outputs = blocks("baidu-cce", "outputs.tf", "output")
    assert outputs["unit_worker_secret_access_key"]["sensitive"] is True
    assert "BCE_SECRET_ACCESS_KEY" in str(outputs["unit_worker_identity"]["value"])


@params
def test_readme_documents_identity_and_serverless(cloud: Cloud) -> None:
    readme = (MODULES / cloud.module / "README.md").read_text()
    for heading in ("## Inputs", "## Outputs", "## Example", "## Identity", "## Serverless"):
        assert heading in readme, f"{cloud.module}/README.md lacks {heading}"
    for name in [*COMMON_VARIABLES, *COMMON_OUTPUTS]:
        assert f"`{name}`" in readme, f"{cloud.module}/README.md does not mention {name}"


# ------------------------------------------------------------------------------ format


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed (CI installs it): cannot run terraform fmt")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", *(str(MODULES / m) for m in CLOUDS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"
