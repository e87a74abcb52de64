from __future__ import annotations

from pathlib import Path

import pytest

from meridian.regions.catalog import Catalog, UnknownRegionError, catalog_for, great_circle_km
from meridian.regions.config import load_regions
from meridian.regions.network import NetworkPath, estimate_rtt_ms, path_quality, smooth
from meridian.regions.providers import Provider
from meridian.settings import Settings
from tests.placement.helpers import DEV, FLEET

CLOUDS = [p for p in Provider if p is not Provider.IDC]


def test_catalog_covers_all_seven_providers_with_many_regions() -> None:
    catalog = Catalog.default()
    minimum = {
        Provider.AWS: 30,
        Provider.AZURE: 40,
        Provider.GCP: 35,
        Provider.ALIBABA: 20,
        Provider.TENCENT: 15,
        Provider.BAIDU: 7,
        Provider.HUAWEI: 15,
    }
    for provider in CLOUDS:
        assert len(catalog.known(provider)) >= minimum[provider], provider


@pytest.mark.parametrize(
    ("provider", "region", "city"),
    [
        ("aws", "us-east-1", "Ashburn"),
        ("aws", "ap-northeast-1", "Tokyo"),
        ("azure", "eastus", "Virginia"),
        ("azure", "westeurope", "Amsterdam"),
        ("azure", "japaneast", "Tokyo"),
        ("gcp", "us-central1", "Council Bluffs"),
        ("gcp", "europe-west1", "St. Ghislain"),
        ("gcp", "asia-southeast1", "Jurong West"),
        ("alibaba", "cn-hangzhou", "Hangzhou"),
        ("alibaba", "ap-southeast-1", "Singapore"),
        ("tencent", "ap-guangzhou", "Guangzhou"),
        ("tencent", "ap-singapore", "Singapore"),
        ("baidu", "bj", "Beijing"),
        ("baidu", "fwh", "Wuhan"),
        ("baidu", "sin", "Singapore"),
        ("huawei", "cn-north-4", "Beijing"),
        ("huawei", "ap-southeast-1", "Hong Kong"),
        ("idc", "shanghai-1", "Shanghai"),
    ],
)
def test_known_regions_are_located(provider: str, region: str, city: str) -> None:
    found = Catalog.default().locate(provider, region)
    assert found is not None
    assert found.city == city
    assert found.key == f"{provider}:{region}"


def test_every_region_of_the_shipped_regions_files_is_in_the_catalog() -> None:
    catalog = Catalog.default()
    for path in (DEV, FLEET):
        regions = load_regions(path)
        for region in regions.regions:
            catalog.require(region.provider, region.location)
        for path_config in regions.network:
            provider, _, region_id = path_config.to.partition(":")
            catalog.require(provider, region_id)


def test_unknown_region_error_lists_known_regions() -> None:
    with pytest.raises(UnknownRegionError) as info:
        Catalog.default().require("azure", "eastus9")
    message = str(info.value)
    assert message.startswith("unknown azure region 'eastus9'")
    assert "known: australiacentral, australiacentral2, australiaeast" in message
    assert "did you mean eastus" in message
    assert info.value.known == Catalog.default().known("azure")
    assert isinstance(info.value, ValueError)  # so API validators answer 422


def test_unknown_region_of_a_provider_without_regions_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("regions: {}\n")
    with pytest.raises(UnknownRegionError, match="no idc regions are known"):
        Catalog.load(base=empty).require("idc", "shanghai-1")


def test_extra_files_add_idc_sites_and_override_entries(tmp_path: Path) -> None:
    extra = tmp_path / "sites.yaml"
    extra.write_text(
        "regions:\n"
        "  idc:\n"
        "    beijing-2: {name: Rack B, city: Beijing, country: CN, lat: 39.9, lon: 116.4}\n"
        "  aws:\n"
        "    us-east-1: {name: renamed, city: Ashburn, lat: 39.04, lon: -77.49}\n"
    )
    catalog = Catalog.load(extra_paths=[extra])
    assert catalog.known("idc") == ["beijing-2", "shanghai-1"]
    located = catalog.locate("aws", "us-east-1")
    assert located is not None and located.name == "renamed"
    assert len(catalog) == len(Catalog.default()) + 1


def test_a_deployment_adds_its_sites_through_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sites = tmp_path / "sites.yaml"
    sites.write_text("regions:\n  idc:\n    dc-frankfurt: {lat: 50.11, lon: 8.68}\n")
    monkeypatch.setenv("MERIDIAN_CATALOG_FILES", f'["{sites}"]')
    settings = Settings()
    assert settings.catalog_files == [sites]
    catalog = catalog_for(settings.catalog_files)
    assert catalog.require("idc", "dc-frankfurt").lat == 50.11
    assert catalog_for(settings.catalog_files) is catalog  # loaded once per process
    assert catalog_for([]) is Catalog.default()
    with pytest.raises(UnknownRegionError):
        Catalog.default().require("idc", "dc-frankfurt")


def test_bad_extra_file_is_rejected_with_its_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions:\n  idc:\n    x: {lat: 123, lon: 0}\n")
    with pytest.raises(ValueError, match=r"bad.yaml: idc:x: coordinates"):
        Catalog.load(extra_paths=[bad])


def test_great_circle_distances_match_known_figures() -> None:
    catalog = Catalog.default()
    tokyo = catalog.require("aws", "ap-northeast-1")
    virginia = catalog.require("aws", "us-east-1")
    frankfurt = catalog.require("gcp", "europe-west3")
    london = catalog.require("gcp", "europe-west2")
    assert great_circle_km(tokyo, virginia) == pytest.approx(10_900, rel=0.02)
    assert great_circle_km(london, frankfurt) == pytest.approx(640, rel=0.03)
    assert great_circle_km((0.0, 0.0), (0.0, 180.0)) == pytest.approx(20_015, rel=0.001)
    assert catalog.distance_km("aws", "us-east-1", "aws", "us-east-1") == 0.0
    assert catalog.distance_km("aws", "us-east-1", "aws", "nowhere") is None


def test_rtt_estimate_follows_the_fibre_model() -> None:
    assert estimate_rtt_ms(0) == 1.0
    # 10,000 km: 2 * 10,000 / 200 km/ms * 1.5 routing + 1 ms floor.
    assert estimate_rtt_ms(10_000) == pytest.approx(151.0)


def test_ewma_smooths_measurements_and_replaces_estimates() -> None:
    estimate = NetworkPath.estimated("aws:us-east-1", 5_000)
    first = smooth(estimate, 10.0, 0.0)
    assert first.measured and first.rtt_ms == 10.0 and first.samples == 1
    second = smooth(first, 20.0, 0.1, alpha=0.3)
    assert second.rtt_ms == pytest.approx(13.0)
    assert second.loss == pytest.approx(0.03)
    assert second.samples == 2
    started = smooth(None, 5.0, 0.0, target="gcp:us-east4")
    assert started.target == "gcp:us-east4" and started.samples == 1
    with pytest.raises(ValueError):
        smooth(None, 5.0, 0.0)


def test_path_quality_prefers_short_clean_paths() -> None:
    def q(rtt: float, loss: float) -> float:
        return path_quality(NetworkPath(target="x:y", rtt_ms=rtt, loss=loss))

    assert 0.0 <= q(500, 0.5) <= q(80, 0.01) < q(80, 0.0) < q(5, 0.0) <= 1.0
    assert q(1, 0.05) == 0.0
