"""Azure AKS agent pools through azure-mgmt-containerservice.

Config: `subscription_id`, `resource_group`, `cluster`, `agent_pool` (defaults to the
pool name), and `min`/`max` (the regions file's bounds, used for manual pools).

- Size: the agent pool's `count` (a PUT of the whole agent pool, as the API requires).
- Ownership: `enable_auto_scaling` means the cluster autoscaler owns `count`; Meridian
  then only changes `min_count`/`max_count`. A manual pool has no bounds in Azure, so its
  bounds are the regions file's and `set_bounds` on it is refused.
- Nodes: `machines.list`; an AKS machine's name is its Kubernetes node name
  (`aks-<pool>-<id>-vmss00000N`). Removal: `agent_pools.begin_delete_machines`, which
  also lowers `count`.
- Long-running operations are started, not waited for (`wait: true` in config waits):
  a scale can take minutes and the control loop observes its progress on later ticks
  instead of holding an activity thread.
- Credentials: `DefaultAzureCredential` (env, workload identity, managed identity, CLI).
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
    parse_retry_after,
    require,
    retryable_status,
    short,
)

# The SDK's own retry policy honours Retry-After; keep it short so the activity's retry
# policy, which sees the mapped error, stays in charge.
SDK_RETRIES = 2


class AksAgentPoolProvider(NodePoolProvider):
    driver = "aks"
    pool_id_key = "agent_pool"

    def __init__(
        self, pool_config: Mapping[str, Any], *, client: Any = None, credential: Any = None
    ) -> None:
        super().__init__(pool_config)
        require(self.config, "resource_group", "cluster")
        self.resource_group = str(self.config["resource_group"])
        self.cluster = str(self.config["cluster"])
        if client is None:
            from azure.identity import DefaultAzureCredential
            from azure.mgmt.containerservice import ContainerServiceClient

            require(self.config, "subscription_id")
            client = ContainerServiceClient(
                credential or DefaultAzureCredential(),
                str(self.config["subscription_id"]),
                retry_total=SDK_RETRIES,
            )
        self.client = client

    def _where(self, pool_id: str) -> tuple[str, str, str]:
        return self.resource_group, self.cluster, pool_id

    def _polling(self) -> dict[str, Any]:
        return {} if self.config.get("wait") else {"polling": False}

    def _describe(self, pool_id: str) -> PoolState:
        agent_pool = self.client.agent_pools.get(*self._where(pool_id))
        nodes = self._list_nodes(pool_id)
        auto = bool(agent_pool.enable_auto_scaling)
        count = int(agent_pool.count or 0)
        return PoolState(
            name=pool_id,
            min=int(agent_pool.min_count or 0) if auto else int(self.config.get("min", 0)),
            desired=count,
            max=int(agent_pool.max_count or 0) if auto else int(self.config.get("max", count)),
            current=len(nodes),
            autoscaler_enabled=auto,
            nodes=nodes,
        )

    def _list_nodes(self, pool_id: str) -> list[str]:
        return sorted(str(m.name) for m in self.client.machines.list(*self._where(pool_id)))

    def _put(self, pool_id: str, **changes: int) -> None:
        # PUT replaces the pool: start from what Azure has, change only our fields.
        agent_pool = self.client.agent_pools.get(*self._where(pool_id))
        for field, value in changes.items():
            setattr(agent_pool, field, value)
        self.client.agent_pools.begin_create_or_update(
            *self._where(pool_id), agent_pool, **self._polling()
        )

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        self._put(pool_id, count=desired)

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        if not state.autoscaler_enabled:
            raise NodePoolInvalidRequest(
                f"aks pool {pool_id} is manual: its bounds live in the regions file"
            )
        self._put(pool_id, min_count=min_size, max_count=max_size)

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        from azure.mgmt.containerservice.models import AgentPoolDeleteMachinesParameter

        self.client.agent_pools.begin_delete_machines(
            *self._where(pool_id),
            AgentPoolDeleteMachinesParameter(machine_names=node_names),
            **self._polling(),
        )

    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        where = f"aks {self.cluster}/{pool}"
        if isinstance(exc, ResourceNotFoundError):
            return NodePoolNotFound(f"{where}: not found")
        if isinstance(exc, ClientAuthenticationError):
            return NodePoolError(f"{where}: authentication failed", retryable=False)
        if isinstance(exc, HttpResponseError):
            status = exc.status_code
            code = getattr(getattr(exc, "error", None), "code", None) or ""
            message = f"{where}: HTTP {status} {code}: {short(exc.message)}"
            if status == 429:
                headers = getattr(exc.response, "headers", None) or {}
                return NodePoolThrottled(message, parse_retry_after(headers.get("Retry-After")))
            if status == 409:  # another operation is in progress on the pool
                return NodePoolError(message, retryable=True)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return NodePoolError(f"{where}: {type(exc).__name__}", retryable=True)
        return None
