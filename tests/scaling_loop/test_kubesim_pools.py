"""The kubesim node-pool adapter against a real kubesim (its unit tests use a mock
transport): describe, grow with a provisioning delay, remove named nodes, refusals."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubesim.process import KubesimProcess, start_kubesim
from meridian.nodepools import (
    NodePoolInvalidRequest,
    NodePoolNotFound,
    NodePoolProvider,
    provider_for,
)
from tests.scaling_loop.world import REGION, REGIONS


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[KubesimProcess]:
    proc = start_kubesim(REGIONS, tmp_path / "kubesim")
    try:
        yield proc
    finally:
        proc.stop()


def _provider(sim: KubesimProcess) -> NodePoolProvider:
    return provider_for(
        "kubesim", {"name": "general", "region": REGION, "control_url": sim.control_url}
    )


def _wait_ready(sim: KubesimProcess, provider: NodePoolProvider, count: int) -> None:
    import httpx

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pools = httpx.get(f"{sim.control_url}/sim/regions/{REGION}/pools").json()
        if pools[0]["ready"] == count:
            return
        time.sleep(0.2)
    raise AssertionError(f"not {count} ready nodes: {provider.describe('general')}")


def test_adapter_grows_and_shrinks_a_real_kubesim_pool(sim: KubesimProcess) -> None:
    provider = _provider(sim)
    state = provider.describe("general")
    assert (state.min, state.desired, state.max, state.current) == (1, 2, 6, 2)
    assert not state.autoscaler_enabled and len(state.nodes) == 2

    before = provider.set_desired("general", 4)
    assert before.desired == 2
    grown = provider.describe("general")
    assert grown.desired == 4 and grown.current == 4  # registered at once, Ready later
    _wait_ready(sim, provider, 4)

    doomed = sorted(set(grown.nodes) - set(state.nodes))
    provider.remove_nodes("general", doomed)
    shrunk = provider.describe("general")
    assert shrunk.desired == 2 and sorted(shrunk.nodes) == sorted(state.nodes)
    # Removing them again is refused before any call: they are not in the pool any more.
    with pytest.raises(NodePoolInvalidRequest):
        provider.remove_nodes("general", doomed)


def test_adapter_refuses_what_kubesim_pools_cannot_do(sim: KubesimProcess) -> None:
    provider = _provider(sim)
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_desired("general", 7)  # above max
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_desired("general", 0)  # below min
    with pytest.raises(NodePoolInvalidRequest):
        provider.set_bounds("general", 1, 9)  # bounds come from the regions file
    with pytest.raises(NodePoolInvalidRequest):
        provider.remove_nodes("general", sorted(provider.describe("general").nodes))  # < min
    with pytest.raises(NodePoolNotFound):
        provider.describe("gpu")
    assert provider.describe("general").desired == 2
