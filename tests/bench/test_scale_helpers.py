"""The live-scale bench's pure helpers: where tasks are aimed, and the move's phases."""

from __future__ import annotations

import pytest

from bench.scale import expected_per_region, target_region
from bench.scale_timeline import TaskTimeline, move_summary, phase_seconds, phase_summary

NAMES = ["a", "b", "c", "heavy", "d"]


def test_the_heavy_region_gets_its_share_and_the_rest_spread_evenly() -> None:
    counts = expected_per_region(1_000, NAMES, "heavy", 0.1)
    assert counts["heavy"] == 100
    assert sorted(counts[n] for n in NAMES if n != "heavy") == [225, 225, 225, 225]
    assert sum(counts.values()) == 1_000


def test_target_region_is_deterministic_and_never_heavy_off_its_turn() -> None:
    aimed = [target_region(i, NAMES, "heavy", 0.1) for i in range(30)]
    assert aimed == [target_region(i, NAMES, "heavy", 0.1) for i in range(30)]
    assert [i for i, name in enumerate(aimed) if name == "heavy"] == [0, 10, 20]


def test_phases_run_between_consecutive_marks() -> None:
    timeline = TaskTimeline(
        "t",
        outage=100.0,
        detected=104.0,
        signalled=104.5,
        placed=105.0,
        job_created=105.25,
        running=106.0,
    )
    assert phase_seconds(timeline) == {
        "detection": 4.0,
        "signals": 0.5,
        "re-placement": 0.5,
        "Job creates": 0.25,
        "Job running": 0.75,
    }
    assert timeline.moved_seconds() == 6.0


def test_a_missing_mark_makes_the_next_phase_start_at_the_last_known_one() -> None:
    # No signal: the task saw the outage through its own read; re-placement runs from
    # the detection, and the signal phase is not counted.
    timeline = TaskTimeline("t", outage=0.0, detected=3.0, placed=7.0, running=9.0)
    phases = phase_seconds(timeline)
    assert phases["signals"] is None
    assert phases["re-placement"] == 4.0
    assert phases["Job creates"] is None
    assert phases["Job running"] == 2.0


def test_move_summary_counts_tasks_that_never_ran_elsewhere() -> None:
    timelines = [TaskTimeline(str(i), outage=0.0, running=float(i)) for i in range(1, 101)]
    timelines.append(TaskTimeline("stuck", outage=0.0, detected=2.0))
    summary = move_summary(timelines)
    assert summary["moved"] == 100
    assert summary["not_moved"] == 1
    assert summary["median_s"] == 50.0
    assert summary["p99_s"] == 99.0
    assert summary["worst_s"] == 100.0
    assert phase_summary(timelines)["detection"]["n"] == 1


@pytest.mark.parametrize("share", [0.5, 0.25, 0.1])
def test_share_rounds_to_every_nth_task(share: float) -> None:
    counts = expected_per_region(200, NAMES, "heavy", share)
    assert counts["heavy"] == round(200 * share)


def test_a_job_replaced_between_two_region_lists_is_not_a_duplicate() -> None:
    from bench.failover import overlapping

    # The old Job seen in the first region listed (t=100), the new one, created at 101
    # after the old was deleted, seen in a region listed at 105: one copy at a time.
    assert not overlapping([(100.0, 50.0), (105.0, 101.0)])
    # The new one already existed when the old was seen alive: two at once.
    assert overlapping([(100.0, 50.0), (105.0, 99.0)])
    # Both in one region's list: two at once.
    assert overlapping([(100.0, 50.0), (100.0, 60.0)])
    # Stamped 100 (whole seconds) and seen after a listing at 100.7 that showed the old
    # one: created in [100, 101), perhaps after that listing and the old one's delete.
    assert not overlapping([(100.7, 50.0), (103.0, 100.0)])
    assert overlapping([(101.2, 50.0), (103.0, 100.0)])  # created by 101: two at once
    # Listed in the other order: the rule does not depend on the list order.
    assert overlapping([(105.0, 99.0), (100.0, 50.0)])
    assert not overlapping([(100.0, 50.0)])
