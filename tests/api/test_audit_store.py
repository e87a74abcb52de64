"""The audit log's table on SQLite and MariaDB: what a row keeps, how it is completed, and
how it pages and filters."""

from __future__ import annotations

import pytest

from meridian.store import Store
from tests.store import conftest as backends
from tests.store.conftest import Clock

# The store tests' fixtures: each test runs on a SQLite file and on MariaDB.
backend = backends.backend
clock = backends.clock
mariadb = backends.mariadb
mariadb_shared_url = backends.mariadb_shared_url
store = backends.store
store_url = backends.store_url


def record(
    store: Store,
    target: str | None,
    *,
    subject: str | None = "ads-user",
    business_unit: str | None = "ads",
    action: str = "task.submit",
    target_kind: str = "task",
) -> int:
    return store.record_audit(
        subject=subject,
        business_unit=business_unit,
        action=action,
        method="POST",
        target_kind=target_kind,
        target=target,
    )


def test_a_row_is_written_first_and_completed_after(store: Store, clock: Clock) -> None:
    entry = record(store, None)
    [row] = store.list_audit().items
    assert (row.id, row.at, row.outcome, row.target) == (entry, clock.now, None, None)
    store.finish_audit(entry, outcome=201, action="task.submit", target_kind="task", target="t1")
    [row] = store.list_audit().items
    assert (row.outcome, row.target, row.subject) == (201, "t1", "ads-user")


def test_oversized_values_are_cut_not_refused(store: Store) -> None:
    # A refused write would refuse the request: a huge token subject must not do that.
    record(store, "t" * 1000, subject="s" * 1000, business_unit="u" * 100, action="a" * 100)
    [row] = store.list_audit().items
    assert (len(row.subject), len(row.target or ""), len(row.action)) == (255, 255, 64)
    assert row.business_unit == "u" * 63


def test_anonymous_when_no_subject(store: Store) -> None:
    record(store, "t1", subject=None, business_unit=None)
    [row] = store.list_audit().items
    assert (row.subject, row.business_unit) == ("anonymous", None)


def test_pages_newest_first_and_filters(store: Store) -> None:
    for i in range(5):
        record(store, f"t{i}", business_unit="ads" if i % 2 else "bank")
    record(store, "aws-us-east-1", action="region.scaling_mode", target_kind="region")
    first = store.list_audit(limit=4)
    assert [r.target for r in first.items] == ["aws-us-east-1", "t4", "t3", "t2"]
    assert first.next_cursor is not None
    rest = store.list_audit(limit=4, cursor=first.next_cursor)
    assert [r.target for r in rest.items] == ["t1", "t0"] and rest.next_cursor is None
    ads = store.list_audit(business_unit="ads", action="task.submit")
    assert [r.target for r in ads.items] == ["t3", "t1"]
    assert [r.target for r in store.list_audit(target_kind="task", target="t2").items] == ["t2"]
    assert store.list_audit(target_kind="task", target="aws-us-east-1").items == []


@pytest.mark.parametrize("cursor", ["", "x", "e30", "eyJhdWRpdCI6MH0", "eyJhdWRpdCI6InMifQ"])
def test_a_bad_cursor_is_refused(store: Store, cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        store.list_audit(cursor=cursor)
