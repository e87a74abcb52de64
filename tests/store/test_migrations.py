from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from meridian.settings import Settings
from meridian.store import Store
from meridian.store.migrate import current_revision, head_revision
from meridian.store.schema import Base

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
