"""Each cloud's burst pod carries exactly what the cloud's documentation says it needs.

One row per cloud; the page each row is pinned against is in the row.
"""

from __future__ import annotations

from typing import Any

import pytest

from meridian.serverless.models import ServerlessConfig
from meridian.serverless.steering import steer

BURST = {"meridian.io/capacity": "serverless"}

STEERING_TABLE: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        {"kind": "fargate", "namespaces": ["meridian", "batch"]},
        {
            "labels": BURST,
            "node_selector": {},
            "tolerations": [],
            "namespaces": ["meridian", "batch"],
        },
        # A pod matches a profile by its namespace and all of the selector's labels;
        # infra/terraform/modules/aws-eks selects meridian.io/capacity=serverless.
        "https://docs.aws.amazon.com/eks/latest/userguide/fargate-profile.html",
    ),
    (
        {"kind": "aci"},
        {
            "labels": BURST,
            "node_selector": {"kubernetes.io/role": "agent", "type": "virtual-kubelet"},
            "tolerations": [
                {"key": "virtual-kubelet.io/provider", "operator": "Exists"},
                {"key": "azure.com/aci", "operator": "Exists", "effect": "NoSchedule"},
            ],
            "namespaces": [],
        },
        "https://learn.microsoft.com/azure/aks/virtual-nodes-cli#deploy-a-sample-app",
    ),
    (
        {"kind": "autopilot"},
        {
            "labels": BURST,
            "node_selector": {"cloud.google.com/compute-class": "meridian-burst"},
            "tolerations": [],
            "namespaces": [],
        },
        "https://cloud.google.com/kubernetes-engine/docs/how-to/autopilot-compute-classes",
    ),
    (
        {"kind": "eci"},
        {
            "labels": {**BURST, "alibabacloud.com/eci": "true"},
            "node_selector": {},
            "tolerations": [],
            "namespaces": [],
        },
        "https://www.alibabacloud.com/help/en/eci/user-guide/schedule-pods-to-virtual-kubelet",
    ),
    (
        {"kind": "eci", "eci_steering": "virtual-node"},
        {
            "labels": BURST,
            "node_selector": {"type": "virtual-kubelet"},
            "tolerations": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "operator": "Equal",
                    "value": "alibabacloud",
                    "effect": "NoSchedule",
                }
            ],
            "namespaces": [],
        },
        # "Virtual nodes in ACK clusters have the taint
        # virtual-kubelet.io/provider=alibabacloud:NoSchedule by default."
        "https://www.alibabacloud.com/help/en/document_detail/2369750.html",
    ),
    (
        {"kind": "tke-supernode"},
        {
            "labels": BURST,
            "node_selector": {"node.kubernetes.io/instance-type": "eklet"},
            "tolerations": [
                {
                    "key": "eks.tke.cloud.tencent.com/eklet",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
            "namespaces": [],
        },
        "https://www.tencentcloud.com/document/product/457/40027",
    ),
    (
        {"kind": "bci"},
        {
            "labels": BURST,
            "node_selector": {"type": "virtual-kubelet"},
            "tolerations": [
                {
                    "key": "virtual-kubelet.io/provider",
                    "operator": "Equal",
                    "value": "baidu",
                    "effect": "NoSchedule",
                }
            ],
            "namespaces": [],
        },
        "https://cloud.baidu.com/doc/BCI/s/jlm7f1c1j",
    ),
    (
        {"kind": "cci"},
        {
            "labels": {**BURST, "virtual-kubelet.io/burst-to-cci": "enforce"},
            "node_selector": {},
            "tolerations": [],
            "namespaces": [],
        },
        "https://support.huaweicloud.com/intl/en-us/usermanual-cci/cci_01_0116.html",
    ),
    (
        {"kind": "cci", "cci_policy": "auto"},
        {
            "labels": {**BURST, "virtual-kubelet.io/burst-to-cci": "auto"},
            "node_selector": {},
            "tolerations": [],
            "namespaces": [],
        },
        "https://support.huaweicloud.com/intl/en-us/usermanual-cci/cci_01_0116.html",
    ),
]


@pytest.mark.parametrize(
    ("declared", "expected", "page"),
    STEERING_TABLE,
    ids=[f"{row[0]['kind']}-{i}" for i, row in enumerate(STEERING_TABLE)],
)
def test_steering_matches_the_documentation(
    declared: dict[str, Any], expected: dict[str, Any], page: str
) -> None:
    steering = steer(ServerlessConfig.model_validate(declared))
    assert steering.labels == expected["labels"], page
    assert steering.node_selector == expected["node_selector"], page
    assert [t.to_api() for t in steering.tolerations] == expected["tolerations"], page
    assert steering.namespaces == expected["namespaces"], page
    assert steering.annotations == {}, page


def test_every_kind_has_a_row() -> None:
    from meridian.serverless.kinds import ServerlessKind

    assert {row[0]["kind"] for row in STEERING_TABLE} == {k.value for k in ServerlessKind}
