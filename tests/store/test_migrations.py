from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from meridian.settings import Settings
from meridian.store import Store, spec_hash
from meridian.store.migrate import alembic_config, current_revision, head_revision, migrating
from meridian.store.schema import Base
from meridian.tasks.spec import TaskStatus

from .conftest import make_spec

REPO = Path(__file__).resolve().parents[2]
EXPECTED_TABLES = {table.name for table in Base.metadata.sorted_tables}


def test_migrate_from_empty_creates_every_table_at_head(empty_url: str) -> None:
    with Store(empty_url) as store:
        assert current_revision(store._db) is None
        store.migrate()
        tables = set(inspect(store._db.engine).get_table_names())
        assert EXPECTED_TABLES <= tables
        assert "alembic_version" in tables
        assert current_revision(store._db) == head_revision()
        # Every process calls migrate() at start-up; a second run is a no-op.
        store.migrate()
        assert current_revision(store._db) == head_revision()


def test_migrations_create_exactly_the_orm_schema(empty_url: str) -> None:
    with Store(empty_url) as store:
        store.migrate()
        with store._db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_from_settings_creates_the_sqlite_directory(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state" / "nested")
    with Store.from_settings(settings) as store:
        store.migrate()
        assert store.dialect == "sqlite"
    assert (tmp_path / "state" / "nested" / "meridian.db").exists()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'wal.db'}") as store:
        with store._db.engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
            synchronous = connection.exec_driver_sql("PRAGMA synchronous").scalar()
            busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
    assert (journal, synchronous, busy, foreign_keys) == ("wal", 1, 30000, 1)


def test_alembic_cli_uses_the_shipped_ini(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alembic = Path(sys.executable).with_name("alembic")
    ini = REPO / "meridian" / "migrations" / "alembic.ini"
    result = subprocess.run(
        [str(alembic), "-c", str(ini), "-x", f"url={url}", "upgrade", "head"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    with Store(url) as store:
        assert current_revision(store._db) == head_revision()


def _upgrade_to(store: Store, revision: str) -> None:
    config = alembic_config()
    with store._db.write_engine.connect() as connection, migrating(store._db, connection):
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_unit_scoped_ids_migration_backfills_existing_tasks(empty_url: str) -> None:
    """0004 on a database with tasks from before (at 0003): each keeps its key (its workflow and
    Jobs stay as they are) and gets it as its public id, with its events and placements
    (the SQLite rebuild of `tasks` must not cascade to them); then two units may share
    an id and an Idempotency-Key."""
    spec = make_spec()
    at = datetime(2025, 5, 1, 8, 0, 0)
    with Store(empty_url) as store:
        _upgrade_to(store, "0003_orphan_namespace")
        with store._db.write() as session:
            for task_id, key in (("etl-1", "K"), ("etl-2", None)):
                session.execute(
                    text(
                        "INSERT INTO tasks (id, name, business_unit, kind, status, spec, "
                        "spec_hash, idempotency_key, attempt, last_seq, created_at, "
                        "updated_at, version) VALUES (:id, 'n', 'payments', 'batch', "
                        "'RUNNING', :spec, :hash, :key, 1, 3, :at, :at, 1)"
                    ),
                    {
                        "id": task_id,
                        "spec": spec.model_dump_json(),
                        "hash": spec_hash(spec),
                        "key": key,
                        "at": at,
                    },
                )
                session.execute(
                    text(
                        "INSERT INTO task_events (task_id, event_key, seq, status, attempt, "
                        "reason, at, applied) VALUES (:id, '3', 3, 'RUNNING', 1, 'up', :at, 1)"
                    ),
                    {"id": task_id, "at": at},
                )
                session.execute(
                    text(
                        "INSERT INTO placement_decisions (task_id, attempt, seq, decision, "
                        "decided_at) VALUES (:id, 1, 1, '{}', :at)"
                    ),
                    {"id": task_id, "at": at},
                )

        store.migrate()

        assert current_revision(store._db) == head_revision()
        old = store.get_unit_task("payments", "etl-1")
        assert old is not None and (old.id, old.public_id) == ("etl-1", "etl-1")
        assert store.get_by_idempotency_key("payments", "K") == old
        assert [e.event_key for e in store.list_events("etl-2")] == ["3"]
        assert len(store.list_placements("etl-1")) == 1
        # The same public id and key, another unit: a second task, not a conflict.
        other = store.create_task(
            "risk.etl-1",
            make_spec(business_unit="risk"),
            status=TaskStatus.PENDING,
            public_id="etl-1",
            idempotency_key="K",
        )
        assert other.created
        assert [t.business_unit for t in store.find_tasks("etl-1")] == ["payments", "risk"]
        with store._db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
