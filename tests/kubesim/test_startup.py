"""Starting kubesim: CLI output, kubeconfig, kubesim.json, start time, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from kubernetes import client, config

from kubesim.process import KubesimProcess, find_free_base_port, start_kubesim

from .conftest import REGIONS

REPO = Path(__file__).resolve().parents[2]


def test_kubeconfig_has_one_context_per_region(kubesim: KubesimProcess) -> None:
    kubeconfig = yaml.safe_load(Path(kubesim.kubeconfig).read_text())
    names = [r["name"] for r in REGIONS["regions"]]
    assert [c["name"] for c in kubeconfig["contexts"]] == names
    assert kubeconfig["current-context"] == names[0]
    info = json.loads((Path(kubesim.kubeconfig).parent / "kubesim.json").read_text())
    assert list(info["regions"]) == names
    assert info["control_url"] == kubesim.control_url
    servers = {c["name"]: c["cluster"]["server"] for c in kubeconfig["clusters"]}
    assert servers == info["regions"]


def test_every_region_is_its_own_api_server(kubesim: KubesimProcess) -> None:
    ports = set()
    for region, url in kubesim.region_urls.items():
        api = config.new_client_from_config(config_file=kubesim.kubeconfig, context=region)
        try:
            nodes = client.CoreV1Api(api).list_node()
            assert {n.metadata.labels["topology.kubernetes.io/region"] for n in nodes.items} == {
                region
            }  # noqa: E501
            version = client.VersionApi(api).get_code()
            assert version.major == "1"
        finally:
            api.close()
        ports.add(url.rsplit(":", 1)[1])
    assert len(ports) == len(kubesim.region_urls)


def test_cli_prints_regions_then_ready_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    base = find_free_base_port(5)
    out = tmp_path / "kubeconfig"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubesim",
            "--regions",
            str(REPO / "infra/regions/dev.yaml"),
            "--kubeconfig",
            str(out),
            "--base-port",
            str(base),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.rstrip("\n"))
        if line.strip() == "kubesim ready":
            break
    assert lines[-1] == "kubesim ready"
    assert len(lines) == 4 + 2  # four regions, the control URL, ready
    for i, name in enumerate(
        ["aws-us-east-1", "azure-eastus", "gcp-europe-west1", "alibaba-cn-hangzhou"]
    ):
        assert name in lines[i] and f"http://127.0.0.1:{base + 1 + i}" in lines[i]
    assert f"http://127.0.0.1:{base}" in lines[4]
    assert httpx.get(f"http://127.0.0.1:{base}/sim/regions").status_code == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0


def test_fleet_15_starts_in_under_five_seconds(tmp_path: Path) -> None:
    started = time.monotonic()
    process = start_kubesim(REPO / "infra/regions/fleet-15.yaml", tmp_path)
    try:
        elapsed = time.monotonic() - started
        assert elapsed < 5.0, f"took {elapsed:.2f}s"
        assert len(process.region_urls) == 15
        for region in process.regions:
            api = config.new_client_from_config(config_file=process.kubeconfig, context=region)
            try:
                assert client.CoreV1Api(api).list_node().items
            finally:
                api.close()
    finally:
        assert process.stop() == 0
