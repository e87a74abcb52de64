"""`Store`: the one object the API handlers and the activities hold.

Thread-safe: each call takes its own session from the engine's pool, so one Store can
serve a Temporal activity thread pool and FastAPI's handlers at once. Create one per
process and close it on shutdown.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from meridian.store.audit import AuditStore
from meridian.store.db import Database, StatementCount
from meridian.store.migrate import upgrade_to_head
from meridian.store.ops import OpsStore
from meridian.store.placements import PlacementStore
from meridian.store.quotas import QuotaStore
from meridian.store.regions import RegionStore
from meridian.store.scaling import ScalingStore
from meridian.store.tasks import TaskStore
from meridian.store.types import utcnow

if TYPE_CHECKING:
    from meridian.settings import DatabaseSettings, Settings


class Store(TaskStore, PlacementStore, RegionStore, OpsStore, ScalingStore, QuotaStore, AuditStore):
    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        pool_size: int = 10,
        max_overflow: int = 20,
        options: DatabaseSettings | None = None,
    ) -> None:
        """`clock` stamps created_at/updated_at that callers do not pass (tests pin it)."""
        self._db = Database(url, pool_size=pool_size, max_overflow=max_overflow, options=options)
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        url = settings.resolved_database_url
        database = Database.sqlite_path(url)
        if database is not None:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        return cls(url, options=settings.database)

    @property
    def url(self) -> str:
        return self._db.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        return self._db.dialect

    @property
    def query_count(self) -> int:
        """Statements sent to the database by this Store since it was created."""
        return self._db.query_count

    def counting(self) -> AbstractContextManager[StatementCount]:
        """`with store.counting() as n:` ... `n.value` statements sent in this context."""
        return self._db.counting()

    def migrate(self) -> None:
        """`alembic upgrade head`; safe to call from several processes at start-up."""
        upgrade_to_head(self._db)

    def close(self) -> None:
        self._db.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
