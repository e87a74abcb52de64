"""Huawei Cloud CCE node pools through huaweicloudsdkcce v3.

Config: `cluster_id`, `nodepool_id` (defaults to the pool name), `huawei_region` (e.g.
`cn-north-4`), `project_id` (optional; else from the credential chain), `node_name`
(`private-ip`, CCE's default Kubernetes node name, or `name` for the CCE node name),
`min`/`max` (the regions file's bounds, for pools without CCE autoscaling).

- Read: `ShowNodePool` (spec.initialNodeCount is the pool's target; spec.autoscaling
  enable/minNodeCount/maxNodeCount) and `ListNodes` filtered by the node's
  `kubernetes.io/node-pool.id` annotation.
- Size: `ScaleNodePool` (`desiredNodeCount` on the `default` scale group).
- Bounds (autoscaled pools only): `UpdateNodePool` with spec.autoscaling and
  `ignoreInitialNodeCount`, so the update cannot resize the pool as a side effect.
- Remove: `DeleteNode` per node; without `nodepoolScaleDown=NoScaleDown` CCE lowers the
  pool's count by the node, which is what removal means here.
- Credentials: huaweicloudsdkcore's basic provider chain (env, profile, ECS metadata).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from meridian.nodepools.base import (
    NodePoolError,
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolProvider,
    NodePoolThrottled,
    PoolState,
    require,
    retryable_status,
    short,
)

POOL_ANNOTATION = "kubernetes.io/node-pool.id"
GONE_PHASES = frozenset({"Deleting", "Error"})
PAGE_LIMIT = 500


class HuaweiCceNodePoolProvider(NodePoolProvider):
    driver = "cce-huawei"
    pool_id_key = "nodepool_id"

    def __init__(self, pool_config: Mapping[str, Any], *, client: Any = None) -> None:
        super().__init__(pool_config)
        require(self.config, "cluster_id")
        self.cluster_id = str(self.config["cluster_id"])
        if client is None:
            from huaweicloudsdkcce.v3 import CceClient
            from huaweicloudsdkcce.v3.region.cce_region import CceRegion
            from huaweicloudsdkcore.auth.provider import CredentialProviderChain

            require(self.config, "huawei_region")
            credentials = CredentialProviderChain.get_basic().get_credentials()
            if self.config.get("project_id"):
                credentials = credentials.with_project_id(str(self.config["project_id"]))
            client = (
                CceClient.new_builder()
                .with_credentials(credentials)
                .with_region(CceRegion.value_of(str(self.config["huawei_region"])))
                .build()
            )
        self.client = client

    def _pool(self, pool_id: str) -> Any:
        from huaweicloudsdkcce.v3 import ShowNodePoolRequest

        return self.client.show_node_pool(
            ShowNodePoolRequest(cluster_id=self.cluster_id, nodepool_id=pool_id)
        )

    def _nodes(self, pool_id: str) -> dict[str, str]:
        """Kubernetes node name -> CCE node id."""
        from huaweicloudsdkcce.v3 import ListNodesRequest

        by_name: dict[str, str] = {}
        marker: str | None = None
        use_ip = self.config.get("node_name", "private-ip") == "private-ip"
        while True:
            response = self.client.list_nodes(
                ListNodesRequest(cluster_id=self.cluster_id, limit=PAGE_LIMIT, marker=marker)
            )
            for node in response.items or []:
                annotations = node.metadata.annotations or {}
                if annotations.get(POOL_ANNOTATION) != pool_id:
                    continue
                if node.status is not None and node.status.phase in GONE_PHASES:
                    continue
                ip = node.status.private_ip if node.status is not None else None
                by_name[str(ip if use_ip and ip else node.metadata.name)] = str(node.metadata.uid)
            marker = (
                getattr(response.page_info, "next_marker", None) if response.page_info else None
            )
            if not marker:
                return by_name

    def _list_nodes(self, pool_id: str) -> list[str]:
        return sorted(self._nodes(pool_id))

    def _describe(self, pool_id: str) -> PoolState:
        pool = self._pool(pool_id)
        auto = pool.spec.autoscaling
        enabled = bool(auto is not None and auto.enable)
        nodes = self._list_nodes(pool_id)
        desired = int(pool.spec.initial_node_count or 0)
        return PoolState(
            name=pool_id,
            min=int(auto.min_node_count or 0) if enabled else int(self.config.get("min", 0)),
            desired=desired,
            max=int(auto.max_node_count or 0) if enabled else int(self.config.get("max", desired)),
            current=len(nodes),
            autoscaler_enabled=enabled,
            nodes=nodes,
        )

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        from huaweicloudsdkcce.v3 import (
            ScaleNodePoolRequest,
            ScaleNodePoolRequestBody,
            ScaleNodePoolSpec,
        )

        body = ScaleNodePoolRequestBody(
            kind="NodePool",
            api_version="v3",
            spec=ScaleNodePoolSpec(desired_node_count=desired, scale_groups=["default"]),
        )
        self.client.scale_node_pool(
            ScaleNodePoolRequest(cluster_id=self.cluster_id, nodepool_id=pool_id, body=body)
        )

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        from huaweicloudsdkcce.v3 import (
            NodePoolMetadataUpdate,
            NodePoolSpecUpdate,
            NodePoolUpdate,
            UpdateNodePoolRequest,
        )

        if not state.autoscaler_enabled:
            raise NodePoolInvalidRequest(
                f"cce pool {pool_id} has no autoscaling: its bounds live in the regions file"
            )
        pool = self._pool(pool_id)
        autoscaling = pool.spec.autoscaling
        autoscaling.min_node_count = min_size
        autoscaling.max_node_count = max_size
        body = NodePoolUpdate(
            metadata=NodePoolMetadataUpdate(name=pool.metadata.name),
            spec=NodePoolSpecUpdate(autoscaling=autoscaling, ignore_initial_node_count=True),
        )
        self.client.update_node_pool(
            UpdateNodePoolRequest(cluster_id=self.cluster_id, nodepool_id=pool_id, body=body)
        )

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        from huaweicloudsdkcce.v3 import DeleteNodeRequest

        ids = self._nodes(pool_id)
        missing = [n for n in node_names if n not in ids]
        if missing:
            raise NodePoolInvalidRequest(f"cce pool {pool_id}: no node for {missing}")
        for name in node_names:
            self.client.delete_node(
                DeleteNodeRequest(cluster_id=self.cluster_id, node_id=ids[name])
            )

    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        from huaweicloudsdkcore.exceptions import exceptions as hexc

        where = f"cce {self.cluster_id}/{pool}"
        if isinstance(exc, hexc.ServiceResponseException):
            status = exc.status_code
            code = str(exc.error_code or "")
            message = f"{where}: HTTP {status} {code}: {short(exc.error_msg)}"
            if status == 429 or code == "APIGW.0308":
                # APIGW.0308 is the gateway's flow control; no retry-after is given.
                return NodePoolThrottled(message, None)
            if status == 404:
                return NodePoolNotFound(message)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, hexc.ConnectionException | hexc.RequestTimeoutException):
            return NodePoolError(f"{where}: {type(exc).__name__}", retryable=True)
        return None
