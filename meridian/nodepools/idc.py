"""A static IDC pool: a fixed list of machines that Meridian brings online and offline.

Nothing is bought or released. "Scaling up" powers the next offline machines on (in
config order) and uncordons them; "removing" a node cordons it and powers it off. The
node objects stay registered in Kubernetes (NotReady while off), so cordon state is what
tells the scheduler to keep away. Shrinking by a bare number is refused: which machine
goes dark must be named (`remove_nodes`), because only the control loop knows which ones
are empty and drained.

Constructor arguments:
- `cordon(node, unschedulable)`: sets `spec.unschedulable` through the region's
  Kubernetes API (the engine passes its gateway's patch function).
- `online_nodes()`: names of the pool's nodes that are in service (Ready and not
  cordoned), read from Kubernetes. Without it the adapter trusts its own record, which
  starts with every node online.
- `power`: a `PowerHook`, or built from config `power` (below). None: no power control,
  cordon/uncordon only (machines stay on).

Config: `nodes` (the machines), `min` (default 0), `max` (default: all), `power`, and
`bmc` — per-node template variables, e.g. `{"idc-07": {"host": "10.9.0.7", "system": "1"}}`.

Power by command (`power: {command: {on: [...], off: [...]}}`): argument lists run
without a shell; `{node}` and the node's `bmc` variables are substituted per argument.
IPMI example — the password stays in the worker's environment (`IPMI_PASSWORD`, read by
`-E`), never in config or logs:
    on:  ["ipmitool", "-I", "lanplus", "-H", "{host}", "-U", "{user}", "-E",
          "chassis", "power", "on"]
    off: ["ipmitool", "-I", "lanplus", "-H", "{host}", "-U", "{user}", "-E",
          "chassis", "power", "soft"]

Power by HTTP (`power: {http: {url, method, on, off}}`): the URL is a template and `on`/
`off` are JSON bodies. Redfish example:
    url:  "https://{host}/redfish/v1/Systems/{system}/Actions/ComputerSystem.Reset"
    method: POST
    on:   {"ResetType": "On"}
    off:  {"ResetType": "GracefulShutdown"}
BMC credentials go on the injected `power_client` (an `httpx.Client` built with
`auth=(user, password)` and the BMC CA bundle by the deployment from its secret store).
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Collection, Mapping
from typing import Any, Protocol

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

log = logging.getLogger("meridian.nodepools.idc")
POWER_TIMEOUT_SECONDS = 60.0


class PowerHook(Protocol):
    def __call__(self, node: str, on: bool) -> None: ...


def _variables(node: str, bmc: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    return {"node": node, **{k: str(v) for k, v in bmc.get(node, {}).items()}}


class CommandPowerHook:
    """Runs an argument list (no shell) per power action."""

    def __init__(
        self,
        on: list[str],
        off: list[str],
        bmc: Mapping[str, Mapping[str, Any]] | None = None,
        timeout: float = POWER_TIMEOUT_SECONDS,
        run: Callable[..., Any] = subprocess.run,
    ) -> None:
        self.on, self.off, self.bmc, self.timeout, self.run = on, off, bmc or {}, timeout, run

    def __call__(self, node: str, on: bool) -> None:
        variables = _variables(node, self.bmc)
        argv = [part.format_map(variables) for part in (self.on if on else self.off)]
        # Arguments may carry user names but never secrets (see the module doc), and
        # still only the program name is logged.
        log.info("power %s %s via %s", "on" if on else "off", node, argv[0])
        self.run(argv, check=True, capture_output=True, timeout=self.timeout, shell=False)


class HttpPowerHook:
    """One HTTP call per power action (Redfish, or any BMC/PDU web API)."""

    def __init__(
        self,
        url: str,
        on: Mapping[str, Any],
        off: Mapping[str, Any],
        method: str = "POST",
        bmc: Mapping[str, Mapping[str, Any]] | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.url, self.on, self.off, self.method = url, dict(on), dict(off), method
        self.bmc = bmc or {}
        self.client = client or httpx.Client(timeout=POWER_TIMEOUT_SECONDS)

    def __call__(self, node: str, on: bool) -> None:
        url = self.url.format_map(_variables(node, self.bmc))
        log.info("power %s %s via HTTP %s", "on" if on else "off", node, self.method)
        response = self.client.request(self.method, url, json=self.on if on else self.off)
        response.raise_for_status()


def power_from_config(
    config: Mapping[str, Any], client: httpx.Client | None = None
) -> PowerHook | None:
    power = config.get("power") or {}
    bmc = config.get("bmc") or {}
    if "command" in power:
        spec = power["command"]
        return CommandPowerHook(list(spec["on"]), list(spec["off"]), bmc)
    if "http" in power:
        spec = power["http"]
        return HttpPowerHook(
            spec["url"], spec["on"], spec["off"], spec.get("method", "POST"), bmc, client
        )
    return None


class IdcStaticPoolProvider(NodePoolProvider):
    driver = "idc"

    def __init__(
        self,
        pool_config: Mapping[str, Any],
        *,
        cordon: Callable[[str, bool], None],
        online_nodes: Callable[[], Collection[str]] | None = None,
        power: PowerHook | None = None,
        power_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(pool_config)
        require(self.config, "nodes")
        self.machines: list[str] = [str(n) for n in self.config["nodes"]]
        self.cordon = cordon
        self.online_nodes = online_nodes
        self.power = power if power is not None else power_from_config(self.config, power_client)
        self._online: set[str] = set(self.machines)

    def _in_service(self) -> list[str]:
        online = set(self.online_nodes()) if self.online_nodes else self._online
        return [n for n in self.machines if n in online]

    def _describe(self, pool_id: str) -> PoolState:
        if pool_id != self.name:
            raise NodePoolNotFound(f"idc pool {self.name}: no pool {pool_id}")
        nodes = self._in_service()
        return PoolState(
            name=pool_id,
            min=int(self.config.get("min", 0)),
            desired=len(nodes),
            max=min(int(self.config.get("max", len(self.machines))), len(self.machines)),
            current=len(nodes),
            autoscaler_enabled=False,
            nodes=nodes,
        )

    def _set_desired(self, pool_id: str, desired: int, state: PoolState) -> None:
        if desired < state.desired:
            raise NodePoolInvalidRequest(
                f"idc pool {pool_id}: name the machines to take offline (remove_nodes)"
            )
        offline = [n for n in self.machines if n not in set(state.nodes)]
        for node in offline[: desired - state.desired]:
            if self.power is not None:
                self.power(node, True)
            self.cordon(node, False)
            self._online.add(node)

    def _set_bounds(self, pool_id: str, min_size: int, max_size: int, state: PoolState) -> None:
        raise NodePoolInvalidRequest(f"idc pool {pool_id}: bounds live in the regions file")

    def _remove_nodes(self, pool_id: str, node_names: list[str], state: PoolState) -> None:
        for node in node_names:
            # Cordon first: a machine going dark must not be handed new pods meanwhile.
            self.cordon(node, True)
            if self.power is not None:
                self.power(node, False)
            self._online.discard(node)

    def _map_error(self, exc: Exception, pool: str) -> NodePoolError | None:
        where = f"idc {pool}"
        if isinstance(exc, subprocess.CalledProcessError):
            stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
            return NodePoolError(
                f"{where}: power command exited {exc.returncode}: {short(stderr)}", retryable=True
            )
        if isinstance(exc, subprocess.TimeoutExpired):
            return NodePoolError(f"{where}: power command timed out", retryable=True)
        if isinstance(exc, FileNotFoundError):
            return NodePoolError(f"{where}: power command not found", retryable=False)
        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            message = f"{where}: power HTTP {status}: {short(exc.response.text)}"
            if status == 429:
                retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
                return NodePoolThrottled(message, retry_after)
            return NodePoolError(message, retryable=retryable_status(status))
        if isinstance(exc, httpx.TransportError):
            return NodePoolError(f"{where}: power {type(exc).__name__}", retryable=True)
        return None
