"""The regions file's `serverless` block: kind defaults, overrides, and errors that name
the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from meridian.regions.config import RegionsFile, load_regions
from meridian.serverless.kinds import KIND_DEFAULTS, ServerlessKind
from meridian.serverless.models import ServerlessConfig

REPO = Path(__file__).resolve().parents[2]


def _region(**extra: Any) -> dict[str, Any]:
    return {
        "name": "alibaba-cn-hangzhou",
        "provider": "alibaba",
        "location": "cn-hangzhou",
        **extra,
    }


def _errors(data: dict[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    with pytest.raises(ValidationError) as err:
        RegionsFile.model_validate(data)
    return [(tuple(e["loc"]), e["msg"]) for e in err.value.errors()]


@pytest.mark.parametrize("kind", list(ServerlessKind))
def test_a_kind_alone_gets_the_documented_defaults(kind: ServerlessKind) -> None:
    config = ServerlessConfig.model_validate({"kind": kind.value})
    defaults = KIND_DEFAULTS[kind]
    assert config.price_per_vcpu_hour == defaults["price_per_vcpu_hour"]
    assert config.cold_start_seconds == defaults["cold_start_seconds"]
    assert config.max_pods == defaults["max_pods"]
    assert config.pod_sizes


def test_the_regions_file_overrides_any_default() -> None:
    regions = RegionsFile.model_validate(
        {
            "regions": [
                _region(
                    serverless={
                        "kind": "eci",
                        "max_pods": 50,
                        "max_cpu": 100,
                        "max_memory": "400Gi",
                        "price_per_vcpu_hour": 0.2,
                        "cold_start_seconds": 5,
                        "currency": "CNY",
                    },
                    node_pools=[{"name": "general", "price_per_hour": 1.1, "boot_seconds": 90}],
                )
            ]
        }
    )
    region = regions.regions[0]
    assert region.serverless is not None
    assert region.serverless.max_pods == 50
    assert region.serverless.max_cpu_millis == 100_000
    assert region.serverless.price_per_vcpu_hour == 0.2
    assert (
        region.serverless.price_per_gib_hour
        == KIND_DEFAULTS[ServerlessKind.ECI]["price_per_gib_hour"]
    )
    assert region.serverless.cold_start_seconds == 5
    assert region.node_pools[0].price_per_hour == 1.1
    assert region.node_pools[0].boot_seconds == 90


def test_a_region_without_serverless_has_none() -> None:
    regions = RegionsFile.model_validate({"regions": [_region(node_pools=[{"name": "g"}])]})
    assert regions.regions[0].serverless is None
    assert regions.regions[0].node_pools[0].price_per_hour is None


@pytest.mark.parametrize(
    ("serverless", "loc", "words"),
    [
        ({"kind": "lambda"}, ("kind",), "fargate"),
        ({"kind": "eci", "max_pods": 0}, ("max_pods",), "greater than or equal to 1"),
        ({"kind": "eci", "max_cpu": "lots"}, ("max_cpu",), "not a Kubernetes quantity"),
        ({"kind": "eci", "max_memory": "-1Gi"}, ("max_memory",), "positive memory"),
        ({"kind": "eci", "price_per_gib_hour": -1}, ("price_per_gib_hour",), "greater than"),
        ({"kind": "eci", "cold_start_seconds": -2}, ("cold_start_seconds",), "greater than"),
        ({"kind": "eci", "currency": "yuan"}, ("currency",), "ISO 4217"),
        ({"kind": "eci", "spot": True}, ("spot",), "Extra inputs"),
        ({"kind": "eci", "pod_sizes": []}, ("pod_sizes",), "at least 1"),
        (
            {"kind": "eci", "pod_sizes": [{"cpu": ["1"]}]},
            ("pod_sizes", 0),
            "memory_min, memory_max, memory_step",
        ),
        (
            {"kind": "eci", "pod_sizes": [{"cpu": ["0"], "memory": ["1Gi"]}]},
            ("pod_sizes", 0, "cpu", 0),
            "positive CPU",
        ),
    ],
)
def test_errors_name_the_field(
    serverless: dict[str, Any], loc: tuple[str | int, ...], words: str
) -> None:
    errors = _errors({"regions": [_region(serverless=serverless)]})
    full = ("regions", 0, "serverless", *loc)
    matching = [msg for error_loc, msg in errors if error_loc[: len(full)] == full]
    assert matching, errors
    assert any(words in msg for msg in matching), errors


def test_pool_price_and_boot_time_are_checked() -> None:
    errors = _errors(
        {"regions": [_region(node_pools=[{"name": "g", "price_per_hour": -1, "boot_seconds": -1}])]}
    )
    locs = {loc for loc, _ in errors}
    assert ("regions", 0, "node_pools", 0, "price_per_hour") in locs
    assert ("regions", 0, "node_pools", 0, "boot_seconds") in locs


def test_dev_regions_declare_serverless_capacity() -> None:
    regions = load_regions(REPO / "infra" / "regions" / "dev.yaml")
    declared = {r.name: r.serverless.kind for r in regions.regions if r.serverless is not None}
    assert len(declared) >= 2
    assert declared.get("alibaba-cn-hangzhou") is ServerlessKind.ECI
