"""AWS EKS managed node groups through boto3.

Config: `cluster`, `nodegroup` (defaults to the pool name), `aws_region` (optional; the
SDK's standard chain decides otherwise), `autoscaler_enabled` (optional override).

Listing nodes — decision: through the node group's Auto Scaling group(s) and EC2, not
through the `eks.amazonaws.com/nodegroup` node label. The label would need the region's
Kubernetes API inside a cloud adapter, and removal needs instance ids anyway; the ASG is
the source of truth for which instances belong to the group, and each instance's
`PrivateDnsName` is the Kubernetes node name EKS registers (for both IP-name and
resource-name hostname types, because EC2 reports the hostname the instance was given).

Ownership: EKS has no built-in autoscaler; the Cluster Autoscaler (or Karpenter) owns a
group when its ASG carries the auto-discovery tag `k8s.io/cluster-autoscaler/enabled`
set to true, so that tag (or an explicit `autoscaler_enabled` in config) turns on the
one-owner guard.

Removing nodes terminates each instance with `ShouldDecrementDesiredCapacity=True`, so
the ASG does not replace it; EKS reconciles the node group's desiredSize from the ASG.
Credentials come only from boto3's standard chain (env, profile, role).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolProvider,
    NodePoolThrottled,
    PoolState,
    clamp,
    require,
    retryable_status,
    short,
)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
    }
)
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "NotFoundException"})
# The node group is mid-update; AWS accepts the change once that finishes.
BUSY_CODES = frozenset(
    {"ResourceInUseException", "ScalingActivityInProgress", "ResourceContention"}
)
CLUSTER_AUTOSCALER_TAG = "k8s.io/cluster-autoscaler/enabled"
GONE_STATES = frozenset({"Terminating", "Terminating:Wait", "Terminating:Proceed", "Terminated"})


class EksNodeGroupProvider(NodePoolProvider):
    driver = "eks"
    pool_id_key = "nodegroup"

    def __init__(
        self,
        pool_config: Mapping[str, Any],
        *,
        eks: Any = None,
        autoscaling: Any = None,
        ec2: Any = None,
        session: Any = None,
    ) -> None:
        super().__init__(pool_config)
        require(self.config, "cluster")
        self.cluster = str(self.config["cluster"])
        if eks is None or autoscaling is None or ec2 is None:
            session = session or boto3.session.Session(
                region_name=self.config.get("aws_region") or None
            )
        self.eks = eks or session.client("eks")
        self.autoscaling = autoscaling or session.client("autoscaling")
        self.ec2 = ec2 or session.client("ec2")

    # ------------------------------------------------------------------ reads
    def _nodegroup(self, pool_id: str) -> dict[str, Any]:
        response = self.eks.describe_nodegroup(clusterName=self.cluster, nodegroupName=pool_id)
        nodegroup: dict[str, Any] = response["nodegroup"]
        return nodegroup

    def _groups(self, nodegroup: dict[str, Any]) -> list[dict[str, Any]]:
        names = [g["name"] for g in nodegroup.get("resources", {}).get("autoScalingGroups", [])]
        if not names:
            return []
        groups: list[dict[str, Any]] = []
        paginator = self.autoscaling.get_paginator("describe_auto_scaling_groups")
        for page in paginator.paginate(AutoScalingGroupNames=names):
            groups.extend(page["AutoScalingGroups"])
        return groups

    def _instances(self, groups: list[dict[str, Any]]) -> dict[str, str]:
        """Live instance id -> Kubernetes node name (EC2 private DNS name)."""
        ids = sorted(
            i["InstanceId"]
            for g in groups
            for i in g.get("Instances", [])
            if i.get("LifecycleState") not in GONE_STATES
        )
        if not ids:
            return {}
        names: dict[str, str] = {}
        paginator = self.ec2.get_paginator("describe_instances")
        for page in paginator.paginate(InstanceIds=ids):
            for reservation in page["Reservations"]:
                for instance in reservation["Instances"]:
                    # A just-launched instance may not have its DNS name yet; fall back
                    # to the id so it still counts and can still be removed.
                    names[instance["InstanceId"]] = (
                        instance.get("PrivateDnsName") or instance["InstanceId"]
                    )
        return {iid: names.get(iid, iid) for iid in ids}

    def _autoscaler_enabled(self, groups: list[dict[str, Any]]) -> bool:
        if "autoscaler_enabled" in self.config:
            return bool(self.config["autoscaler_enabled"])
        return any(
            tag.get("Key") == CLUSTER_AUTOSCALER_TAG and str(tag.get("Value")).lower() == "true"
            for g in groups
            for tag in g.get("Tags", [])
        )

    def _describe(self, pool_id: str) -> PoolState:
        nodegroup = self._nodegroup(pool_id)
        scaling = nodegroup.get("scalingConfig", {})
        groups = self._groups(nodegroup)
        instances = self._instances(groups)
        return PoolState(
            name=pool_id,
            min=int(scaling.get("minSize", 0)),
            desired=int(scaling.get("desiredSize", 0)),
            max=int(scaling.get("maxSize", 0)),
            current=len(instances),
            autoscaler_enabled=self._autoscaler_enabled(groups),
            nodes=sorted(instances.values()),
        )

    # ----------------------------------------------------------------- writes
    def _update(self, pool_id: str, min_size: int, max_size: int, desired: int) -> None:
        self.eks.update_nodegroup_config(
            clusterName=self.cluster,
            nodegroupName=pool_id,
            scalingConfig={"minSize": min_size, "maxSize": max_size, "desiredSize": desired},
        )

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        self._update(pool_id, state.min, state.max, desired)

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        # EKS rejects a scalingConfig whose desiredSize lies outside the new bounds.
        self._update(pool_id, min_size, max_size, clamp(state.desired, min_size, max_size))

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        instances = self._instances(self._groups(self._nodegroup(pool_id)))
        by_name = {name: iid for iid, name in instances.items()}
        missing = [n for n in node_names if n not in by_name]
        if missing:
            raise NodePoolInvalidRequest(f"nodegroup {pool_id}: no instance for {missing}")
        for name in node_names:
            self.autoscaling.terminate_instance_in_auto_scaling_group(
                InstanceId=by_name[name], ShouldDecrementDesiredCapacity=True
            )

    # ----------------------------------------------------------------- errors
    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = f"eks {self.cluster}/{pool}: {code}: {short(error.get('Message', ''))}"
            if code in THROTTLING_CODES or status == 429:
                # AWS throttling responses carry no Retry-After; the caller backs off.
                return NodePoolThrottled(message, None)
            if code in NOT_FOUND_CODES:
                return NodePoolNotFound(message)
            if code in BUSY_CODES:
                return NodePoolError(message, retryable=True)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, NoCredentialsError):
            return NodePoolError(f"eks {self.cluster}/{pool}: no AWS credentials", retryable=False)
        if isinstance(exc, BotoCoreError):
            return NodePoolError(f"eks {self.cluster}/{pool}: {type(exc).__name__}")
        return None
