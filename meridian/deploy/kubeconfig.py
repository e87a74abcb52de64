"""`meridian deploy kubeconfig`: one context per region, named after it, from Terraform.

Cluster: the module's `cluster_endpoint` and `cluster_ca_certificate`. User: an exec
credential plugin per cloud, so that the file holds no secret and every token is short
lived and the operator's own:
  aws      aws eks get-token                       (AWS CLI v2)
  azure    kubelogin get-token --login azurecli    (AKS with Entra ID)
  gcp      gke-gcloud-auth-plugin                  (gcloud component)
  alibaba  ack-ram-tool credential-plugin get-credential
Tencent TKE, Baidu CCE and Huawei CCE document no exec plugin for their managed clusters:
their contexts get a user with no credentials, which the operator fills with the cloud's
client certificate (infra/README.md, "Kubeconfig"). IDC clusters are not in Terraform:
merge the kubeconfig Ansible fetched (infra/idc/README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from meridian.deploy.fleet import FleetRegion, load_fleet
from meridian.deploy.outputs import RegionOutputs, load_outputs
from meridian.regions.providers import Provider

EXEC_API = "client.authentication.k8s.io/v1beta1"
# The Entra ID application of AKS's managed AAD integration: the same for every cluster.
AKS_SERVER_ID = "6dae42f8-4368-4678-94ff-3960e28e3630"


def exec_credential(region: FleetRegion, outputs: RegionOutputs) -> dict[str, Any] | None:
    """The kubeconfig `exec` entry that gets a token for this region's cluster."""
    cluster = outputs.cluster_name or region.name
    if region.provider is Provider.AWS:
        args = ["eks", "get-token", "--cluster-name", cluster, "--region", region.location]
        return _exec("aws", [*args, "--output", "json"], "Install the AWS CLI v2.")
    if region.provider is Provider.AZURE:
        args = ["get-token", "--login", "azurecli", "--server-id", AKS_SERVER_ID]
        return _exec("kubelogin", args, "Install kubelogin: az aks install-cli.")
    if region.provider is Provider.GCP:
        hint = "Install it: gcloud components install gke-gcloud-auth-plugin."
        entry = _exec("gke-gcloud-auth-plugin", [], hint)
        entry["provideClusterInfo"] = True
        return entry
    if region.provider is Provider.ALIBABA:
        cluster_id = str(getattr(outputs, "cluster_id", None) or cluster)
        args = ["credential-plugin", "get-credential", "--cluster-id", cluster_id]
        args += ["--api-version", "v1beta1", "--region-id", region.location]
        return _exec("ack-ram-tool", args, "Install ack-ram-tool (Alibaba Cloud ACK).")
    return None


def _exec(command: str, args: list[str], hint: str) -> dict[str, Any]:
    return {
        "apiVersion": EXEC_API,
        "command": command,
        "args": args,
        "interactiveMode": "IfAvailable",
        "installHint": hint,
    }


def build_kubeconfig(
    regions: dict[str, FleetRegion], outputs: dict[str, RegionOutputs]
) -> dict[str, Any]:
    clusters, users, contexts = [], [], []
    for name, found in sorted(outputs.items()):
        region = regions.get(name)
        if region is None:
            raise ValueError(f"Terraform output names region {name!r}, not in the fleet file")
        clusters.append(
            {
                "name": name,
                "cluster": {
                    "server": found.cluster_endpoint,
                    "certificate-authority-data": found.cluster_ca_certificate,
                },
            }
        )
        credential = exec_credential(region, found)
        users.append({"name": name, "user": {"exec": credential} if credential else {}})
        contexts.append({"name": name, "context": {"cluster": name, "user": name}})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": clusters,
        "users": users,
        "contexts": contexts,
        "current-context": contexts[0]["name"] if contexts else "",
    }


def write_kubeconfig(terraform_output: Path, out: Path, *, fleet: Path) -> list[str]:
    """Write the kubeconfig (mode 0600); the context names, sorted."""
    parsed, _ = load_fleet(fleet)
    config = build_kubeconfig({r.name: r for r in parsed.regions}, load_outputs(terraform_output))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.touch(mode=0o600, exist_ok=True)
    out.write_text(yaml.safe_dump(config, sort_keys=False))
    return [c["name"] for c in config["contexts"]]
