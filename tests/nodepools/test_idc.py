"""IDC static pool: cordon callback, command power hook (real subprocess, no shell) and
the HTTP hook in its Redfish shape."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from meridian.nodepools.base import NodePoolError, NodePoolInvalidRequest
from meridian.nodepools.idc import CommandPowerHook, HttpPowerHook
from meridian.nodepools.registry import provider_for

MACHINES = ["idc-01", "idc-02", "idc-03", "idc-04"]
BMC = {n: {"host": f"10.9.0.{i}", "system": "1", "user": "ops"} for i, n in enumerate(MACHINES, 1)}


class Cluster:
    def __init__(self, online: list[str]) -> None:
        self.online = set(online)
        self.calls: list[tuple[str, bool]] = []

    def cordon(self, node: str, unschedulable: bool) -> None:
        self.calls.append((node, unschedulable))
        (self.online.discard if unschedulable else self.online.add)(node)

    def online_nodes(self) -> set[str]:
        return set(self.online)


def make(cluster: Cluster, power: Any = None, **config: Any) -> Any:
    return provider_for(
        "idc",
        {"name": "rack-a", "nodes": MACHINES, "min": 1, "bmc": BMC, **config},
        cordon=cluster.cordon,
        online_nodes=cluster.online_nodes,
        power=power,
    )


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def __call__(self, node: str, on: bool) -> None:
        self.calls.append((node, on))


def test_describe_counts_nodes_in_service() -> None:
    state = make(Cluster(["idc-01", "idc-02"])).describe("rack-a")
    assert (state.min, state.desired, state.max, state.current) == (1, 2, 4, 2)
    assert state.nodes == ["idc-01", "idc-02"] and state.autoscaler_enabled is False


def test_scale_up_powers_on_then_uncordons_the_next_machines() -> None:
    cluster, power = Cluster(["idc-01"]), Recorder()
    make(cluster, power).set_desired("rack-a", 3)
    assert power.calls == [("idc-02", True), ("idc-03", True)]
    assert cluster.calls == [("idc-02", False), ("idc-03", False)]


def test_remove_cordons_then_powers_off_and_bare_shrink_is_refused() -> None:
    cluster, power = Cluster(["idc-01", "idc-02", "idc-03"]), Recorder()
    provider = make(cluster, power)
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_desired("rack-a", 2)
    provider.remove_nodes("rack-a", ["idc-02"])
    assert cluster.calls == [("idc-02", True)] and power.calls == [("idc-02", False)]
    with pytest.raises(NodePoolInvalidRequest):  # would go below min 1
        provider.remove_nodes("rack-a", ["idc-01", "idc-03"])


def test_command_hook_runs_argv_without_a_shell(tmp_path: Path) -> None:
    out = tmp_path / "log"
    script = "import sys; open(sys.argv[1], 'a').write(' '.join(sys.argv[2:]) + '\\n')"
    hook = CommandPowerHook(
        on=[sys.executable, "-c", script, str(out), "-H", "{host}", "-U", "{user}", "power", "on"],
        off=[sys.executable, "-c", script, str(out), "-H", "{host}", "power", "soft;rm -rf /"],
        bmc=BMC,
    )
    cluster = Cluster(["idc-01"])
    make(cluster, hook).set_desired("rack-a", 2)
    make(cluster, hook).remove_nodes("rack-a", ["idc-02"])
    # The shell metacharacters arrive as one literal argument: nothing was interpreted.
    assert out.read_text().splitlines() == [
        "-H 10.9.0.2 -U ops power on",
        "-H 10.9.0.2 power soft;rm -rf /",
    ]


def test_failing_power_command_is_a_retryable_error() -> None:
    hook = CommandPowerHook(on=[sys.executable, "-c", "raise SystemExit(3)"], off=["true"])
    with pytest.raises(NodePoolError) as info:
        make(Cluster(["idc-01"]), hook).set_desired("rack-a", 2)
    assert info.value.retryable is True and "exited 3" in str(info.value)


def test_redfish_http_hook_from_config() -> None:
    sent: list[httpx.Request] = []

    def bmc(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(bmc), auth=("ops", "secret"))
    cluster = Cluster(["idc-01", "idc-02"])
    provider = provider_for(
        "idc",
        {
            "name": "rack-a",
            "nodes": MACHINES,
            "bmc": BMC,
            "power": {
                "http": {
                    "url": "https://{host}/redfish/v1/Systems/{system}/Actions/ComputerSystem.Reset",
                    "on": {"ResetType": "On"},
                    "off": {"ResetType": "GracefulShutdown"},
                }
            },
        },
        cordon=cluster.cordon,
        online_nodes=cluster.online_nodes,
        power_client=client,
    )
    provider.set_desired("rack-a", 3)
    provider.remove_nodes("rack-a", ["idc-01"])
    assert [(r.method, str(r.url), json.loads(r.content)) for r in sent] == [
        (
            "POST",
            "https://10.9.0.3/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            {"ResetType": "On"},
        ),
        (
            "POST",
            "https://10.9.0.1/redfish/v1/Systems/1/Actions/ComputerSystem.Reset",
            {"ResetType": "GracefulShutdown"},
        ),
    ]
    assert sent[0].headers["authorization"].startswith("Basic ")


def test_http_hook_errors_are_mapped() -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(503)))
    hook = HttpPowerHook("https://{host}/x", {"ResetType": "On"}, {}, bmc=BMC, client=client)
    with pytest.raises(NodePoolError) as info:
        make(Cluster(["idc-01"]), hook).set_desired("rack-a", 2)
    assert info.value.retryable is True
