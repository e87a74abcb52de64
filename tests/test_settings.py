"""Settings from env and YAML; the regions file shared with kubesim."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from meridian.regions.config import load_regions
from meridian.settings import Settings
from tests.conftest import REPO


def test_env_overrides_and_nested(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MERIDIAN_API_PORT", "9001")
    monkeypatch.setenv("MERIDIAN_FAILOVER__REGION_GRACE_SECONDS", "3.5")
    settings = Settings()
    assert settings.api_port == 9001
    assert settings.failover.region_grace_seconds == 3.5


def test_yaml_file_is_read_and_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "meridian.yaml"
    config.write_text("api_port: 9100\nsweeps:\n  page_size: 50\n")
    monkeypatch.setenv("MERIDIAN_CONFIG", str(config))
    assert Settings().sweeps.page_size == 50
    assert Settings().api_port == 9100
    monkeypatch.setenv("MERIDIAN_API_PORT", "9200")
    assert Settings().api_port == 9200


def test_default_database_is_sqlite_in_state_dir(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/meridian.db"
    assert settings.resolved_kubeconfig == tmp_path / "kubeconfig"


def test_unknown_database_scheme_is_refused() -> None:
    with pytest.raises(ValidationError, match="database_url"):
        Settings(database_url="postgresql://x")


def test_a_slow_mark_past_the_probe_deadline_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    # 5 s probes leave the API 4 s: a 4.5 s "slow" mark could never be reached before
    # the region counted as unreachable.
    monkeypatch.setenv("MERIDIAN_FAILOVER__DEGRADED_LATENCY_MS", "4500")
    with pytest.raises(ValidationError, match="degraded_latency_ms .* must be below .* 4000 ms"):
        Settings()
    monkeypatch.setenv("MERIDIAN_FAILOVER__PROBE_API_TIMEOUT_SECONDS", "8")
    assert Settings().failover.degraded_latency_ms == 4500


def test_shipped_regions_files() -> None:
    dev = load_regions(REPO / "infra/regions/dev.yaml")
    assert len(dev.regions) >= 4
    assert {"aws", "azure", "gcp"} <= {r.provider.value for r in dev.regions}
    assert {r.provider.value for r in dev.regions} & {"alibaba", "tencent", "baidu", "huawei"}
    fleet = load_regions(REPO / "infra/regions/fleet-15.yaml")
    assert len(fleet.regions) == 15
    assert sum(r.role == "central" for r in fleet.regions) == 1
    providers = {r.provider.value for r in fleet.regions}
    assert providers == {"aws", "azure", "gcp", "alibaba", "tencent", "baidu", "huawei", "idc"}
    assert fleet.get("aws-us-west-2").task_queue == "region.aws-us-west-2"


def test_region_name_must_match_provider_and_location(tmp_path: Path) -> None:
    bad = tmp_path / "r.yaml"
    bad.write_text("regions:\n  - {name: aws-x, provider: aws, location: us-east-1}\n")
    with pytest.raises(ValidationError, match="provider"):
        load_regions(bad)
