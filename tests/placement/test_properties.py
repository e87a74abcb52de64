"""Properties of placement that must hold for every snapshot and every task."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meridian.placement import PlacementRequest, RegionSnapshot, place
from meridian.placement.filters import DEFAULT_WATER_CEILING
from meridian.quantity import parse_cpu_millis, parse_memory_bytes
from meridian.regions.catalog import Catalog
from meridian.regions.config import load_regions
from meridian.regions.network import NetworkPath
from meridian.regions.providers import Provider
from meridian.settings import PlacementWeights
from meridian.tasks.spec import DataSource, PlacementConstraints, Resources
from tests.placement.helpers import FLEET

CATALOG = Catalog.default()
FLEET_REGIONS = [(r.name, r.provider, r.location) for r in load_regions(FLEET).regions]
NAMES = [name for name, _, _ in FLEET_REGIONS]
DATA_KEYS = sorted(r.key for r in CATALOG)
GI = 1 << 30

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@st.composite
def snapshot(draw: st.DrawFn, name: str, provider: Provider, location: str) -> RegionSnapshot:
    nodes = 8 - draw(st.integers(0, 8))
    cpu_alloc = nodes * 16_000
    mem_alloc = nodes * 64 * GI
    network: dict[str, NetworkPath] = {}
    for key in draw(st.lists(st.sampled_from(DATA_KEYS[:40] + ["azure:eastus"]), max_size=3)):
        network[key] = NetworkPath(
            target=key,
            rtt_ms=draw(st.floats(0.5, 400)),
            loss=draw(st.floats(0, 0.2)),
            samples=draw(st.integers(1, 50)),
        )

    # Percent rolls rather than booleans: hypothesis favours "simple" values (0, False,
    # the first choice); they must mean "healthy", or almost nothing is ever eligible.
    def roll(percent: int) -> bool:
        return draw(st.integers(0, 99)) >= 100 - percent

    state = "down" if roll(10) else "degraded" if roll(15) else "up"
    return RegionSnapshot(
        name=name,
        provider=provider,
        location=location,
        healthy=state != "down" and not roll(5),
        state=state,
        worker_polling=not roll(10),
        nodes_ready=nodes,
        nodes_total=nodes + draw(st.integers(0, 2)),
        cpu_allocatable_millis=cpu_alloc,
        cpu_requested_millis=draw(st.integers(0, cpu_alloc)),
        memory_allocatable_bytes=mem_alloc,
        memory_requested_bytes=draw(st.integers(0, mem_alloc)),
        # Drawn as "used" so that hypothesis' favourite, 0, means a free node.
        largest_free_cpu_millis=16_000 - draw(st.integers(0, 16_000)) if nodes else 0,
        largest_free_memory_bytes=64 * GI - draw(st.integers(0, 64 * GI)) if nodes else 0,
        pending_pods=draw(st.integers(0, 30)),
        api_error_rate=draw(st.sampled_from([0.0, 0.0, 0.05, 0.5])),
        draining=roll(10),
        network=network,
    )


@st.composite
def fleet(draw: st.DrawFn) -> list[RegionSnapshot]:
    chosen = draw(st.lists(st.sampled_from(FLEET_REGIONS), min_size=2, max_size=15, unique=True))
    return [draw(snapshot(*region)) for region in chosen]


def sometimes(draw: st.DrawFn, strategy: st.SearchStrategy[Any], empty: Any) -> Any:
    """Draw from `strategy` one time in four: most tasks carry few constraints, and a
    test where nothing is ever eligible checks nothing."""
    return draw(strategy) if draw(st.integers(0, 3)) == 3 else empty


@st.composite
def placement_request(draw: st.DrawFn) -> PlacementRequest:
    provider, _, region = draw(st.sampled_from(DATA_KEYS)).partition(":")
    names = st.sampled_from(NAMES + ["aws-nowhere"])
    tiers = st.lists(
        st.lists(names | st.sampled_from([p.value for p in Provider]), min_size=1, max_size=3),
        min_size=1,
        max_size=3,
    )
    constraints = PlacementConstraints(
        region=sometimes(draw, names, None),
        providers=sometimes(
            draw, st.lists(st.sampled_from(list(Provider)), min_size=1, max_size=4, unique=True), []
        ),
        regions=sometimes(draw, st.lists(names, min_size=1, max_size=8, unique=True), []),
        preferences=sometimes(draw, tiers, []),
    )
    return PlacementRequest(
        task_id="t",
        data_source=DataSource(provider=Provider(provider), region=region),
        resources=Resources(
            cpu=draw(st.sampled_from(["250m", "1", "1", "4", "12", "64"])),
            memory=draw(st.sampled_from(["256Mi", "1Gi", "4Gi", "48Gi", "256Gi"])),
        ),
        constraints=constraints,
        excluded_regions=sometimes(draw, st.lists(names, min_size=1, max_size=4, unique=True), []),
    )


weights_strategy = st.builds(
    PlacementWeights,
    locality=st.floats(0, 2),
    network=st.floats(0, 2),
    load=st.floats(0, 2),
)


def decide(req: PlacementRequest, snaps: list[RegionSnapshot], weights: Any = None) -> Any:
    return place(req, snaps, weights or PlacementWeights(), CATALOG)


def eligible(req: PlacementRequest, snap: RegionSnapshot) -> bool:
    """An independent statement of the hard filters, to check the chosen region against."""
    c = req.constraints
    return (
        snap.name not in req.excluded_regions
        and (c.region is None or c.region == snap.name)
        and (not c.providers or snap.provider in c.providers)
        and (not c.regions or snap.name in c.regions)
        and snap.healthy
        and snap.state != "down"
        and snap.worker_polling
        and not snap.draining
        and snap.water_level < DEFAULT_WATER_CEILING
        and snap.largest_free_cpu_millis >= parse_cpu_millis(req.resources.cpu)
        and snap.largest_free_memory_bytes >= parse_memory_bytes(req.resources.memory)
    )


@PROPERTY_SETTINGS
@given(placement_request(), fleet(), st.randoms(use_true_random=False), weights_strategy)
def test_same_inputs_same_decision_in_any_order(
    req: PlacementRequest, snaps: list[RegionSnapshot], rnd: Any, weights: PlacementWeights
) -> None:
    first = decide(req, snaps, weights)
    shuffled = list(snaps)
    rnd.shuffle(shuffled)
    again = decide(req, shuffled, weights)
    assert again.model_dump() == first.model_dump()
    assert decide(req, snaps, weights).model_dump_json() == first.model_dump_json()


@PROPERTY_SETTINGS
@given(placement_request(), fleet())
def test_chosen_region_passes_every_filter_and_ranks_first(
    req: PlacementRequest, snaps: list[RegionSnapshot]
) -> None:
    decision = decide(req, snaps)
    by_name = {s.name: s for s in snaps}
    filtered = {f.region for f in decision.filtered}
    candidates = [c.region for c in decision.candidates]
    # Every region is accounted for exactly once.
    assert sorted(filtered | set(candidates)) == sorted(by_name)
    assert not filtered & set(candidates)
    assert {name for name, snap in by_name.items() if eligible(req, snap)} == set(candidates)
    if decision.chosen is None:
        assert not candidates and decision.reason
    else:
        assert decision.chosen == candidates[0]
        assert decision.chosen not in filtered
        assert decision.chosen not in req.excluded_regions
        assert eligible(req, by_name[decision.chosen])
    keys = [(c.tier, -c.total, c.region) for c in decision.candidates]
    assert keys == sorted(keys)
    for c in decision.candidates:
        for part in (c.locality, c.network, c.load):
            assert 0.0 <= part <= 1.0


@PROPERTY_SETTINGS
@given(placement_request(), fleet(), st.sampled_from(NAMES))
def test_pinned_region_is_honoured_or_the_task_is_unplaceable(
    req: PlacementRequest, snaps: list[RegionSnapshot], pin: str
) -> None:
    pinned = req.model_copy(
        update={"constraints": req.constraints.model_copy(update={"region": pin})}
    )
    decision = decide(pinned, snaps)
    assert decision.chosen in (pin, None)
    if decision.chosen is None:
        assert decision.reason.startswith(f"pinned region {pin} unavailable: ")
    pin_snap = next((s for s in snaps if s.name == pin), None)
    assert (decision.chosen == pin) == (pin_snap is not None and eligible(pinned, pin_snap))


@PROPERTY_SETTINGS
@given(placement_request(), fleet(), st.data())
def test_more_free_capacity_never_lowers_a_score(
    req: PlacementRequest, snaps: list[RegionSnapshot], data: st.DataObject
) -> None:
    before = decide(req, snaps)
    if not before.candidates:
        return
    target = data.draw(st.sampled_from([c.region for c in before.candidates]))
    snap = next(s for s in snaps if s.name == target)
    freer = snap.model_copy(
        update={
            "cpu_requested_millis": data.draw(st.integers(0, snap.cpu_requested_millis)),
            "memory_requested_bytes": data.draw(st.integers(0, snap.memory_requested_bytes)),
            "largest_free_cpu_millis": snap.largest_free_cpu_millis
            + data.draw(st.integers(0, 16_000)),
            "largest_free_memory_bytes": snap.largest_free_memory_bytes
            + data.draw(st.integers(0, 64 * GI)),
        }
    )
    after = decide(req, [freer if s.name == target else s for s in snaps])
    old = next(c for c in before.candidates if c.region == target)
    new = next(c for c in after.candidates if c.region == target)
    assert new.load >= old.load
    assert new.total >= old.total


@PROPERTY_SETTINGS
@given(placement_request(), fleet())
def test_excluded_regions_are_never_chosen(
    req: PlacementRequest, snaps: list[RegionSnapshot]
) -> None:
    everything_but_one = req.model_copy(update={"excluded_regions": NAMES[1:]})
    decision = decide(everything_but_one, snaps)
    assert decision.chosen in (NAMES[0], None)
    for f in decision.filtered:
        if f.region in NAMES[1:]:
            assert f.reason.startswith("excluded after an earlier failed attempt")
