"""Time zones, JSON round-trips, query counting and cursor decoding."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meridian.store import Store, Transition
from meridian.store.paging import decode_cursor, encode_cursor
from meridian.tasks.spec import TaskStatus

from .conftest import fetch, make_spec

TOKYO = timezone(timedelta(hours=9))


def test_datetimes_round_trip_as_utc_with_microseconds(store: Store) -> None:
    store.create_task("etl-1", make_spec(), status=TaskStatus.SCHEDULING)
    local = datetime(2025, 6, 30, 23, 59, 59, 999999, tzinfo=TOKYO)
    store.record_transition(
        Transition(
            task_id="etl-1", event_key="k", seq=0, status=TaskStatus.STOPPED, attempt=1, at=local
        )
    )
    store.record_region_state("r1", "up", "ok", local)

    finished = fetch(store, "etl-1").finished_at
    assert finished == local
    assert finished.tzinfo is UTC and finished.hour == 14 and finished.microsecond == 999999
    assert store.list_events("etl-1")[0].at == local
    assert store.get_region_states()["r1"].since.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_region_state("r1", "up", "ok", datetime(2025, 1, 1))


def test_json_round_trips_exactly(store: Store) -> None:
    spec = make_spec(
        name="报表-nightly ✓",
        labels={"team": "risk"},
        job={"image": "img:1", "env": {"QUERY": "select 'x' -- \"quoted\" \\ \n", "EMPTY": ""}},
    )
    store.create_task("etl-1", spec, status=TaskStatus.PENDING)
    decision = {
        "scores": {"r1": 0.1 + 0.2, "r2": 1e-12, "r3": -3.5},
        "order": ["r2", "r1"],
        "nested": [{"a": None, "b": True}, []],
        "big": 2**53 + 1,
    }
    store.record_placement("etl-1", 1, 0, decision, datetime.now(UTC))

    assert fetch(store, "etl-1").spec == spec
    assert store.latest_placement("etl-1") == decision


def test_query_count_counts_statements(store: Store) -> None:
    store.create_task("etl-1", make_spec(), status=TaskStatus.PENDING)
    before = store.query_count
    fetch(store, "etl-1")
    assert store.query_count == before + 1
    store.list_tasks()
    store.count_tasks_by_status()
    assert store.query_count == before + 3


def test_cursor_round_trips() -> None:
    stamp = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert decode_cursor(encode_cursor(stamp, "task-1")) == (stamp, "task-1")


@given(st.text(max_size=80))
def test_any_garbage_cursor_is_a_value_error(garbage: str) -> None:
    try:
        stamp, task_id = decode_cursor(garbage)
    except ValueError as exc:
        assert str(exc) == "invalid cursor"
    else:
        assert stamp.tzinfo is not None and task_id


def test_records_import_without_sqlalchemy() -> None:
    # Workflow code builds Transition records; it must not drag the database stack in.
    code = (
        "import sys; from meridian.store import Transition, TaskConflictError, spec_hash; "
        "sys.exit('sqlalchemy' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0
