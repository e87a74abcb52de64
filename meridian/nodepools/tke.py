"""Tencent Cloud TKE node pools through tencentcloud-sdk-python-tke (v20180525).

Config: `cluster_id`, `node_pool_id` (defaults to the pool name), `tencent_region`
(e.g. `ap-guangzhou`), `node_name` (`lan-ip`, TKE's default node naming, or
`instance-id` for clusters that name nodes by instance id), `autoscaler_enabled`
(optional override).

- Read: `DescribeClusterNodePoolDetail` (DesiredNodesNum, MinNodesNum, MaxNodesNum,
  AutoscalingGroupStatus) and `DescribeClusterInstances` filtered by `nodepool-id`.
- Ownership: a pool whose scaling group reports `AutoscalingGroupStatus: enabled` has
  TKE's cluster autoscaler on, so Meridian only moves its bounds.
- Size: `ModifyNodePoolDesiredCapacityAboutAsg`. Bounds: `ModifyClusterNodePool`
  (MinNodesNum/MaxNodesNum; TKE keeps bounds for every pool, manual ones included).
- Remove: `DeleteClusterInstances` (terminate) for the named instances first — so the
  scaling group cannot pick a busy node itself — then the desired count is lowered by as
  many if TKE has not done so already.
- Credentials: the SDK's `DefaultCredentialProvider` (env, profile, CVM role, OIDC).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolProvider,
    NodePoolThrottled,
    PoolState,
    clamp,
    require,
    short,
)

PAGE_SIZE = 100
GONE_STATES = frozenset({"deleting", "deleted", "failed"})
RETRYABLE_PREFIXES = ("InternalError", "ResourceUnavailable", "ResourceInUse", "FailedOperation")


class TkeNodePoolProvider(NodePoolProvider):
    driver = "tke"
    pool_id_key = "node_pool_id"

    def __init__(self, pool_config: Mapping[str, Any], *, client: Any = None) -> None:
        super().__init__(pool_config)
        require(self.config, "cluster_id")
        self.cluster_id = str(self.config["cluster_id"])
        if client is None:
            from tencentcloud.common.credential import DefaultCredentialProvider
            from tencentcloud.tke.v20180525 import tke_client

            require(self.config, "tencent_region")
            credential = DefaultCredentialProvider().get_credential()
            client = tke_client.TkeClient(credential, str(self.config["tencent_region"]))
        self.client = client

    def _call(self, action: str, params: dict[str, Any]) -> Any:
        from tencentcloud.tke.v20180525 import models

        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        return getattr(self.client, action)(request)

    def _instances(self, pool_id: str) -> dict[str, str]:
        """Kubernetes node name -> CVM instance id."""
        by_name: dict[str, str] = {}
        offset = 0
        use_ip = self.config.get("node_name", "lan-ip") == "lan-ip"
        while True:
            response = self._call(
                "DescribeClusterInstances",
                {
                    "ClusterId": self.cluster_id,
                    "Offset": offset,
                    "Limit": PAGE_SIZE,
                    "Filters": [{"Name": "nodepool-id", "Values": [pool_id]}],
                },
            )
            batch = response.InstanceSet or []
            for instance in batch:
                if str(instance.InstanceState or "").lower() in GONE_STATES:
                    continue
                name = instance.LanIP if use_ip and instance.LanIP else instance.InstanceId
                by_name[str(name)] = str(instance.InstanceId)
            offset += len(batch)
            if not batch or offset >= int(response.TotalCount or 0):
                return by_name

    def _list_nodes(self, pool_id: str) -> list[str]:
        return sorted(self._instances(pool_id))

    def _describe(self, pool_id: str) -> PoolState:
        detail = self._call(
            "DescribeClusterNodePoolDetail", {"ClusterId": self.cluster_id, "NodePoolId": pool_id}
        ).NodePool
        nodes = self._list_nodes(pool_id)
        if "autoscaler_enabled" in self.config:
            auto = bool(self.config["autoscaler_enabled"])
        else:
            auto = str(detail.AutoscalingGroupStatus or "").lower() == "enabled"
        return PoolState(
            name=pool_id,
            min=int(detail.MinNodesNum or 0),
            desired=int(detail.DesiredNodesNum or 0),
            max=int(detail.MaxNodesNum or 0),
            current=len(nodes),
            autoscaler_enabled=auto,
            nodes=nodes,
        )

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        self._call(
            "ModifyNodePoolDesiredCapacityAboutAsg",
            {"ClusterId": self.cluster_id, "NodePoolId": pool_id, "DesiredCapacity": desired},
        )

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        self._call(
            "ModifyClusterNodePool",
            {
                "ClusterId": self.cluster_id,
                "NodePoolId": pool_id,
                "MinNodesNum": min_size,
                "MaxNodesNum": max_size,
            },
        )
        if (
            not state.autoscaler_enabled
            and clamp(state.desired, min_size, max_size) != state.desired
        ):
            self._set_desired(pool_id, clamp(state.desired, min_size, max_size), state)

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        instances = self._instances(pool_id)
        missing = [n for n in node_names if n not in instances]
        if missing:
            raise NodePoolInvalidRequest(f"tke pool {pool_id}: no instance for {missing}")
        self._call(
            "DeleteClusterInstances",
            {
                "ClusterId": self.cluster_id,
                "InstanceIds": [instances[n] for n in node_names],
                "InstanceDeleteMode": "terminate",
            },
        )
        target = max(state.min, state.desired - len(node_names))
        if not state.autoscaler_enabled and self._describe_desired(pool_id) > target:
            self._set_desired(pool_id, target, state)

    def _describe_desired(self, pool_id: str) -> int:
        detail = self._call(
            "DescribeClusterNodePoolDetail", {"ClusterId": self.cluster_id, "NodePoolId": pool_id}
        ).NodePool
        return int(detail.DesiredNodesNum or 0)

    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
            TencentCloudSDKException,
        )

        if not isinstance(exc, TencentCloudSDKException):
            return None
        code = str(exc.get_code() or "")
        message = f"tke {self.cluster_id}/{pool}: {code}: {short(exc.get_message())}"
        if code.startswith("RequestLimitExceeded"):
            # TKE's throttling answer carries no retry-after; the caller backs off.
            return NodePoolThrottled(message, None)
        if code.startswith("ResourceNotFound"):
            return NodePoolNotFound(message)
        if code == "ClientNetworkError" or code.startswith(RETRYABLE_PREFIXES):
            return NodePoolError(message, retryable=True)
        return NodePoolError(message, retryable=False)
