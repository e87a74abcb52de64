"""`meridian up` refuses to start on ports another process holds, naming them."""

from __future__ import annotations

import socket
from pathlib import Path

from kubesim.process import find_free_base_port
from meridian.app.supervisor import Supervisor
from meridian.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def _settings(tmp_path: Path, base: int) -> Settings:
    # Four dev regions + kubesim's control port, then Temporal, its UI and the API.
    return Settings(
        state_dir=tmp_path,
        regions_file=REPO / "infra/regions/dev.yaml",
        kubesim_base_port=base,
        temporal_port=base + 5,
        temporal_ui_port=base + 6,
        api_port=base + 7,
    )


def test_free_ports_pass(tmp_path: Path) -> None:
    base = find_free_base_port(8)
    assert Supervisor(_settings(tmp_path, base)).ports_in_use() == []


def _listening() -> socket.socket:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # a port the OS guarantees free, held from now on
    holder.listen()
    return holder


def test_taken_api_and_kubesim_ports_are_named(tmp_path: Path) -> None:
    api, region = _listening(), _listening()
    try:
        api_port, region_port = api.getsockname()[1], region.getsockname()[1]
        # The third region's API port is the one taken.
        settings = _settings(tmp_path, region_port - 2).model_copy(update={"api_port": api_port})
        busy = Supervisor(settings).ports_in_use()
    finally:
        api.close()
        region.close()
    assert f"127.0.0.1:{api_port} (API; choose another with --api-port)" in busy, busy
    assert f"127.0.0.1:{region_port} (kubesim; choose another with --kubesim-base-port)" in busy


def test_base_port_search_stays_below_the_ephemeral_range() -> None:
    # A port the kernel may hand to any outgoing connection is not "free" for a restart.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    base = find_free_base_port(24)
    assert 20000 <= base and base + 24 < low
