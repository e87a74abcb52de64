"""The serverless kinds Meridian knows and their defaults, from each cloud's documentation.

Every default here can be overridden per region in the regions file (`serverless:`). Pod
sizes and steering are documented behaviour; prices are public list prices for one
region at the time of writing (the page is cited) and drift: a regions file that is used
for cost decisions should state its own. Limits default to the accounts' usual quotas;
a regions file should state the quota it really has.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

# Pods Meridian steers to serverless capacity carry this label. It is what EKS's Fargate
# profile selects on (infra/terraform/modules/aws-eks: the profile's selectors), and on
# other clouds it lets a reader tell burst pods apart.
LABEL_CAPACITY = "meridian.io/capacity"
CAPACITY_SERVERLESS = "serverless"
# The size a burst pod is billed for, after the cloud's rounding (see sizing.py).
ANNOTATION_BILLED_CPU = "meridian.io/billed-cpu"
ANNOTATION_BILLED_MEMORY = "meridian.io/billed-memory"
ANNOTATION_SERVERLESS_KIND = "meridian.io/serverless-kind"

# The compute class the GKE module creates (infra/terraform/modules/gcp-gke: burst_class).
GKE_BURST_CLASS = "meridian-burst"
# The namespaces Meridian's task Jobs run in (one per business unit, `meridian-<unit>`),
# as a Fargate profile selects them: EKS selectors take `*` and `?` wildcards.
DEFAULT_TASK_NAMESPACE = "meridian-*"


class ServerlessKind(StrEnum):
    FARGATE = "fargate"  # EKS on Fargate
    ACI = "aci"  # AKS virtual nodes on Azure Container Instances
    AUTOPILOT = "autopilot"  # GKE Autopilot compute classes
    ECI = "eci"  # ACK virtual node on Alibaba Elastic Container Instance
    TKE_SUPERNODE = "tke-supernode"  # Tencent TKE super nodes
    BCI = "bci"  # Baidu CCE virtual kubelet on BCI
    CCI = "cci"  # Huawei CCE Cloud Bursting Engine for CCI


def _grid(cpu: list[str], memory: list[str]) -> dict[str, Any]:
    return {"cpu": cpu, "memory": memory}


def _range(cpu: str, memory_min: str, memory_max: str, memory_step: str) -> dict[str, Any]:
    return {
        "cpu": [cpu],
        "memory_min": memory_min,
        "memory_max": memory_max,
        "memory_step": memory_step,
    }


# https://docs.aws.amazon.com/eks/latest/userguide/fargate-pod-configuration.html
# "Pod CPU and memory": the vCPU/memory combinations; Fargate adds 256 MB to the pod's
# memory request for the Kubernetes components, then rounds up to the nearest combination.
_FARGATE_SIZES = [
    _grid(["0.25"], ["512Mi", "1Gi", "2Gi"]),
    _grid(["0.5"], ["1Gi", "2Gi", "3Gi", "4Gi"]),
    _range("1", "2Gi", "8Gi", "1Gi"),
    _range("2", "4Gi", "16Gi", "1Gi"),
    _range("4", "8Gi", "30Gi", "1Gi"),
    _range("8", "16Gi", "60Gi", "4Gi"),
    _range("16", "32Gi", "120Gi", "8Gi"),
]

# https://www.alibabacloud.com/help/en/eci/user-guide/specify-the-number-of-vcpus-and-memory-size-to-create-an-elastic-container-instance
# Specs available in every ECI region; a request between specs is rounded up to the
# nearest one ("7 vCPU, 13 GiB becomes 8 vCPU, 14 GiB" uses the regional extras, left out).
_ECI_SIZES = [
    _grid(["0.25"], ["512Mi", "1Gi"]),
    _grid(["0.5"], ["1Gi", "2Gi"]),
    _grid(["1"], ["2Gi", "4Gi", "8Gi"]),
    _grid(["2"], ["1Gi", "2Gi", "4Gi", "8Gi", "16Gi"]),
    _grid(["4"], ["2Gi", "4Gi", "8Gi", "16Gi", "32Gi"]),
    _grid(["8"], ["4Gi", "8Gi", "16Gi", "32Gi", "64Gi"]),
    _grid(["12"], ["12Gi", "24Gi", "48Gi", "96Gi"]),
    _grid(["16"], ["16Gi", "32Gi", "64Gi", "128Gi"]),
    _grid(["24"], ["24Gi", "48Gi", "96Gi", "192Gi"]),
    _grid(["32"], ["32Gi", "64Gi", "128Gi", "256Gi"]),
    _grid(["52"], ["96Gi", "192Gi", "384Gi"]),
    _grid(["64"], ["128Gi", "256Gi", "512Gi"]),
]

# https://cloud.tencent.com/document/product/457/74015 (pay-as-you-go super nodes:
# "for nonstandard Pods, their specifications are automatically upgraded").
_TKE_SIZES = [
    _grid(["0.25"], ["512Mi", "1Gi", "2Gi"]),
    _grid(["0.5"], ["1Gi", "2Gi", "3Gi", "4Gi"]),
    _range("1", "1Gi", "8Gi", "1Gi"),
    _range("2", "4Gi", "16Gi", "1Gi"),
    _range("4", "8Gi", "32Gi", "1Gi"),
    _range("8", "16Gi", "32Gi", "1Gi"),
    _range("12", "24Gi", "48Gi", "1Gi"),
    _range("16", "32Gi", "64Gi", "1Gi"),
    _grid(["32"], ["64Gi", "128Gi", "256Gi"]),
    _grid(["64"], ["128Gi", "192Gi", "256Gi", "512Gi"]),
]

# https://support.huaweicloud.com/intl/en-us/usermanual-cci/cci_01_0117.html
# CPU rounded up to a multiple of 0.25 in [0.25, 32] (or 48, 64), memory to whole GiB,
# with 2 to 8 GiB per vCPU.
_CCI_SIZES = [
    {
        "cpu_min": "0.25",
        "cpu_max": "32",
        "cpu_step": "0.25",
        "memory_min": "1Gi",
        "memory_max": "256Gi",
        "memory_step": "1Gi",
        "memory_per_cpu_min": 2,
        "memory_per_cpu_max": 8,
    },
    {
        "cpu": ["48", "64"],
        "memory_min": "96Gi",
        "memory_max": "512Gi",
        "memory_step": "1Gi",
        "memory_per_cpu_min": 2,
        "memory_per_cpu_max": 8,
    },
]

# https://cloud.google.com/kubernetes-engine/docs/concepts/autopilot-resource-requests
# General-purpose class: CPU in 0.25 vCPU steps up to 30, 1 to 6.5 GiB of memory per vCPU.
# Simplified: Autopilot's bursting clusters accept smaller CPU requests (from 50m).
_AUTOPILOT_SIZES = [
    {
        "cpu_min": "0.25",
        "cpu_max": "30",
        "cpu_step": "0.25",
        "memory_min": "256Mi",
        "memory_max": "110Gi",
        "memory_step": "256Mi",
        "memory_per_cpu_min": 1,
        "memory_per_cpu_max": 6.5,
    }
]

# https://github.com/virtual-kubelet/azure-aci (the ACI provider passes CPU in 0.01 cores
# and memory in 0.1 GB steps) and https://learn.microsoft.com/azure/container-instances/container-instances-resource-and-quota-limits
# (a Linux container group: up to 4 vCPU and 16 GB in most regions).
_ACI_SIZES = [
    {
        "cpu_min": "10m",
        "cpu_max": "4",
        "cpu_step": "10m",
        "memory_min": "100M",
        "memory_max": "16G",
        "memory_step": "100M",
    }
]

# https://cloud.baidu.com/doc/BCI/index.html: BCI takes CPU in 0.25 vCPU steps and memory
# in whole GiB. Unverified beyond that: the CCI-like ratio bound below is an assumption;
# override `pod_sizes` for a Baidu region whose spec list you have checked.
_BCI_SIZES = [
    {
        "cpu_min": "0.25",
        "cpu_max": "64",
        "cpu_step": "0.25",
        "memory_min": "1Gi",
        "memory_max": "512Gi",
        "memory_step": "1Gi",
        "memory_per_cpu_min": 1,
        "memory_per_cpu_max": 8,
    }
]

# What a regions file may leave out, per kind. Prices are per vCPU-hour and per GiB-hour
# of the billed size, in `currency`; cold starts are typical seconds from pod creation to
# a running container.
KIND_DEFAULTS: dict[ServerlessKind, dict[str, Any]] = {
    ServerlessKind.FARGATE: {
        # https://aws.amazon.com/fargate/pricing/ (us-east-1, Linux/x86, per-second billing)
        "price_per_vcpu_hour": 0.04048,
        "price_per_gib_hour": 0.004445,
        "currency": "USD",
        "cold_start_seconds": 60.0,
        "memory_overhead": "256Mi",
        "max_pods": 1000,
        "max_cpu": "1000",
        "max_memory": "4000Gi",
        "pod_sizes": _FARGATE_SIZES,
        "namespaces": [DEFAULT_TASK_NAMESPACE],
    },
    ServerlessKind.ACI: {
        # https://azure.microsoft.com/pricing/details/container-instances/ (East US, Linux)
        "price_per_vcpu_hour": 0.0405,
        "price_per_gib_hour": 0.00445,
        "currency": "USD",
        "cold_start_seconds": 45.0,
        # https://learn.microsoft.com/azure/aks/virtual-nodes-v2: up to 200 pods per node.
        "max_pods": 200,
        "max_cpu": "800",
        "max_memory": "3200Gi",
        "pod_sizes": _ACI_SIZES,
    },
    ServerlessKind.AUTOPILOT: {
        # https://cloud.google.com/kubernetes-engine/pricing#autopilot_mode (us-central1,
        # general-purpose Pods)
        "price_per_vcpu_hour": 0.0445,
        "price_per_gib_hour": 0.0049225,
        "currency": "USD",
        # New nodes of the compute class are provisioned for the burst: slower than the
        # other kinds' pods.
        "cold_start_seconds": 75.0,
        "max_pods": 1000,
        "max_cpu": "1000",
        "max_memory": "4000Gi",
        "pod_sizes": _AUTOPILOT_SIZES,
        "compute_class": GKE_BURST_CLASS,
    },
    ServerlessKind.ECI: {
        # https://www.alibabacloud.com/help/en/eci/billing-overview (pay-as-you-go,
        # China (Hangzhou): per vCPU-second and per GiB-second, shown here per hour)
        "price_per_vcpu_hour": 0.1764,
        "price_per_gib_hour": 0.0263,
        "currency": "CNY",
        "cold_start_seconds": 15.0,
        "max_pods": 1000,
        "max_cpu": "1000",
        "max_memory": "4000Gi",
        "pod_sizes": _ECI_SIZES,
        "eci_steering": "label",
    },
    ServerlessKind.TKE_SUPERNODE: {
        # https://cloud.tencent.com/document/product/457/39806 (super node pay-as-you-go
        # prices, Guangzhou): approximate; state your own.
        "price_per_vcpu_hour": 0.12,
        "price_per_gib_hour": 0.06,
        "currency": "CNY",
        "cold_start_seconds": 20.0,
        # https://intl.cloud.tencent.com/document/product/457/39760: 100 pods by default.
        "max_pods": 100,
        "max_cpu": "400",
        "max_memory": "1600Gi",
        "pod_sizes": _TKE_SIZES,
    },
    ServerlessKind.BCI: {
        # https://cloud.baidu.com/doc/BCI/s/Bkbxtvfq3 (pay-as-you-go): approximate; state
        # your own.
        "price_per_vcpu_hour": 0.18,
        "price_per_gib_hour": 0.025,
        "currency": "CNY",
        "cold_start_seconds": 20.0,
        "max_pods": 500,
        "max_cpu": "500",
        "max_memory": "2000Gi",
        "pod_sizes": _BCI_SIZES,
    },
    ServerlessKind.CCI: {
        # https://www.huaweicloud.com/pricing.html#/cci (pay-per-use, CN North-Beijing4):
        # approximate; state your own.
        "price_per_vcpu_hour": 0.21,
        "price_per_gib_hour": 0.022,
        "currency": "CNY",
        "cold_start_seconds": 15.0,
        "max_pods": 500,
        "max_cpu": "500",
        "max_memory": "2000Gi",
        "pod_sizes": _CCI_SIZES,
        "cci_policy": "enforce",
    },
}

# Defaults every kind shares.
COMMON_DEFAULTS: dict[str, Any] = {"memory_overhead": "0", "namespaces": []}


def is_serverless_node(node: dict[str, Any]) -> bool:
    """A node that stands for serverless capacity rather than a machine of a pool.

    Virtual kubelets (ACI, ECI, BCI, CCI) label their node `type: virtual-kubelet`, TKE
    super nodes are `node.kubernetes.io/instance-type: eklet`, and Fargate's per-pod nodes
    `eks.amazonaws.com/compute-type: fargate`; GKE's nodes of the burst compute class
    are machines, but not of a pool Meridian sizes. Their allocatable is a quota or
    another autoscaler's, so it must not count as room in the pools' water level.
    """
    labels = (node.get("metadata") or {}).get("labels") or {}
    return (
        labels.get("type") == "virtual-kubelet"
        or labels.get("node.kubernetes.io/instance-type") == "eklet"
        or labels.get("eks.amazonaws.com/compute-type") == "fargate"
        or labels.get("cloud.google.com/compute-class") == GKE_BURST_CLASS
    )
