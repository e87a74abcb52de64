"""`meridian deploy render` on fleet-15: golden, deterministic, complete, and valid."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from meridian.deploy.fleet import CLOUDS, Fleet, load_fleet
from meridian.deploy.render import render
from meridian.regions.config import RegionsFile
from tests.conftest import REPO

from .support import DATA, FLEET, hcl, kustomize, tool


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deploy")
    render(FLEET, out / "build", fleet_root_dir=out / "fleet", k8s_root=out / "k8s-root")
    return out


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_committed_fleet_root_is_a_fresh_render(rendered: Path) -> None:
    committed = REPO / "infra" / "terraform" / "fleet"
    fresh = _files(rendered / "fleet")
    assert sorted(fresh) == ["main.tf", "outputs.tf", "providers.tf", "variables.tf"]
    for name, text in fresh.items():
        assert (committed / name).read_text() == text, (
            f"infra/terraform/fleet/{name} is stale: meridian deploy render "
            "--fleet-root infra/terraform/fleet"
        )


def test_the_committed_overlays_and_regions_configmap_are_a_fresh_render(rendered: Path) -> None:
    for part in ("overlays", "regions"):
        assert _files(REPO / "infra" / "k8s" / part) == _files(rendered / "k8s-root" / part), (
            f"infra/k8s/{part} is stale: meridian deploy render --k8s-root infra/k8s"
        )


def test_render_is_deterministic(rendered: Path, tmp_path: Path) -> None:
    render(FLEET, tmp_path / "again")
    assert _files(tmp_path / "again") == _files(rendered / "build")


def test_a_region_removed_from_the_fleet_leaves_no_overlay_behind(tmp_path: Path) -> None:
    render(FLEET, tmp_path / "out")
    data = yaml.safe_load(FLEET.read_text())
    data["regions"] = [r for r in data["regions"] if r["name"] != "baidu-bj"]
    smaller = tmp_path / "fleet-14.yaml"
    smaller.write_text(yaml.safe_dump(data))
    render(smaller, tmp_path / "out")
    assert not (tmp_path / "out" / "k8s" / "unit-baidu-bj").exists()
    assert not (tmp_path / "out" / "terraform" / "baidu-bj.tfvars.json").exists()


def test_fleet_root_covers_every_cloud_region_across_the_seven_clouds(rendered: Path) -> None:
    fleet, _ = load_fleet(FLEET)
    main = hcl(rendered / "fleet" / "main.tf")
    modules = {name: body for block in main["module"] for name, body in block.items()}
    expected = {r.name for r in fleet.regions if r.provider.value != "idc"}
    assert set(modules) == expected and len(expected) == 14
    sources = {body["source"] for body in modules.values()}
    assert sources == {f"../modules/{cloud.module}" for cloud in CLOUDS.values()}
    assert len(sources) == 7
    west = modules["aws-us-west-2"]
    assert west["providers"] == {"aws": "${aws.aws_us_west_2}"}
    assert west["region"] == "us-west-2" and west["kubernetes_version"] == "1.31"
    assert west["node_pools"] == [
        {
            "name": "general",
            "machine_type": "m6i.4xlarge",
            "min_size": 2,
            "desired_size": 6,
            "max_size": 20,
        }
    ]
    assert west["network"]["cidr"] == "10.11.0.0/16"
    assert west["task_namespaces"] == ["meridian-tasks"]
    assert west["meridian_namespace"] == "meridian"

    providers = hcl(rendered / "fleet" / "providers.tf")
    aliases = {body["alias"] for block in providers["provider"] for body in block.values()}
    assert aliases == {name.replace("-", "_") for name in expected}
    required = providers["terraform"][0]["required_providers"][0]
    assert {v["source"] for v in required.values()} == {c.tf_source for c in CLOUDS.values()}

    outputs = hcl(rendered / "fleet" / "outputs.tf")
    regions = outputs["output"][0]["regions"]["value"]
    assert set(regions) == expected
    assert regions["gcp-us-central1"]["cluster_endpoint"] == (
        "${module.gcp-us-central1.cluster_endpoint}"
    )


def test_the_fleet_root_is_terraform_fmt_clean(rendered: Path) -> None:
    result = subprocess.run(
        [tool("terraform"), "fmt", "-check", "-diff", str(rendered / "fleet")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_tfvars_carry_the_modules_common_inputs(rendered: Path) -> None:
    terraform = rendered / "build" / "terraform"
    assert len(list(terraform.glob("*.tfvars.json"))) == 14
    assert not (terraform / "idc-shanghai-1.tfvars.json").exists()  # Ansible builds IDC
    inputs = json.loads((terraform / "huawei-cn-north-4.tfvars.json").read_text())
    assert inputs == {
        "name": "huawei-cn-north-4",
        "region": "cn-north-4",
        "kubernetes_version": "1.31",
        "node_pools": [
            {
                "name": "general",
                "machine_type": "c7.4xlarge.4",
                "min_size": 2,
                "desired_size": 6,
                "max_size": 20,
            }
        ],
        "network": {"vpc_id": None, "subnet_ids": [], "cidr": "10.22.0.0/16"},
        "serverless": {"enabled": True},
        "task_namespaces": ["meridian-tasks"],
        "meridian_namespace": "meridian",
        "tags": {"managed-by": "meridian", "meridian-region": "huawei-cn-north-4"},
    }


def test_the_regions_configmap_drives_each_clouds_pools(rendered: Path) -> None:
    regions = yaml.safe_load((rendered / "build" / "k8s" / "regions" / "regions.yaml").read_text())
    parsed = RegionsFile.model_validate(regions)  # the pods load it as their regions file
    assert len(parsed.regions) == 15
    drivers = {r.name: r.node_pools[0].driver for r in parsed.regions}
    assert drivers["aws-us-west-2"] == "eks" and drivers["idc-shanghai-1"] == "idc"
    assert drivers["baidu-bj"] == "cce-baidu" and drivers["gcp-us-central1"] == "gke"
    pool = parsed.get("tencent-ap-shanghai").node_pools[0].model_dump()
    assert pool["tencent_region"] == "ap-shanghai"


def test_terraform_outputs_fill_pool_ids_and_the_unit_identity(tmp_path: Path) -> None:
    render(FLEET, tmp_path, terraform_output=DATA / "outputs.json")
    regions = RegionsFile.model_validate(
        yaml.safe_load((tmp_path / "k8s" / "regions" / "regions.yaml").read_text())
    )
    aws = regions.get("aws-us-west-2").node_pools[0].model_dump()
    assert (aws["cluster"], aws["nodegroup"]) == ("aws-us-west-2", "general-20261206")
    tke = regions.get("tencent-ap-guangzhou").node_pools[0].model_dump()
    assert tke["node_pool_id"] == "np-abc123"

    docs = list(yaml.safe_load_all(kustomize(tmp_path / "k8s" / "unit-aws-us-west-2")))
    account = next(d for d in docs if d["kind"] == "ServiceAccount")
    assert account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/meridian-unit-aws-us-west-2"
    }
    azure = list(yaml.safe_load_all(kustomize(tmp_path / "k8s" / "unit-azure-eastus")))
    deployment = next(d for d in azure if d["kind"] == "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true"


def test_every_overlay_builds_and_validates_for_the_pinned_version(rendered: Path) -> None:
    validate = tool("kubernetes-validate")
    fleet, _ = load_fleet(FLEET)
    overlays = sorted(
        p for p in (rendered / "build" / "k8s").iterdir() if p.name not in ("base", "regions")
    )
    assert len(overlays) == 1 + len(fleet.unit_regions) == 16
    built = []
    for overlay in overlays:
        text = kustomize(overlay)
        docs = [d for d in yaml.safe_load_all(text) if d]
        for doc in docs:
            labels = doc["metadata"].get("labels") or {}
            region = overlay.name.removeprefix("unit-")
            expected = fleet.central.name if overlay.name == "central" else region
            assert labels.get("meridian.io/region") == expected, doc["metadata"]["name"]
        images = [
            c["image"]
            for d in docs
            if d["kind"] in ("Deployment", "Job")
            for c in d["spec"]["template"]["spec"]["containers"]
        ]
        assert images and all(":" in i and not i.endswith(":latest") for i in images)
        path = overlay.parent / f"{overlay.name}.built.yaml"
        path.write_text(text)
        built.append(str(path))
    result = subprocess.run(
        [validate, "--strict", "--quiet", "-k", f"{fleet.defaults.kubernetes_version}.0", *built],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_committed_overlays_build_in_place() -> None:
    # The old central overlay failed here: its generator read a file outside its root.
    for overlay in ("central", "unit-aws-us-west-2"):
        assert "kind: Deployment" in kustomize(REPO / "infra" / "k8s" / "overlays" / overlay)


def test_no_pod_mounts_a_kubeconfig_and_only_the_unit_has_a_token() -> None:
    for overlay in ("central", "unit-aws-us-west-2"):
        docs = yaml.safe_load_all(kustomize(REPO / "infra" / "k8s" / "overlays" / overlay))
        for doc in docs:
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            pod = doc["spec"]["template"]["spec"]
            assert "kubeconfig" not in json.dumps(pod).lower()
            unit = doc["metadata"]["name"] == "meridian-unit"
            assert pod.get("automountServiceAccountToken", True) is unit
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] and context["capabilities"]["drop"] == [
                    "ALL"
                ]
                assert container["resources"]["limits"] and container["resources"]["requests"]
                if doc["kind"] == "Deployment":
                    assert container["readinessProbe"] and container["livenessProbe"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min": 7}, "min <= desired <= max"),
        ({"count": 5}, "count .* must equal desired"),
    ],
)
def test_an_undeployable_pool_is_refused(change: dict[str, int], message: str) -> None:
    data = yaml.safe_load(FLEET.read_text())
    data["regions"][1]["node_pools"][0].update(change)
    with pytest.raises(ValidationError, match=message):
        Fleet.model_validate(data)
