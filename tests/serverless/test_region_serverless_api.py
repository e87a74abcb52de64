"""GET /v1/regions/{name} shows the region's serverless usage and its cost so far."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from meridian.regions.details import RegionDetails
from meridian.regions.load import RegionLoad, ServerlessUsage
from meridian.regions.models import RegionHealth
from tests.api.stage import staged

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_region_shows_serverless_pods_billed_sizes_and_cost(tmp_path: Path) -> None:
    usage = ServerlessUsage(
        nodes=1,
        ready=True,
        pods=3,
        cpu_millis=3000,
        memory_bytes=6 * 1024**3,
        cpu_core_seconds=3 * 3600,  # three 1-CPU/2-GiB pods, an hour each
        memory_gib_seconds=6 * 3600,
    )
    async with staged(tmp_path) as stage:
        stage.store.record_region_state(
            "alibaba-cn-hangzhou",
            RegionHealth.UP,
            "ok",
            NOW,
            RegionDetails(load=RegionLoad(nodes_ready=3, nodes_total=3, serverless=usage)),
        )
        body = (await stage.http.get("/v1/regions/alibaba-cn-hangzhou")).json()
        serverless = body["serverless"]
        assert serverless["kind"] == "eci"
        assert serverless["currency"] == "CNY"
        assert (serverless["pods"], serverless["cpu"], serverless["memory"]) == (3, "3", "6Gi")
        assert serverless["ready"] is True
        assert serverless["cost"] == pytest.approx(3 * 0.1764 + 6 * 0.0263)
        assert serverless["quota_pods"] == 200

        unseen = (await stage.http.get("/v1/regions/aws-us-east-1")).json()["serverless"]
        assert (unseen["kind"], unseen["seen"], unseen["cost"]) == ("fargate", False, None)
        none = (await stage.http.get("/v1/regions/azure-eastus")).json()
        assert none["serverless"] is None
