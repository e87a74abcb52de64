"""kubesim pools, driven through kubesim's control API.

Contract (fixed by the lead):
- `GET  {control}/sim/regions/{region}/pools` -> `[{"name", "min", "max", "desired",
  "current", "ready", "cpu", "memory", "nodes": [...]}]`
- `POST {control}/sim/regions/{region}/pools/{pool}/scale` with `{"desired": N}`
- `DELETE {control}/sim/regions/{region}/nodes/{node}`

kubesim pools have no autoscaler of their own, and their bounds come from the regions
file (reported back by kubesim), so `set_bounds` is refused rather than silently ignored.
Config: `region` (required), `control_url` (required unless an `http_client` with a
`base_url` is injected).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

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

DEFAULT_TIMEOUT_SECONDS = 10.0


class KubesimPoolProvider(NodePoolProvider):
    driver = "kubesim"

    def __init__(
        self, pool_config: Mapping[str, Any], *, http_client: httpx.Client | None = None
    ) -> None:
        super().__init__(pool_config)
        require(self.config, "region")
        self.region = str(self.config["region"])
        if http_client is None:
            require(self.config, "control_url")
            http_client = httpx.Client(
                base_url=str(self.config["control_url"]), timeout=DEFAULT_TIMEOUT_SECONDS
            )
        self.http = http_client

    def _region_path(self) -> str:
        return f"/sim/regions/{self.region}"

    def _describe(self, pool_id: str) -> PoolState:
        response = self.http.get(f"{self._region_path()}/pools")
        response.raise_for_status()
        for item in response.json():
            if item.get("name") == pool_id:
                nodes = [str(n) for n in item.get("nodes", [])]
                return PoolState(
                    name=pool_id,
                    min=int(item["min"]),
                    desired=int(item["desired"]),
                    max=int(item["max"]),
                    current=int(item.get("current", len(nodes))),
                    autoscaler_enabled=False,
                    nodes=nodes,
                )
        raise NodePoolNotFound(f"kubesim region {self.region} has no pool {pool_id}")

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        response = self.http.post(
            f"{self._region_path()}/pools/{pool_id}/scale", json={"desired": desired}
        )
        response.raise_for_status()

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        raise NodePoolInvalidRequest(
            f"kubesim pool {pool_id}: bounds come from the regions file, not the API"
        )

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        for node in node_names:
            response = self.http.delete(f"{self._region_path()}/nodes/{node}")
            # A node already gone is the outcome we wanted (a retried call).
            if response.status_code != 404:
                response.raise_for_status()

    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            message = f"kubesim pool {pool}: HTTP {status}: {short(exc.response.text)}"
            if status == 429:
                retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
                return NodePoolThrottled(message, retry_after)
            if status == 404:
                return NodePoolNotFound(message)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, httpx.TransportError):
            return NodePoolError(f"kubesim pool {pool}: {type(exc).__name__}", retryable=True)
        return None
