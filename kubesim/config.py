"""The regions file, read tolerantly: unknown keys are ignored so the engine can grow it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes.utils.quantity import parse_quantity

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object, default: float = 0.0) -> float:
    """Seconds from "3s", "500ms", "1m", "1.5h" or a bare number (seconds)."""
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"invalid duration {value!r}")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def cpu_millis(value: object) -> int:
    """Millicores of a CPU quantity ("2", "500m")."""
    return int(parse_quantity(value) * 1000)  # type: ignore[no-untyped-call]


def memory_bytes(value: object) -> int:
    return int(parse_quantity(value))  # type: ignore[no-untyped-call]


@dataclass(slots=True)
class PoolSpec:
    name: str
    count: int
    cpu: str
    memory: str
    min: int
    max: int
    # What one node costs per hour (the regions file's `price_per_hour`), for the node
    # ledger; None: the pool is not priced.
    price_per_hour: float | None = None


@dataclass(slots=True)
class NetworkPath:
    source: str
    target: str
    rtt_ms: float
    loss: float


@dataclass(slots=True)
class Defaults:
    job_duration: float = 3.0
    eviction_delay: float = 5.0
    provisioning_delay: float = 5.0
    # Time from a pod's binding to its container running (image pull + start).
    pod_start_delay: float = 0.05
    # How long a deleted running pod takes to stop (bounded by its grace period).
    termination_delay: float = 0.1
    # Pause before replacing a failed Job pod. Real clusters back off 10 s, 20 s, ...;
    # kubesim defaults to none so that retries are quick in tests.
    job_backoff: float = 0.0


@dataclass(slots=True)
class RegionSpec:
    name: str
    provider: str
    location: str
    role: str
    pools: list[PoolSpec]
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class SimConfig:
    regions: list[RegionSpec]
    defaults: Defaults
    network: list[NetworkPath]


def _pool(raw: dict[str, Any], index: int) -> PoolSpec:
    count = int(raw.get("count", 3))
    return PoolSpec(
        name=str(raw.get("name") or f"pool{index}"),
        count=count,
        cpu=str(raw.get("cpu", "8")),
        memory=str(raw.get("memory", "32Gi")),
        min=int(raw.get("min", 0)),
        max=int(raw.get("max", max(count, 10))),
        price_per_hour=None if raw.get("price_per_hour") is None else float(raw["price_per_hour"]),
    )


def parse_config(data: dict[str, Any]) -> SimConfig:
    raw_defaults = data.get("defaults") or {}
    defaults = Defaults()
    for key in Defaults.__slots__:
        if key in raw_defaults:
            setattr(defaults, key, parse_duration(raw_defaults[key]))
    regions: list[RegionSpec] = []
    seen: set[str] = set()
    for raw in data.get("regions") or []:
        name = str(raw["name"])
        if name in seen:
            raise ValueError(f"duplicate region {name!r}")
        seen.add(name)
        provider, _, location = name.partition("-")
        pools_raw = raw.get("node_pools")
        if pools_raw is None and "node_pool" in raw:
            pools_raw = [raw["node_pool"]]
        pools = [_pool(p, i) for i, p in enumerate(pools_raw or [{}])]
        regions.append(
            RegionSpec(
                name=name,
                provider=str(raw.get("provider", provider)),
                location=str(raw.get("location", location)),
                role=str(raw.get("role", "unit")),
                pools=pools,
                extra={k: v for k, v in raw.items() if k not in {"name", "node_pools"}},
            )
        )
    if not regions:
        raise ValueError("the regions file lists no regions")
    network = [
        NetworkPath(
            source=str(p["from"]),
            target=str(p["to"]),
            rtt_ms=float(p.get("rtt_ms", 0.0)),
            loss=float(p.get("loss", 0.0)),
        )
        for p in data.get("network") or []
        if isinstance(p, dict) and "from" in p and "to" in p
    ]
    return SimConfig(regions=regions, defaults=defaults, network=network)


def load_config(path: str | Path) -> SimConfig:
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return parse_config(data)
