"""Alibaba Cloud ACK node pools through alibabacloud_cs20151215 (Container Service).

Config: `cluster_id`, `nodepool_id` (defaults to the pool name), `alibaba_region` (for
the default endpoint `cs.<region>.aliyuncs.com`) or `endpoint`, and `min`/`max` (the
regions file's bounds, for pools without ACK auto scaling).

- Read: `DescribeClusterNodePoolDetail` (scaling_group.desired_size; auto_scaling
  enable/min_instances/max_instances) and `DescribeClusterNodes` filtered by node pool
  (paged) for the node names.
- Size: `ModifyClusterNodePool` with `scaling_group.desired_size`; bounds (auto-scaled
  pools only): `ModifyClusterNodePool` with `auto_scaling.min_instances/max_instances`.
- Remove: `RemoveNodePoolNodes` by node name, releasing the ECS instances; ACK's own
  drain is off because Meridian has already drained the node its own way.
- Credentials: the Alibaba Cloud default credential chain (`alibabacloud_credentials`:
  env, profile, ECS RAM role, OIDC).
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

PAGE_SIZE = 100
GONE_STATES = frozenset({"removing", "deleting", "removed"})


def _only_set(model: type[Any]) -> type[Any]:
    """The generated scaling-group model serialises every unset list field as `[]`
    (data_disks, tags, ...). On a modify call an empty list can read as "clear it", so
    Meridian's requests carry only the fields it sets."""

    class OnlySet(model):  # type: ignore[misc]
        def to_map(self) -> dict[str, Any]:
            return {k: v for k, v in super().to_map().items() if v != []}

    return OnlySet


class AckNodePoolProvider(NodePoolProvider):
    driver = "ack"
    pool_id_key = "nodepool_id"

    def __init__(self, pool_config: Mapping[str, Any], *, client: Any = None) -> None:
        super().__init__(pool_config)
        require(self.config, "cluster_id")
        self.cluster_id = str(self.config["cluster_id"])
        if client is None:
            from alibabacloud_credentials.client import Client as CredentialClient
            from alibabacloud_cs20151215.client import Client
            from alibabacloud_tea_openapi.utils_models import Config

            region = self.config.get("alibaba_region")
            endpoint = self.config.get("endpoint") or (region and f"cs.{region}.aliyuncs.com")
            if not endpoint:
                raise ValueError("node pool config lacks alibaba_region or endpoint")
            client = Client(
                Config(credential=CredentialClient(), region_id=region, endpoint=endpoint)
            )
        self.client = client

    def _detail(self, pool_id: str) -> Any:
        return self.client.describe_cluster_node_pool_detail(self.cluster_id, pool_id).body

    def _list_nodes(self, pool_id: str) -> list[str]:
        from alibabacloud_cs20151215 import models

        names: list[str] = []
        page = 1
        while True:
            request = models.DescribeClusterNodesRequest(
                nodepool_id=pool_id, page_number=str(page), page_size=str(PAGE_SIZE)
            )
            body = self.client.describe_cluster_nodes(self.cluster_id, request).body
            batch = body.nodes or []
            names.extend(
                n.node_name or n.instance_id
                for n in batch
                if str(n.state or "").lower() not in GONE_STATES
            )
            total = int(getattr(body.page, "total_count", 0) or 0)
            if not batch or page * PAGE_SIZE >= total:
                return sorted(names)
            page += 1

    def _describe(self, pool_id: str) -> PoolState:
        detail = self._detail(pool_id)
        auto = detail.auto_scaling
        enabled = bool(auto is not None and auto.enable)
        nodes = self._list_nodes(pool_id)
        desired = int(detail.scaling_group.desired_size or 0) if detail.scaling_group else 0
        return PoolState(
            name=pool_id,
            min=int(auto.min_instances or 0) if enabled else int(self.config.get("min", 0)),
            desired=desired,
            max=int(auto.max_instances or 0) if enabled else int(self.config.get("max", desired)),
            current=len(nodes),
            autoscaler_enabled=enabled,
            nodes=nodes,
        )

    def _modify(self, pool_id: str, request: Any) -> None:
        self.client.modify_cluster_node_pool(self.cluster_id, pool_id, request)

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        from alibabacloud_cs20151215 import models

        group = _only_set(models.ModifyClusterNodePoolRequestScalingGroup)(desired_size=desired)
        self._modify(pool_id, models.ModifyClusterNodePoolRequest(scaling_group=group))

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        if not state.autoscaler_enabled:
            raise NodePoolInvalidRequest(
                f"ack pool {pool_id} has no auto scaling: its bounds live in the regions file"
            )
        from alibabacloud_cs20151215 import models

        auto = models.ModifyClusterNodePoolRequestAutoScaling(
            enable=True, min_instances=min_size, max_instances=max_size
        )
        self._modify(pool_id, models.ModifyClusterNodePoolRequest(auto_scaling=auto))

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        from alibabacloud_cs20151215 import models

        request = models.RemoveNodePoolNodesRequest(
            nodes=node_names, release_node=True, drain_node=False
        )
        self.client.remove_node_pool_nodes(self.cluster_id, pool_id, request)

    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        from alibabacloud_tea_openapi.exceptions import AlibabaCloudException, ThrottlingException

        where = f"ack {self.cluster_id}/{pool}"
        if isinstance(exc, AlibabaCloudException):
            status = exc.status_code
            code = str(exc.code or "")
            message = f"{where}: {code}: {short(exc.message)}"
            if isinstance(exc, ThrottlingException) or code.startswith("Throttling"):
                # Alibaba's x-acs-retry-after is in milliseconds.
                after = getattr(exc, "retry_after", None)
                return NodePoolThrottled(message, after / 1000 if after else None)
            if status == 404 or "NotFound" in code:
                return NodePoolNotFound(message)
            return NodePoolError(message, retryable=retryable_status(status))
        from darabonba.exceptions import DaraException

        if isinstance(exc, DaraException | OSError):
            return NodePoolError(f"{where}: {type(exc).__name__}", retryable=True)
        return None
