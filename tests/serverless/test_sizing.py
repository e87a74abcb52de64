"""Burst requests are rounded up to the sizes each cloud runs and bills."""

from __future__ import annotations

import pytest

from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.serverless.cost import cost_for, cost_per_hour
from meridian.serverless.models import ServerlessConfig
from meridian.serverless.plan import plan_burst
from meridian.serverless.sizing import SizeError, round_up

# (kind, requested cpu, requested memory, billed cpu, billed memory, why)
SIZING_TABLE = [
    # Fargate adds 256 MiB, then rounds to the nearest vCPU/memory combination.
    ("fargate", "100m", "128Mi", "250m", "512Mi", "smallest combination"),
    ("fargate", "250m", "512Mi", "250m", "1Gi", "512Mi + 256Mi needs the 1 GB size"),
    ("fargate", "1", "1Gi", "1", "2Gi", "1 vCPU starts at 2 GB"),
    # The documented example: 1 vCPU and 8 GB (+256 MB) has no 1 vCPU size: 2 vCPU, 9 GB.
    ("fargate", "1", "8Gi", "2", "9Gi", "AWS's own example"),
    ("fargate", "3", "4Gi", "4", "8Gi", "4 vCPU starts at 8 GB"),
    ("fargate", "8", "17Gi", "8", "20Gi", "8 vCPU in 4 GB steps"),
    # ECI rounds to the nearest supported spec of at least the request.
    ("eci", "1", "3Gi", "1", "4Gi", "1 vCPU: 2, 4 or 8 GiB"),
    ("eci", "3", "5Gi", "4", "8Gi", "no 3 vCPU spec"),
    ("eci", "500m", "256Mi", "500m", "1Gi", "0.5 vCPU: 1 or 2 GiB"),
    # CCI: CPU to 0.25 steps, memory to whole GiB, 2 to 8 GiB per vCPU.
    ("cci", "300m", "1Gi", "500m", "1Gi", "0.5 vCPU, at least 1 GiB"),
    ("cci", "1", "1Gi", "1", "2Gi", "at least 2 GiB per vCPU"),
    ("cci", "250m", "4Gi", "500m", "4Gi", "at most 8 GiB per vCPU: CPU grows"),
    # TKE pay-as-you-go super nodes.
    ("tke-supernode", "1", "1500Mi", "1", "2Gi", "1 vCPU in 1 GiB steps"),
    ("tke-supernode", "3", "6Gi", "4", "8Gi", "4 vCPU starts at 8 GiB"),
    # ACI: 0.01 cores and 0.1 GB steps.
    ("aci", "1234m", "1Gi", "1240m", "1100000000", "hundredths of a core, tenths of a GB"),
    # Autopilot general-purpose: 0.25 vCPU steps, 1 to 6.5 GiB per vCPU.
    ("autopilot", "600m", "256Mi", "750m", "768Mi", "at least 1 GiB per vCPU"),
]


@pytest.mark.parametrize(
    ("kind", "cpu", "memory", "billed_cpu", "billed_memory", "why"), SIZING_TABLE
)
def test_requests_round_up_to_the_billed_size(
    kind: str, cpu: str, memory: str, billed_cpu: str, billed_memory: str, why: str
) -> None:
    config = ServerlessConfig.model_validate({"kind": kind})
    size = round_up(config, parse_cpu_millis(cpu), parse_memory_bytes(memory))
    assert (size.cpu, size.memory) == (billed_cpu, billed_memory), why


def test_a_request_larger_than_any_size_is_refused() -> None:
    config = ServerlessConfig.model_validate({"kind": "fargate"})
    with pytest.raises(SizeError, match="no fargate pod size holds 32 CPU"):
        round_up(config, 32_000, 2**30)


def test_regions_file_sizes_replace_the_kinds() -> None:
    config = ServerlessConfig.model_validate(
        {"kind": "eci", "pod_sizes": [{"cpu": ["2"], "memory": ["4Gi"]}]}
    )
    size = round_up(config, 500, 2**29)
    assert (size.cpu, size.memory) == ("2", "4Gi")


def test_fargate_plan_requests_what_it_is_billed_for_less_the_overhead() -> None:
    # Requesting the billed size itself would make Fargate add 256 MiB again and bill the
    # next size up.
    config = ServerlessConfig.model_validate({"kind": "fargate"})
    plan = plan_burst(config, 250, 512 * 2**20)
    assert (plan.billed.cpu, plan.billed.memory) == ("250m", "1Gi")
    assert (plan.cpu_request, plan.memory_request) == ("250m", "768Mi")
    again = round_up(config, 250, parse_memory_bytes(plan.memory_request))
    assert again == plan.billed


@pytest.mark.parametrize(
    ("declared", "cpu", "memory", "per_hour"),
    [
        ({"kind": "eci", "price_per_vcpu_hour": 0.2, "price_per_gib_hour": 0.03}, 2, 4, 0.52),
        (
            {"kind": "fargate", "price_per_vcpu_hour": 0.04048, "price_per_gib_hour": 0.004445},
            1,
            2,
            0.04937,
        ),
    ],
)
def test_cost_is_billed_size_times_price(
    declared: dict[str, object], cpu: int, memory: int, per_hour: float
) -> None:
    config = ServerlessConfig.model_validate(declared)
    size = round_up(config, cpu * 1000, memory * 2**30 - config.memory_overhead_bytes)
    assert cost_per_hour(config, size) == pytest.approx(per_hour)
    assert cost_for(config, size, 1800) == pytest.approx(per_hour / 2)
