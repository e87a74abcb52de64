"""The unit worker's suspect reports: one per region per gap, to the region monitor."""

from __future__ import annotations

from typing import Any, cast

from temporalio.client import Client

from meridian.kube.errors import KubeError
from meridian.regions.contracts import REGION_MONITOR_ID, SIGNAL_REGION_SUSPECT, RegionSuspect
from workers.unit import SuspectReporter


class _Handle:
    def __init__(self, sent: list[tuple[str, str, Any]], workflow_id: str) -> None:
        self.sent, self.workflow_id = sent, workflow_id

    async def signal(self, name: str, arg: Any) -> None:
        self.sent.append((self.workflow_id, name, arg))


class _Client:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, Any]] = []

    def get_workflow_handle(self, workflow_id: str) -> _Handle:
        return _Handle(self.sent, workflow_id)


async def test_reports_each_region_once_per_gap() -> None:
    client = _Client()
    reporter = SuspectReporter(cast(Client, client), min_gap_seconds=60)
    refused = KubeError("connection refused")
    await reporter.report("aws-us-east-1", refused)
    await reporter.report("aws-us-east-1", refused)  # within the gap: dropped
    await reporter.report("azure-eastus", refused)  # another region: its own gap
    assert [(w, n, a.region) for w, n, a in client.sent] == [
        (REGION_MONITOR_ID, SIGNAL_REGION_SUSPECT, "aws-us-east-1"),
        (REGION_MONITOR_ID, SIGNAL_REGION_SUSPECT, "azure-eastus"),
    ]
    assert isinstance(client.sent[0][2], RegionSuspect)
    assert "refused" in client.sent[0][2].reason
    assert reporter.sent == 2


async def test_reports_again_after_the_gap() -> None:
    client = _Client()
    reporter = SuspectReporter(cast(Client, client), min_gap_seconds=0)
    for _ in range(3):
        await reporter.report("aws-us-east-1", KubeError("reset"))
    assert len(client.sent) == 3
