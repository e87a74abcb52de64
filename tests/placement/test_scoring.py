"""Placement decisions a user would notice: where the task goes and what it says."""

from __future__ import annotations

import json

import pytest

from meridian.placement import (
    FilterCode,
    PlacementDecision,
    PlacementRequest,
    RegionSnapshot,
    place,
)
from meridian.regions.catalog import Catalog
from meridian.regions.network import NetworkPath
from meridian.regions.providers import Provider
from meridian.settings import PlacementWeights
from meridian.tasks.spec import DataSource, JobSpec, TaskSpec
from tests.placement.helpers import DEV, FLEET, replace, request, snapshots_of

W = PlacementWeights()


def decide(req: PlacementRequest, snaps: list[RegionSnapshot]) -> PlacementDecision:
    return place(req, snaps, W, Catalog.default())


def reason_of(decision: PlacementDecision, region: str) -> str:
    return next(f.reason for f in decision.filtered if f.region == region)


def test_data_in_azure_east_us_lands_in_the_azure_region_of_dev() -> None:
    decision = decide(request("azure:eastus"), snapshots_of(DEV))
    assert decision.chosen == "azure-eastus"
    assert "data is in this region (azure:eastus)" in decision.reason
    assert [c.region for c in decision.candidates][:2] == ["azure-eastus", "aws-us-east-1"]


def test_data_in_a_region_without_compute_goes_to_the_nearest_sensible_one() -> None:
    # AWS Ohio: no compute there in dev; AWS Virginia is same provider and close.
    decision = decide(request("aws:us-east-2"), snapshots_of(DEV))
    assert decision.chosen == "aws-us-east-1"
    # GCP Frankfurt: only Europe region in dev is GCP Belgium.
    assert decide(request("gcp:europe-west3"), snapshots_of(DEV)).chosen == "gcp-europe-west1"
    # Tencent Shanghai: Alibaba Hangzhou is ~165 km away.
    assert decide(request("tencent:ap-shanghai"), snapshots_of(DEV)).chosen == (
        "alibaba-cn-hangzhou"
    )


def test_saturated_region_loses_to_a_free_one() -> None:
    # Two regions equally close to the data (aws and azure in Virginia), data elsewhere.
    snaps = snapshots_of(DEV)
    base = decide(request("gcp:us-east4"), snaps)
    assert base.chosen == "aws-us-east-1"
    busy = replace(
        snaps,
        "aws-us-east-1",
        cpu_requested_millis=22_000,
        memory_requested_bytes=80 << 30,
        largest_free_cpu_millis=1_500,
        largest_free_memory_bytes=8 << 30,
        pending_pods=6,
    )
    decision = decide(request("gcp:us-east4"), busy)
    assert decision.chosen == "azure-eastus"
    loaded = next(c for c in decision.candidates if c.region == "aws-us-east-1")
    assert "6 pods pending" in loaded.details["load"]


def test_region_at_the_water_ceiling_is_filtered() -> None:
    snaps = replace(
        snapshots_of(DEV),
        "azure-eastus",
        cpu_requested_millis=23_500,
        largest_free_cpu_millis=2_000,
    )
    decision = decide(request("azure:eastus"), snaps)
    assert decision.chosen == "aws-us-east-1"
    assert reason_of(decision, "azure-eastus") == "water level 98% at or above ceiling 95%"


def test_degraded_network_path_loses_to_a_healthy_one() -> None:
    snaps = snapshots_of(DEV)
    assert decide(request("azure:eastus"), snaps).chosen == "azure-eastus"
    bad_path = NetworkPath(target="azure:eastus", rtt_ms=180.0, loss=0.03, samples=20)
    degraded = [
        s.model_copy(update={"network": {**s.network, "azure:eastus": bad_path}})
        if s.name == "azure-eastus"
        else s
        for s in snaps
    ]
    decision = decide(request("azure:eastus"), degraded)
    assert decision.chosen == "aws-us-east-1"
    azure = next(c for c in decision.candidates if c.region == "azure-eastus")
    assert "measured RTT 180.0 ms, loss 3.0%" in azure.details["network"]


def test_unmeasured_path_is_estimated_from_distance_and_says_so() -> None:
    decision = decide(request("azure:eastus"), snapshots_of(DEV))
    gcp = next(c for c in decision.candidates if c.region == "gcp-europe-west1")
    assert gcp.details["network"].startswith("estimated from 6")
    assert " km: RTT ~" in gcp.details["network"]


def test_region_whose_worker_is_not_polling_is_filtered_with_that_reason() -> None:
    snaps = replace(snapshots_of(DEV), "azure-eastus", worker_polling=False)
    decision = decide(request("azure:eastus"), snaps)
    assert decision.chosen == "aws-us-east-1"
    filtered = next(f for f in decision.filtered if f.region == "azure-eastus")
    assert filtered.code is FilterCode.NOT_POLLING
    assert filtered.reason == "unit worker not polling its task queue region.azure-eastus"


def test_down_and_draining_regions_are_filtered() -> None:
    snaps = replace(
        snapshots_of(DEV),
        "azure-eastus",
        healthy=False,
        state="down",
        health_reason="API unreachable for 12s",
    )
    snaps = replace(snaps, "aws-us-east-1", draining=True)
    decision = decide(request("azure:eastus"), snaps)
    assert decision.chosen == "gcp-europe-west1"
    assert reason_of(decision, "azure-eastus") == "region down: API unreachable for 12s"
    assert reason_of(decision, "aws-us-east-1") == "region is draining"


def test_excluded_region_is_never_chosen_and_says_why() -> None:
    req = request("azure:eastus", excluded=["azure-eastus"], reasons={"azure-eastus": "node lost"})
    decision = decide(req, snapshots_of(DEV))
    assert decision.chosen == "aws-us-east-1"
    assert reason_of(decision, "azure-eastus") == (
        "excluded after an earlier failed attempt: node lost"
    )


def test_unplaceable_task_names_what_is_missing() -> None:
    snaps = replace(snapshots_of(DEV), "aws-us-east-1", largest_free_cpu_millis=12_000)
    decision = decide(request("azure:eastus", cpu="64"), snaps)
    assert decision.chosen is None and not decision.placeable
    assert (
        decision.reason == "no healthy region with 64 CPU free; largest free: aws-us-east-1 with 12"
    )
    assert reason_of(decision, "azure-eastus") == "needs 64 CPU, largest free node has 6"


def test_unplaceable_for_memory_and_for_health_say_so() -> None:
    decision = decide(request("azure:eastus", memory="256Gi"), snapshots_of(DEV))
    assert decision.reason.startswith("no healthy region with 256Gi memory free; largest free:")
    down = [s.model_copy(update={"healthy": False, "state": "down"}) for s in snapshots_of(DEV)]
    decision = decide(request("azure:eastus"), down)
    assert decision.reason == "no eligible region: 4 down"


def test_pinned_region_is_honoured_even_when_others_score_higher() -> None:
    decision = decide(request("azure:eastus", region="gcp-europe-west1"), snapshots_of(DEV))
    assert decision.chosen == "gcp-europe-west1"
    assert decision.reason.startswith("pinned region gcp-europe-west1")
    assert reason_of(decision, "azure-eastus") == "not the pinned region gcp-europe-west1"


def test_unavailable_pinned_region_is_reported_never_replaced() -> None:
    snaps = replace(snapshots_of(DEV), "gcp-europe-west1", worker_polling=False)
    decision = decide(request("azure:eastus", region="gcp-europe-west1"), snaps)
    assert decision.chosen is None
    assert decision.reason == (
        "pinned region gcp-europe-west1 unavailable: "
        "unit worker not polling its task queue region.gcp-europe-west1"
    )
    missing = decide(request("azure:eastus", region="aws-nowhere"), snapshots_of(DEV))
    assert missing.chosen is None
    assert missing.reason.startswith("pinned region aws-nowhere unavailable:")


def test_provider_and_region_allow_lists_are_hard_constraints() -> None:
    decision = decide(request("azure:eastus", providers=["gcp", "alibaba"]), snapshots_of(DEV))
    assert decision.chosen == "gcp-europe-west1"
    assert reason_of(decision, "azure-eastus") == "provider azure not allowed (alibaba, gcp)"
    decision = decide(request("azure:eastus", regions=["alibaba-cn-hangzhou"]), snapshots_of(DEV))
    assert decision.chosen == "alibaba-cn-hangzhou"


def test_preference_tiers_with_overflow() -> None:
    # "JP first, then SG or US" with data in Hangzhou: JP wins while it has room...
    tiers = [["aws-ap-northeast-1"], ["gcp-asia-southeast1", "aws-us-west-2"]]
    snaps = snapshots_of(FLEET)
    first = decide(request("alibaba:cn-hangzhou", preferences=tiers), snaps)
    assert first.chosen == "aws-ap-northeast-1"
    assert "first preference tier" in first.reason
    # ...overflows to the best of tier 2 when JP is full...
    full = replace(snaps, "aws-ap-northeast-1", largest_free_cpu_millis=0)
    second = decide(request("alibaba:cn-hangzhou", preferences=tiers), full)
    assert second.chosen == "gcp-asia-southeast1"
    assert "preference tier 2 because tier 1 has no eligible region" in second.reason
    # ...and to unlisted regions only when every tier is out.
    none_left = replace(full, "gcp-asia-southeast1", worker_polling=False)
    none_left = replace(none_left, "aws-us-west-2", draining=True)
    third = decide(request("alibaba:cn-hangzhou", preferences=tiers), none_left)
    assert third.chosen == "alibaba-cn-hangzhou"
    assert "overflow" in third.reason
    assert [c.tier for c in third.candidates] == [2] * len(third.candidates)


def test_provider_names_work_in_tiers() -> None:
    decision = decide(request("alibaba:cn-hangzhou", preferences=[["gcp"]]), snapshots_of(FLEET))
    assert decision.chosen == "gcp-asia-southeast1"
    assert decision.candidates[1].region == "gcp-us-central1"


def test_ties_break_by_region_name() -> None:
    # Identical regions in the same place: only the name can decide, and it does.
    snaps = snapshots_of(FLEET)
    twin = next(s for s in snaps if s.name == "aws-us-west-2").model_copy(
        update={"name": "aws-us-west-2b"}
    )
    decision = decide(request("aws:us-west-2"), [twin, *snaps])
    assert [c.region for c in decision.candidates[:2]] == ["aws-us-west-2", "aws-us-west-2b"]
    assert decision.candidates[0].total == decision.candidates[1].total


def test_decision_round_trips_through_json() -> None:
    decision = decide(request("azure:eastus", cpu="64"), snapshots_of(DEV))
    again = PlacementDecision.model_validate_json(decision.model_dump_json())
    assert again == PlacementDecision.model_validate(json.loads(decision.model_dump_json()))
    assert again.reason == decision.reason
    assert again.filtered == decision.filtered
    ok = decide(request("azure:eastus"), snapshots_of(DEV))
    assert PlacementDecision.model_validate_json(ok.model_dump_json()).candidates == ok.candidates


def test_fingerprint_changes_only_with_inputs_that_matter() -> None:
    snaps = snapshots_of(DEV)
    req = request("azure:eastus", cpu="64")
    base = decide(req, snaps).snapshot_fingerprint
    other_task = req.model_copy(update={"task_id": "t-2"})
    assert decide(other_task, snaps).snapshot_fingerprint == base
    assert decide(req, list(reversed(snaps))).snapshot_fingerprint == base
    grown = replace(snaps, "aws-us-east-1", largest_free_cpu_millis=64_000)
    assert decide(req, grown).snapshot_fingerprint != base


def test_request_from_a_task_spec() -> None:
    spec = TaskSpec(
        name="etl",
        business_unit="bu-a",
        data_source=DataSource(provider=Provider.AZURE, region="eastus"),
        job=JobSpec(image="busybox"),
    )
    req = PlacementRequest.for_task("etl-1", spec, ["aws-us-east-1"])
    assert decide(req, snapshots_of(DEV)).chosen == "azure-eastus"


def test_duplicate_snapshot_names_are_rejected() -> None:
    snaps = snapshots_of(DEV)
    with pytest.raises(ValueError, match="unique"):
        decide(request(), [*snaps, snaps[0]])


def test_a_region_with_every_pod_slot_taken_loses_to_the_next_and_says_why() -> None:
    # AWS holds the data and has CPU and memory to spare, but 3 nodes x 110 pods are live.
    snaps = snapshots_of(DEV)
    assert decide(request(), snaps).chosen == "aws-us-east-1"
    full = replace(snaps, "aws-us-east-1", pods_allocatable=330, pods_live=330)
    decision = decide(request(), full)
    assert decision.chosen == "azure-eastus"
    assert [(f.code, f.reason) for f in decision.filtered] == [
        (FilterCode.CAPACITY, "no pod slot free: 330 of 330 pods")
    ]
    # One slot free is room: slots filter, they do not score.
    one_left = replace(snaps, "aws-us-east-1", pods_allocatable=330, pods_live=329)
    left = decide(request(), one_left)
    assert left.chosen == "aws-us-east-1"
    assert left.reason == decide(request(), snaps).reason


def test_unknown_pod_slots_change_nothing() -> None:
    # 0 allocatable: no node reported its slots, or a snapshot from before they were
    # counted (Temporal histories, the golden decisions). Whatever is live, no filter.
    snaps = snapshots_of(DEV)
    base = decide(request(), snaps)
    unknown = decide(request(), replace(snaps, "aws-us-east-1", pods_live=5_000))
    assert unknown == base
    assert next(s for s in snaps if s.name == "aws-us-east-1").pods_free is None


def test_an_unplaceable_task_names_the_regions_short_of_slots_and_of_room() -> None:
    snaps = replace(snapshots_of(DEV), "aws-us-east-1", pods_allocatable=330, pods_live=331)
    both = decide(request(regions=["aws-us-east-1", "azure-eastus"], cpu="7"), snaps)
    assert both.chosen is None
    assert both.reason == (
        "no healthy region with 7 CPU free; largest free: azure-eastus with 6; "
        "no pod slot free in aws-us-east-1 (331 of 330 pods); other regions: 2 not "
        "allowed by the task's constraints"
    )
    only = decide(request(region="aws-us-east-1"), snaps)
    assert (
        only.reason == "pinned region aws-us-east-1 unavailable: no pod slot free: 331 of 330 pods"
    )
    nodes_full = replace(snaps, "azure-eastus", pods_allocatable=330, pods_live=330)
    none = decide(request(regions=["aws-us-east-1", "azure-eastus"]), nodes_full)
    assert none.reason == (
        "no healthy region with a pod slot free: aws-us-east-1 (331 of 330 pods), "
        "azure-eastus (330 of 330 pods); other regions: 2 not allowed by the task's "
        "constraints"
    )


def test_fingerprint_follows_whether_a_pod_slot_is_free_not_how_many() -> None:
    # An unplaceable task is placed again when its fingerprint changes: a slot freed in
    # a full region must change it; another pod in a region with slots to spare need not.
    snaps = snapshots_of(DEV)
    req = request("azure:eastus", cpu="64")
    unknown = decide(req, snaps).snapshot_fingerprint
    some = replace(snaps, "aws-us-east-1", pods_allocatable=330, pods_live=100)
    more = replace(snaps, "aws-us-east-1", pods_allocatable=330, pods_live=200)
    full = replace(snaps, "aws-us-east-1", pods_allocatable=330, pods_live=330)
    prints = [decide(req, s).snapshot_fingerprint for s in (some, more, full)]
    assert prints[0] == prints[1]
    assert len({unknown, prints[0], prints[2]}) == 3
