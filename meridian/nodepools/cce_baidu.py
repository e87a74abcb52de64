"""Baidu Cloud CCE v2 instance groups over a small signed HTTP client.

Why not the official SDK: `bce-python-sdk` (0.9.79, the newest on PyPI, checked while
writing this; also 0.9.46 and 0.9.5) ships no CCE module at all —
`import baidubce.services.cce` raises ModuleNotFoundError — so there is nothing to call
the CCE v2 instance-group API with. The API itself is plain JSON over HTTPS signed with
BCE auth v1, so this module calls it directly with httpx and `bce_auth.sign` (checked
against the SDK's own signer in the tests). If a working SDK appears, only this file
changes.

Config: `cluster_id`, `instance_group_id` (defaults to the pool name), `baidu_region`
(endpoint `cce.<region>.baidubce.com`) or `endpoint`, `node_name` (`vpc-ip`, CCE's
default Kubernetes node name, or `instance-name`), `min`/`max` (bounds of groups
without the CCE cluster autoscaler).

Endpoints (CCE API v2):
- `GET  /v2/cluster/{cluster}/instancegroup/{group}` — spec.replicas, spec.clusterAutoscalerSpec
- `GET  /v2/cluster/{cluster}/instancegroup/{group}/instances?pageNo=&pageSize=`
- `PUT  /v2/cluster/{cluster}/instancegroup/{group}/replicas` `{"replicas": N}`
- `PUT  /v2/cluster/{cluster}/instancegroup/{group}/autoscaler`
  `{"enabled": true, "minReplicas": a, "maxReplicas": b}`
- `PUT  /v2/cluster/{cluster}/instancegroup/{group}/scaledown`
  `{"instancesToBeRemoved": [cceInstanceID...], "cleanPolicy": "Delete"}` — removes the
  named instances and lowers replicas by as many.
Credentials: `bce_auth.default_credentials()` (env, then ~/.bce/credentials).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
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
from meridian.nodepools.bce_auth import BceCredentials, default_credentials, sign

PAGE_SIZE = 100
TIMEOUT_SECONDS = 30.0
GONE_PHASES = frozenset({"deleting", "deleted", "delete_failed"})
THROTTLING_CODES = frozenset({"RequestLimitExceeded", "TooManyRequests", "Throttling"})


class BaiduCceInstanceGroupProvider(NodePoolProvider):
    driver = "cce-baidu"
    pool_id_key = "instance_group_id"

    def __init__(
        self,
        pool_config: Mapping[str, Any],
        *,
        http_client: httpx.Client | None = None,
        credentials: BceCredentials | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(pool_config)
        require(self.config, "cluster_id")
        self.cluster_id = str(self.config["cluster_id"])
        if http_client is None:
            region = self.config.get("baidu_region")
            endpoint = self.config.get("endpoint") or (
                region and f"https://cce.{region}.baidubce.com"
            )
            if not endpoint:
                raise ValueError("node pool config lacks baidu_region or endpoint")
            http_client = httpx.Client(base_url=str(endpoint), timeout=TIMEOUT_SECONDS)
        self.http = http_client
        self.credentials = credentials or default_credentials()
        self.clock = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ http
    def _request(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        params = params or {}
        moment = self.clock()
        headers = {
            "host": self.http.base_url.netloc.decode(),
            "x-bce-date": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "content-type": "application/json",
        }
        if self.credentials.session_token:
            headers["x-bce-security-token"] = self.credentials.session_token
        headers["authorization"] = sign(self.credentials, method, path, params, headers, moment)
        response = self.http.request(method, path, params=params, json=body, headers=headers)
        response.raise_for_status()
        return response.json() if response.content else {}

    def _group_path(self, pool_id: str) -> str:
        return f"/v2/cluster/{self.cluster_id}/instancegroup/{pool_id}"

    # ------------------------------------------------------------------ reads
    def _instances(self, pool_id: str) -> dict[str, str]:
        """Kubernetes node name -> CCE instance id."""
        use_ip = self.config.get("node_name", "vpc-ip") == "vpc-ip"
        found: dict[str, str] = {}
        page = 1
        while True:
            data = self._request(
                "GET",
                f"{self._group_path(pool_id)}/instances",
                params={"pageNo": str(page), "pageSize": str(PAGE_SIZE)},
            )
            listing = data.get("page", {})
            batch = listing.get("list") or []
            for item in batch:
                spec, status = item.get("spec", {}), item.get("status", {})
                if str(status.get("instancePhase", "")).lower() in GONE_PHASES:
                    continue
                ip = status.get("machine", {}).get("vpcIP")
                name = ip if use_ip and ip else spec.get("instanceName") or spec["cceInstanceID"]
                found[str(name)] = str(spec["cceInstanceID"])
            if not batch or page * PAGE_SIZE >= int(listing.get("totalCount", 0)):
                return found
            page += 1

    def _list_nodes(self, pool_id: str) -> list[str]:
        return sorted(self._instances(pool_id))

    def _describe(self, pool_id: str) -> PoolState:
        group = self._request("GET", self._group_path(pool_id)).get("instanceGroup", {})
        spec = group.get("spec", {})
        autoscaler = spec.get("clusterAutoscalerSpec") or {}
        enabled = bool(autoscaler.get("enabled"))
        nodes = self._list_nodes(pool_id)
        desired = int(spec.get("replicas", 0))
        return PoolState(
            name=pool_id,
            min=int(autoscaler.get("minReplicas", 0))
            if enabled
            else int(self.config.get("min", 0)),
            desired=desired,
            max=int(autoscaler.get("maxReplicas", 0))
            if enabled
            else int(self.config.get("max", desired)),
            current=len(nodes),
            autoscaler_enabled=enabled,
            nodes=nodes,
        )

    # ----------------------------------------------------------------- writes
    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        self._request("PUT", f"{self._group_path(pool_id)}/replicas", body={"replicas": desired})

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        if not state.autoscaler_enabled:
            raise NodePoolInvalidRequest(
                f"cce instance group {pool_id} has no autoscaler: its bounds live in the "
                "regions file"
            )
        self._request(
            "PUT",
            f"{self._group_path(pool_id)}/autoscaler",
            body={"enabled": True, "minReplicas": min_size, "maxReplicas": max_size},
        )

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        instances = self._instances(pool_id)
        missing = [n for n in node_names if n not in instances]
        if missing:
            raise NodePoolInvalidRequest(f"cce instance group {pool_id}: no instance for {missing}")
        self._request(
            "PUT",
            f"{self._group_path(pool_id)}/scaledown",
            body={
                "instancesToBeRemoved": [instances[n] for n in node_names],
                "cleanPolicy": "Delete",
            },
        )

    # ----------------------------------------------------------------- errors
    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        where = f"cce-baidu {self.cluster_id}/{pool}"
        if isinstance(exc, httpx.HTTPStatusError):
            response = exc.response
            status = response.status_code
            try:
                code = str(response.json().get("code", ""))
            except ValueError:
                code = ""
            message = f"{where}: HTTP {status} {code}: {short(response.text)}"
            if status == 429 or code in THROTTLING_CODES:
                return NodePoolThrottled(
                    message, parse_retry_after(response.headers.get("Retry-After"))
                )
            if status == 404 or code.endswith("NotFound") or code.endswith("NotExist"):
                return NodePoolNotFound(message)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, httpx.TransportError):
            return NodePoolError(f"{where}: {type(exc).__name__}", retryable=True)
        return None
