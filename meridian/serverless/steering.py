"""What a pod must carry to run on a region's serverless capacity, one function per cloud.

Each function returns exactly what the cloud's documentation says a pod needs (the page is
cited on the function and pinned by tests/serverless/test_steering.py). Every burst pod
also carries `meridian.io/capacity: serverless`, which is what the EKS module's Fargate
profile selects and how anyone reading the cluster tells burst pods apart.
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from meridian.serverless.kinds import (
    CAPACITY_SERVERLESS,
    GKE_BURST_CLASS,
    LABEL_CAPACITY,
    ServerlessKind,
)
from meridian.serverless.models import ServerlessConfig


class Toleration(BaseModel):
    """A pod toleration, in the Kubernetes API's field names."""

    key: str
    operator: str = "Exists"
    value: str | None = None
    effect: str | None = None

    def to_api(self) -> dict[str, str]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Steering(BaseModel):
    """Pod-template additions that put a pod on a region's serverless capacity."""

    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    # The namespaces the pod must run in to be selected (Fargate profiles select by
    # namespace); empty means any.
    namespaces: list[str] = Field(default_factory=list)


_BURST_LABELS = {LABEL_CAPACITY: CAPACITY_SERVERLESS}


def fargate(config: ServerlessConfig) -> Steering:
    """EKS on Fargate: a pod runs on Fargate when it matches a profile's selector, i.e.
    its namespace and all of the selector's labels. The EKS module's profile selects
    `meridian.io/capacity: serverless` in the task namespaces.
    https://docs.aws.amazon.com/eks/latest/userguide/fargate-profile.html"""
    return Steering(labels=dict(_BURST_LABELS), namespaces=list(config.namespaces))


def aci(config: ServerlessConfig) -> Steering:
    """AKS virtual nodes (ACI): the virtual node's selector and its taints' tolerations.
    https://learn.microsoft.com/azure/aks/virtual-nodes-cli#deploy-a-sample-app"""
    return Steering(
        labels=dict(_BURST_LABELS),
        node_selector={"kubernetes.io/role": "agent", "type": "virtual-kubelet"},
        tolerations=[
            Toleration(key="virtual-kubelet.io/provider", operator="Exists"),
            Toleration(key="azure.com/aci", effect="NoSchedule"),
        ],
    )


def autopilot(config: ServerlessConfig) -> Steering:
    """GKE compute classes: a nodeSelector on the class; GKE adds the toleration of the
    class's nodes itself. The GKE module creates the `meridian-burst` class.
    https://cloud.google.com/kubernetes-engine/docs/how-to/autopilot-compute-classes"""
    compute_class = config.compute_class or GKE_BURST_CLASS
    return Steering(
        labels=dict(_BURST_LABELS),
        node_selector={"cloud.google.com/compute-class": compute_class},
    )


def eci(config: ServerlessConfig) -> Steering:
    """ACK virtual node (ECI): the pod label `alibabacloud.com/eci: "true"` (ACK's webhook
    then schedules it to the virtual node), or the virtual node's selector and the
    toleration of its `virtual-kubelet.io/provider=alibabacloud` taint.
    https://www.alibabacloud.com/help/en/eci/user-guide/schedule-pods-to-virtual-kubelet"""
    if config.eci_steering == "virtual-node":
        return Steering(
            labels=dict(_BURST_LABELS),
            node_selector={"type": "virtual-kubelet"},
            tolerations=[
                Toleration(
                    key="virtual-kubelet.io/provider",
                    operator="Equal",
                    value="alibabacloud",
                    effect="NoSchedule",
                )
            ],
        )
    return Steering(labels={**_BURST_LABELS, "alibabacloud.com/eci": "true"})


def tke_supernode(config: ServerlessConfig) -> Steering:
    """TKE super nodes: nodeSelector `node.kubernetes.io/instance-type: eklet`, and the
    toleration of the super node's taint, which a pod needs to be placed there by force
    rather than only when the nodes run out.
    https://www.tencentcloud.com/document/product/457/40027 (Supernodes FAQs)"""
    return Steering(
        labels=dict(_BURST_LABELS),
        node_selector={"node.kubernetes.io/instance-type": "eklet"},
        tolerations=[
            Toleration(
                key="eks.tke.cloud.tencent.com/eklet", operator="Exists", effect="NoSchedule"
            )
        ],
    )


def bci(config: ServerlessConfig) -> Steering:
    """Baidu CCE virtual kubelet (BCI): nodeSelector `type: virtual-kubelet` and the
    toleration of `virtual-kubelet.io/provider=baidu:NoSchedule`.
    https://cloud.baidu.com/doc/BCI/s/jlm7f1c1j"""
    return Steering(
        labels=dict(_BURST_LABELS),
        node_selector={"type": "virtual-kubelet"},
        tolerations=[
            Toleration(
                key="virtual-kubelet.io/provider",
                operator="Equal",
                value="baidu",
                effect="NoSchedule",
            )
        ],
    )


def cci(config: ServerlessConfig) -> Steering:
    """Huawei CCE Cloud Bursting Engine for CCI: the pod label
    `virtual-kubelet.io/burst-to-cci`: `enforce` (only CCI) or `auto`.
    https://support.huaweicloud.com/intl/en-us/usermanual-cci/cci_01_0116.html"""
    policy = config.cci_policy or "enforce"
    return Steering(labels={**_BURST_LABELS, "virtual-kubelet.io/burst-to-cci": policy})


STEERING: dict[ServerlessKind, Callable[[ServerlessConfig], Steering]] = {
    ServerlessKind.FARGATE: fargate,
    ServerlessKind.ACI: aci,
    ServerlessKind.AUTOPILOT: autopilot,
    ServerlessKind.ECI: eci,
    ServerlessKind.TKE_SUPERNODE: tke_supernode,
    ServerlessKind.BCI: bci,
    ServerlessKind.CCI: cci,
}


def steer(config: ServerlessConfig) -> Steering:
    return STEERING[config.kind](config)
