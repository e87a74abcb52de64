"""Switching a fresh SQLite file to WAL while another process does the same."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from meridian.store.db import Database, _enable_wal


class ContestedCursor:
    """A cursor whose first WAL switches are refused, as SQLite refuses a contested lock
    upgrade: at once, with "database is locked", its busy handler not consulted."""

    def __init__(self, refusals: int, error: str = "database is locked") -> None:
        self.refusals = refusals
        self.error = error
        self.mode = "delete"
        self.switch_attempts = 0

    def execute(self, sql: str) -> Any:
        if sql == "PRAGMA journal_mode=WAL":
            self.switch_attempts += 1
            if self.switch_attempts <= self.refusals:
                raise sqlite3.OperationalError(self.error)
            self.mode = "wal"
        return self

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


def test_a_refused_switch_is_retried_until_it_lands() -> None:
    cursor = ContestedCursor(refusals=3)
    _enable_wal(cursor)
    assert cursor.mode == "wal" and cursor.switch_attempts == 4


def test_a_file_already_in_wal_is_not_switched_again() -> None:
    cursor = ContestedCursor(refusals=99)
    cursor.mode = "wal"
    _enable_wal(cursor)
    assert cursor.switch_attempts == 0


def test_other_errors_are_not_retried() -> None:
    cursor = ContestedCursor(refusals=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _enable_wal(cursor)
    assert cursor.switch_attempts == 1


def test_a_new_file_ends_in_wal(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'fresh.db'}")
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    db.dispose()
