"""The Temporal connection takes TLS, mTLS and API keys from Temporal's own client
configuration (`TEMPORAL_*`), tested through a TLS-terminating proxy in front of the
real dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from meridian.settings import Settings
from meridian.temporal import connect, connect_options
from tests.security.pki import Pki, TlsProxy, make_pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path)


@pytest_asyncio.fixture
async def proxy(dev_env: WorkflowEnvironment, pki: Pki) -> AsyncIterator[TlsProxy]:
    upstream = dev_env.client.service_client.config.target_host
    async with TlsProxy(upstream, pki).running() as running:
        yield running


@pytest_asyncio.fixture
async def mtls_proxy(dev_env: WorkflowEnvironment, pki: Pki) -> AsyncIterator[TlsProxy]:
    upstream = dev_env.client.service_client.config.target_host
    async with TlsProxy(upstream, pki, require_client_cert=True).running() as running:
        yield running


async def answers(client: Client) -> bool:
    info = await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return bool(info.server_version)


def tls_env(proxy: TlsProxy, pki: Pki) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": proxy.address,
        "TEMPORAL_TLS_SERVER_CA_CERT_PATH": str(pki.ca),
        "TEMPORAL_TLS_SERVER_NAME": "localhost",
    }


async def test_tls_from_temporal_environment(proxy: TlsProxy, pki: Pki, tmp_path: Path) -> None:
    client = await connect(Settings(state_dir=tmp_path), env=tls_env(proxy, pki))
    assert await answers(client)
    assert proxy.relayed >= 1


async def test_plain_text_to_a_tls_endpoint_fails(proxy: TlsProxy, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cannot reach Temporal"):
        await connect(
            Settings(state_dir=tmp_path),
            env={"TEMPORAL_ADDRESS": proxy.address},
            attempts=1,
            delay=0,
        )


async def test_mtls_client_certificate(mtls_proxy: TlsProxy, pki: Pki, tmp_path: Path) -> None:
    env = tls_env(mtls_proxy, pki) | {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": str(pki.client.cert),
        "TEMPORAL_TLS_CLIENT_KEY_PATH": str(pki.client.key),
    }
    client = await connect(Settings(state_dir=tmp_path), env=env)
    assert await answers(client)


async def test_mtls_without_a_client_certificate_fails(
    mtls_proxy: TlsProxy, pki: Pki, tmp_path: Path
) -> None:
    with pytest.raises(RuntimeError, match="cannot reach Temporal"):
        client = await connect(
            Settings(state_dir=tmp_path), env=tls_env(mtls_proxy, pki), attempts=1, delay=0
        )
        await answers(client)  # TLS 1.3 may only refuse after the handshake


def test_meridian_address_and_namespace_win_when_set() -> None:
    env = {"TEMPORAL_ADDRESS": "temporal.example:7233", "TEMPORAL_NAMESPACE": "prod"}
    assert connect_options(Settings(), env)["target_host"] == "temporal.example:7233"
    assert connect_options(Settings(), env)["namespace"] == "prod"
    mine = Settings(temporal_address="10.0.0.5:7233", temporal_namespace="meridian")
    assert connect_options(mine, env)["target_host"] == "10.0.0.5:7233"
    assert connect_options(mine, env)["namespace"] == "meridian"
    assert connect_options(Settings(), {})["target_host"] == "127.0.0.1:7233"


def test_api_key_from_temporal_environment_turns_tls_on() -> None:
    options = connect_options(Settings(), {"TEMPORAL_API_KEY": "key-123"})
    assert options["api_key"] == "key-123"
    assert options["tls"] is True
