"""GCP GKE node pools through google-cloud-container, plus the Compute API for nodes.

Config: `project`, `location` (region or zone of the cluster), `cluster`, `node_pool`
(defaults to the pool name), `min`/`max` (the regions file's bounds, for manual pools).

Sizes are per zone. `set_node_pool_size` takes a node count *per zone* of the pool's
`locations`, so a total `desired` becomes `ceil(desired / zones)` per zone (more, never
less, capacity than asked), or `floor` when rounding up would pass the pool's max; the
effective total is always a multiple of the zone count. Autoscaler bounds are set as
totals (`total_min_node_count` / `total_max_node_count`), which GKE spreads over zones.

GKE's API does not report a pool's current size or its nodes; the pool's managed
instance groups do. They are read (and specific nodes removed, with `deleteInstances`,
which lowers the group's target size as the Cluster Autoscaler does) through the Compute
REST API with google-auth's `AuthorizedSession`, so no extra SDK is needed. A GKE node's
name is its instance name.

Credentials: Application Default Credentials (`google.auth.default()`).
"""

from __future__ import annotations

import math
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

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GONE_ACTIONS = frozenset({"DELETING", "ABANDONING"})
HTTP_TIMEOUT_SECONDS = 30.0


def per_zone_count(desired: int, zones: int, max_total: int) -> int:
    per_zone = math.ceil(desired / zones)
    if per_zone * zones > max_total:
        per_zone = desired // zones
    return per_zone


class GkeNodePoolProvider(NodePoolProvider):
    driver = "gke"
    pool_id_key = "node_pool"

    def __init__(
        self,
        pool_config: Mapping[str, Any],
        *,
        client: Any = None,
        compute_session: Any = None,
        credentials: Any = None,
    ) -> None:
        super().__init__(pool_config)
        require(self.config, "project", "location", "cluster")
        if client is None or compute_session is None:
            import google.auth
            from google.auth.transport.requests import AuthorizedSession

            if credentials is None:
                credentials, _ = google.auth.default(scopes=[SCOPE])
            if compute_session is None:
                compute_session = AuthorizedSession(credentials)  # type: ignore[no-untyped-call]
        if client is None:
            from google.cloud import container_v1

            client = container_v1.ClusterManagerClient(credentials=credentials)
        self.client = client
        self.compute = compute_session

    def _name(self, pool_id: str) -> str:
        c = self.config
        return (
            f"projects/{c['project']}/locations/{c['location']}/clusters/{c['cluster']}"
            f"/nodePools/{pool_id}"
        )

    # ---------------------------------------------------------------- compute
    def _compute(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        response = self.compute.request(method, url, json=body, timeout=HTTP_TIMEOUT_SECONDS)
        response.raise_for_status()
        return response.json() if response.content else {}

    def _groups(self, node_pool: Any) -> list[tuple[str, int, dict[str, str]]]:
        """(group url, target size, node name -> zonal instance path) per group."""
        groups = []
        for url in node_pool.instance_group_urls:
            target = int(self._compute("GET", url).get("targetSize", 0))
            listed = self._compute("POST", f"{url}/listManagedInstances")
            instances: dict[str, str] = {}
            for item in listed.get("managedInstances", []):
                if item.get("currentAction") in GONE_ACTIONS:
                    continue
                link = str(item["instance"])
                zone_path = link[link.index("zones/") :] if "zones/" in link else link
                instances[link.rsplit("/", 1)[-1]] = zone_path
            groups.append((str(url), target, instances))
        return groups

    # ------------------------------------------------------------------ reads
    def _bounds(self, node_pool: Any) -> tuple[int, int, bool]:
        auto = node_pool.autoscaling
        zones = max(1, len(node_pool.locations))
        if auto is not None and auto.enabled:
            if auto.total_max_node_count:
                return int(auto.total_min_node_count), int(auto.total_max_node_count), True
            return int(auto.min_node_count) * zones, int(auto.max_node_count) * zones, True
        return int(self.config.get("min", 0)), int(self.config.get("max", 0)), False

    def _describe(self, pool_id: str) -> PoolState:
        node_pool = self.client.get_node_pool(name=self._name(pool_id))
        groups = self._groups(node_pool)
        low, high, auto = self._bounds(node_pool)
        nodes = sorted(name for _, _, instances in groups for name in instances)
        desired = sum(target for _, target, _ in groups)
        return PoolState(
            name=pool_id,
            min=low,
            desired=desired,
            max=max(high, desired) if not auto and not self.config.get("max") else high,
            current=len(nodes),
            autoscaler_enabled=auto,
            nodes=nodes,
        )

    # ----------------------------------------------------------------- writes
    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        node_pool = self.client.get_node_pool(name=self._name(pool_id))
        zones = max(1, len(node_pool.locations))
        self.client.set_node_pool_size(
            request={
                "name": self._name(pool_id),
                "node_count": per_zone_count(desired, zones, state.max),
            }
        )

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        if not state.autoscaler_enabled:
            raise NodePoolInvalidRequest(
                f"gke pool {pool_id} is manual: its bounds live in the regions file"
            )
        node_pool = self.client.get_node_pool(name=self._name(pool_id))
        autoscaling: dict[str, Any] = {
            "enabled": True,
            "total_min_node_count": min_size,
            "total_max_node_count": max_size,
        }
        if node_pool.autoscaling.location_policy:
            autoscaling["location_policy"] = node_pool.autoscaling.location_policy
        self.client.set_node_pool_autoscaling(
            request={"name": self._name(pool_id), "autoscaling": autoscaling}
        )

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        node_pool = self.client.get_node_pool(name=self._name(pool_id))
        wanted = set(node_names)
        for url, _, instances in self._groups(node_pool):
            paths = [instances[name] for name in sorted(wanted & set(instances))]
            if paths:
                self._compute("POST", f"{url}/deleteInstances", {"instances": paths})
                wanted -= set(instances)
        if wanted:
            raise NodePoolInvalidRequest(f"gke pool {pool_id}: no instance for {sorted(wanted)}")

    # ----------------------------------------------------------------- errors
    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        import requests
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import DefaultCredentialsError

        where = f"gke {self.config['cluster']}/{pool}"
        if isinstance(exc, gexc.NotFound):
            return NodePoolNotFound(f"{where}: {short(exc.message)}")
        if isinstance(exc, gexc.TooManyRequests | gexc.ResourceExhausted):
            retry_after = None
            response = getattr(exc, "response", None)
            if response is not None and hasattr(response, "headers"):
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return NodePoolThrottled(f"{where}: {short(exc.message)}", retry_after)
        if isinstance(exc, gexc.FailedPrecondition):
            # An operation is already running on the cluster or pool: retry later.
            return NodePoolError(f"{where}: {short(exc.message)}", retryable=True)
        if isinstance(exc, gexc.GoogleAPICallError):
            status = exc.code if isinstance(exc.code, int) else None
            return NodePoolError(
                f"{where}: {short(exc.message)}", retryable=retryable_status(status)
            )
        if isinstance(exc, requests.HTTPError) and exc.response is not None:
            status = exc.response.status_code
            message = f"{where}: compute HTTP {status}: {short(exc.response.text)}"
            if status == 429:
                return NodePoolThrottled(
                    message, parse_retry_after(exc.response.headers.get("Retry-After"))
                )
            if status == 404:
                return NodePoolNotFound(message)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, requests.RequestException):
            return NodePoolError(f"{where}: {type(exc).__name__}", retryable=True)
        if isinstance(exc, DefaultCredentialsError):
            return NodePoolError(f"{where}: no Google credentials", retryable=False)
        return None
