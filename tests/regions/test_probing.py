"""The TCP prober of real network paths, against real sockets on 127.0.0.1 only."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from activities.jobs import JobActivities
from meridian.kube.gateway import JobGateway
from meridian.regions.config import load_regions
from meridian.regions.probing import TcpProber, connect_seconds, probe_targets, resolve_endpoint
from meridian.settings import NetworkProbeSettings, Settings
from tests.conftest import REPO

DEV_REGIONS = REPO / "infra/regions/dev.yaml"


class Listener:
    """A listening socket whose accepted connections can be counted without a thread."""

    def __init__(self, backlog: int = 64):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def drain(self) -> int:
        """Accept every completed handshake waiting in the queue; the running total."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.accepted
            conn.close()
            self.accepted += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.sock.close()


@pytest.fixture
def closed_endpoint() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # bound, never listening: connects are refused
    return f"127.0.0.1:{port}"


# A path whose SYNs go unanswered, as across a dead link: every connect to this port
# uses up its whole budget and fails. Simulated, because the loopback interface cannot
# be made to drop SYNs portably; connects to any other port are real.
SILENT = "127.0.0.1:9"


def silent_connect(addresses: list[Any], budget: float) -> float | None:
    if any(address[4][1] == 9 for address in addresses):
        time.sleep(budget)
        return None
    return connect_seconds(addresses, budget)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_listening_port_has_no_loss_and_a_small_rtt(listener: Listener) -> None:
    prober = TcpProber({"aws:us-east-1": listener.endpoint}, attempts=3, timeout_seconds=0.5)
    [sample] = prober.run_round()
    assert sample["target"] == "aws:us-east-1"
    assert sample["loss"] == 0.0
    assert 0.0 < sample["rtt_ms"] < 100.0
    assert listener.drain() == 3  # one connect per attempt, each a full handshake


def test_refused_port_is_total_loss(closed_endpoint: str) -> None:
    prober = TcpProber({"aws:us-west-2": closed_endpoint}, attempts=2, timeout_seconds=0.25)
    assert prober.run_round() == [{"target": "aws:us-west-2", "rtt_ms": 250.0, "loss": 1.0}]


def test_unresolvable_host_gives_no_sample() -> None:
    # `.invalid` never resolves (RFC 6761): no sample, rather than a 100 % loss that
    # would say something false about the path.
    prober = TcpProber({"aws:us-east-1": "meridian-probe.invalid:443"}, timeout_seconds=0.2)
    assert prober.run_round() == []


def test_round_is_concurrent_and_bounded(listener: Listener) -> None:
    targets = {f"aws:r{i}": SILENT for i in range(4)} | {"gcp:x": listener.endpoint}
    prober = TcpProber(targets, attempts=2, timeout_seconds=0.2, connect=silent_connect)
    started = time.monotonic()
    samples = {s["target"]: s for s in prober.run_round()}
    elapsed = time.monotonic() - started
    # Four silent targets one after another would take 4 x 2 x 0.2 s.
    assert elapsed < 2 * 0.2 + 0.4
    assert all(
        samples[f"aws:r{i}"] == {"target": f"aws:r{i}", "rtt_ms": 200.0, "loss": 1.0}
        for i in range(4)
    )
    assert samples["gcp:x"]["loss"] == 0.0


def test_measure_does_not_wait_for_the_network() -> None:
    prober = TcpProber(
        {"aws:us-east-1": SILENT}, attempts=2, timeout_seconds=0.3, connect=silent_connect
    )
    started = time.monotonic()
    assert prober.measure("aws-us-east-1") == []  # the round runs in the background
    assert time.monotonic() - started < 0.1
    assert prober.measure("aws-us-east-1", wait=True) == [
        {"target": "aws:us-east-1", "rtt_ms": 300.0, "loss": 1.0}
    ]


def test_one_round_per_interval_and_nothing_new_in_between(listener: Listener) -> None:
    clock = Clock()
    prober = TcpProber(
        {"aws:us-east-1": listener.endpoint}, interval_seconds=30, attempts=3, clock=clock
    )
    first = prober.measure("aws-us-east-1", wait=True)
    assert [s["target"] for s in first] == ["aws:us-east-1"]
    assert listener.drain() == 3
    clock.now += 29
    assert prober.measure("aws-us-east-1", wait=True) == []  # no new sample, no reconnect
    assert listener.drain() == 3
    clock.now += 1
    assert len(prober.measure("aws-us-east-1", wait=True)) == 1
    assert listener.drain() == 6
    assert prober.rounds_started == 2


def test_each_region_of_the_process_gets_each_round_once(listener: Listener) -> None:
    prober = TcpProber({"aws:us-east-1": listener.endpoint}, attempts=2, clock=Clock())
    results: dict[str, list[dict[str, Any]]] = {}
    regions = [f"region-{i}" for i in range(8)]

    def probe(region: str) -> None:
        results[region] = prober.measure(region, wait=True)

    threads = [threading.Thread(target=probe, args=(r,)) for r in regions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert prober.rounds_started == 1  # overlapping probes share one round
    assert listener.drain() == 2
    assert all(len(results[r]) == 1 for r in regions)
    assert all(prober.measure(r) == [] for r in regions)


def test_stale_round_is_not_delivered(listener: Listener) -> None:
    clock = Clock()
    prober = TcpProber({"aws:us-east-1": listener.endpoint}, interval_seconds=30, clock=clock)
    prober.measure("a", wait=True)
    clock.now += 61  # region b's probes stopped for a while
    assert prober.measure("b") == []


def test_endpoint_resolution() -> None:
    assert resolve_endpoint("aws:eu-west-1", {}, {}) == "ec2.eu-west-1.amazonaws.com:443"
    assert resolve_endpoint("baidu:bj", {}, {}) == "bcc.bj.baidubce.com:443"
    assert resolve_endpoint("azure:eastus", {}, {}) is None
    assert resolve_endpoint("idc:shanghai-1", {}, {}) is None
    explicit = {"aws:eu-west-1": "10.0.0.1:8443", "gcp:us-central1": "gcp.example:443"}
    assert resolve_endpoint("aws:eu-west-1", explicit, {}) == "10.0.0.1:8443"
    assert resolve_endpoint("gcp:us-central1", explicit, {}) == "gcp.example:443"
    templates = {"aws": "s3.{region}.amazonaws.com:443", "alibaba": ""}
    assert resolve_endpoint("aws:eu-west-1", {}, templates) == "s3.eu-west-1.amazonaws.com:443"
    assert resolve_endpoint("alibaba:cn-beijing", {}, templates) is None
    assert resolve_endpoint("tencent:ap-guangzhou", {}, templates) == (
        "cvm.ap-guangzhou.tencentcloudapi.com:443"
    )


def test_default_targets_are_the_fleets_own_locations() -> None:
    regions = load_regions(DEV_REGIONS)
    assert probe_targets(NetworkProbeSettings(), regions) == {
        "aws:us-east-1": "ec2.us-east-1.amazonaws.com:443",
        "alibaba:cn-hangzhou": "ecs.cn-hangzhou.aliyuncs.com:443",
    }  # azure:eastus and gcp:europe-west1 have no endpoint: estimated
    config = NetworkProbeSettings(
        targets=["gcp:europe-west1", "huawei:cn-north-4"],
        endpoints={"gcp:europe-west1": "[2001:db8::1]:443"},
    )
    assert probe_targets(config, regions) == {
        "gcp:europe-west1": "[2001:db8::1]:443",
        "huawei:cn-north-4": "ecs.cn-north-4.myhuaweicloud.com:443",
    }


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"mode": "sometimes"}, "network_probe.mode"),
        ({"interval_seconds": 0}, "network_probe.interval_seconds"),
        ({"attempts": 0}, "network_probe.attempts"),
        ({"timeout_seconds": -1}, "network_probe.timeout_seconds"),
        ({"targets": ["us-east-1"]}, "network_probe.targets"),
        ({"targets": ["amazon:us-east-1"]}, "network_probe.targets"),
        ({"endpoints": {"aws:us-east-1": "ec2.amazonaws.com"}}, "network_probe.endpoints"),
        ({"endpoints": {"aws:us-east-1": "host:99999"}}, "network_probe.endpoints"),
        ({"templates": {"aws": "{zone}.amazonaws.com:443"}}, "network_probe.templates"),
        ({"templates": {"oracle": "x.{region}.oci:443"}}, "network_probe.templates"),
    ],
)
def test_bad_settings_name_the_field(config: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        Settings(network_probe=config)
    assert field in str(err.value)
    assert len(err.value.errors()) == 1


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MERIDIAN_NETWORK_PROBE__MODE", "tcp")
    monkeypatch.setenv("MERIDIAN_NETWORK_PROBE__TARGETS", '["azure:eastus"]')
    monkeypatch.setenv("MERIDIAN_NETWORK_PROBE__ENDPOINTS", '{"azure:eastus": "az.example:443"}')
    probe = Settings(state_dir=tmp_path).network_probe
    assert (probe.mode, probe.targets) == ("tcp", ["azure:eastus"])
    assert probe.endpoints == {"azure:eastus": "az.example:443"}


def test_auto_mode_is_kubesim_only_when_kubesim_runs(tmp_path: Path) -> None:
    assert Settings(state_dir=tmp_path).resolved_network_probe_mode == "tcp"
    with_sim = Settings(state_dir=tmp_path, kubesim_control_url="http://127.0.0.1:1")
    assert with_sim.resolved_network_probe_mode == "kubesim"
    off = Settings(
        state_dir=tmp_path, kubesim_control_url="http://127.0.0.1:1", network_probe={"mode": "off"}
    )
    assert off.resolved_network_probe_mode == "off"


def _activities(settings: Settings) -> JobActivities:
    # The network samples never touch the Kubernetes gateway.
    return JobActivities.from_settings(cast(JobGateway, object()), settings)


def test_unit_activities_sample_by_mode(tmp_path: Path) -> None:
    sim = "http://127.0.0.1:1"
    kubesim = _activities(Settings(state_dir=tmp_path, kubesim_control_url=sim))
    assert (kubesim.control_url, kubesim.prober) == (sim, None)
    off = _activities(
        Settings(state_dir=tmp_path, kubesim_control_url=sim, network_probe={"mode": "off"})
    )
    assert (off.control_url, off.prober) == (None, None)
    assert off._network_samples("aws-us-east-1") == []
    tcp = _activities(
        Settings(state_dir=tmp_path, kubesim_control_url=sim, network_probe={"mode": "tcp"})
    )
    assert tcp.control_url is None and tcp.prober is not None


def test_unit_activities_tcp_samples_from_a_local_listener(
    tmp_path: Path, listener: Listener
) -> None:
    settings = Settings(
        state_dir=tmp_path,
        regions_file=DEV_REGIONS,
        network_probe={
            "mode": "tcp",
            "targets": ["azure:eastus"],
            "endpoints": {"azure:eastus": listener.endpoint},
            "attempts": 2,
        },
    )
    activities = _activities(settings)
    assert activities._network_samples("aws-us-east-1") == []  # the first round just began
    assert activities.prober is not None
    activities.prober.measure("test", wait=True)
    for region in ("aws-us-east-1", "azure-eastus"):  # both hosted by this process
        [sample] = activities._network_samples(region)
        assert sample.target == "azure:eastus"
        assert sample.loss == 0.0 and sample.rtt_ms > 0.0
    assert activities._network_samples("aws-us-east-1") == []
    assert listener.drain() == 2
