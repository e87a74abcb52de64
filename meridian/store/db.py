"""Engine, sessions and the write-retry discipline shared by every store module.

SQLite: several processes (API, central worker) share one file, so it runs in WAL mode
with a generous busy timeout, and every write transaction starts with `BEGIN IMMEDIATE`.
A deferred transaction that reads first and writes later can fail at once with
SQLITE_BUSY (busy_timeout does not help there); taking the write lock up front makes
writers queue instead. Within one process, writers also queue on a lock before they
begin: SQLite's busy handler sleeps in steps of up to 100 ms while another connection
holds the lock, so a burst of writes from one process's threads (the central worker
recording a hundred moving tasks) would spend most of its time asleep, not waiting.

MySQL/MariaDB: READ COMMITTED, utf8mb4, pre-ping and recycle so a pool survives server
restarts and idle disconnects; writers lock the rows they change (`FOR UPDATE`). Connect
and read timeouts (settings `database.*`) turn a server that stopped answering into an
error instead of a worker thread hung for good, and TLS, when asked for, is required:
PyMySQL on its own would fall back to plain text against a server without it.
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from meridian.settings import DatabaseSettings
from meridian.store.types import MYSQL_DIALECTS

log = logging.getLogger(__name__)

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 30_000
MYSQL_POOL_RECYCLE_SECONDS = 1800
# MySQL error codes worth retrying: deadlock victim and lock wait timeout.
MYSQL_RETRYABLE_ERRORS = frozenset({1213, 1205})
WRITE_ATTEMPTS = 4


class StatementCount:
    """Statements sent inside one `Database.counting()` block."""

    def __init__(self) -> None:
        self.value = 0


# The open counting blocks of the current context. A context variable, not a process
# counter: concurrent activities each count only their own statements, and
# asyncio.to_thread copies the context, so work handed to a thread is counted too.
_COUNTING: ContextVar[tuple[StatementCount, ...]] = ContextVar("meridian_counting", default=())


class Database:
    """One engine per process plus a counter of the statements it sent."""

    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        max_overflow: int = 20,
        options: DatabaseSettings | None = None,
    ) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()
        self._count_lock = threading.Lock()
        self._query_count = 0
        # SQLite only (see the module doc); reentrant, as a write may call a helper that
        # opens its own write on the same thread.
        self._write_lock: threading.RLock | None = None
        if self.dialect == "sqlite":
            self._write_lock = threading.RLock()
            self.engine = _sqlite_engine(self.url, pool_size, max_overflow)
        elif self.dialect in MYSQL_DIALECTS:
            self.engine = create_engine(
                self.url,
                pool_pre_ping=True,
                pool_recycle=MYSQL_POOL_RECYCLE_SECONDS,
                pool_size=pool_size,
                max_overflow=max_overflow,
                isolation_level="READ COMMITTED",
                connect_args=mysql_connect_args(options or DatabaseSettings()),
            )
        else:
            raise ValueError(f"unsupported database {self.dialect!r}: use sqlite or mysql+pymysql")
        event.listen(self.engine, "before_cursor_execute", self._count_statement)
        # Same pool, but transactions begun through it take SQLite's write lock at once.
        self.write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self._reader = sessionmaker(self.engine, expire_on_commit=False)
        self._writer = sessionmaker(self.write_engine, expire_on_commit=False)

    @staticmethod
    def sqlite_path(url: str | URL) -> str | None:
        """The file behind a SQLite URL; None for other databases and :memory:."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
            return None
        return parsed.database

    @property
    def is_mysql(self) -> bool:
        return self.dialect in MYSQL_DIALECTS

    @property
    def query_count(self) -> int:
        return self._query_count

    def _count_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # Our own SQLite BEGIN is transaction control, not a query; MySQL sends none.
        if statement.startswith("BEGIN"):
            return
        with self._count_lock:
            self._query_count += 1
            for count in _COUNTING.get():
                count.value += 1

    @contextmanager
    def counting(self) -> Iterator[StatementCount]:
        """Count the statements this context (and threads it hands work to) sends."""
        count = StatementCount()
        token = _COUNTING.set((*_COUNTING.get(), count))
        try:
            yield count
        finally:
            _COUNTING.reset(token)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        if self._write_lock is None:
            with self._writer() as session, session.begin():
                yield session
            return
        with self._write_lock, self._writer() as session, session.begin():
            yield session

    def run_write(self, work: Callable[[Session], T]) -> T:
        """Run `work` in a write transaction, retrying races and deadlocks.

        `work` must be check-then-write: on a retry after an IntegrityError (a racing
        insert of the same key won) it runs again from scratch and now finds the row.
        """
        integrity_retried = False
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self.write() as session:
                    return work(session)
            except IntegrityError:
                if integrity_retried:
                    raise
                integrity_retried = True
            except OperationalError as exc:
                if attempt == WRITE_ATTEMPTS or not self._is_retryable(exc):
                    raise
                log.warning("retrying write after %s (attempt %d)", exc.orig, attempt)
                time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _is_retryable(self, exc: OperationalError) -> bool:
        if self.is_mysql:
            args: tuple[Any, ...] = getattr(exc.orig, "args", ())
            return bool(args) and args[0] in MYSQL_RETRYABLE_ERRORS
        return "database is locked" in str(exc.orig)

    def dispose(self) -> None:
        self.engine.dispose()


def mysql_connect_args(options: DatabaseSettings) -> dict[str, Any]:
    """PyMySQL's connection arguments: charset, timeouts, and TLS when asked for."""
    args: dict[str, Any] = {
        "charset": "utf8mb4",
        "connect_timeout": options.connect_timeout_seconds,
        "read_timeout": options.read_timeout_seconds,
        # A server that stops reading is as stuck as one that stops answering.
        "write_timeout": options.read_timeout_seconds,
    }
    if options.tls.required:
        args["ssl"] = _tls_context(options)
    return args


def _tls_context(options: DatabaseSettings) -> ssl.SSLContext:
    """Our own context, not PyMySQL's `ssl_*` arguments: given no CA file, PyMySQL also
    stops checking the host name, where the system's CAs should check both."""
    tls = options.tls
    context = ssl.create_default_context(cafile=str(tls.ca) if tls.ca else None)
    if tls.cert is not None:
        context.load_cert_chain(str(tls.cert), str(tls.key) if tls.key else None)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _enable_wal(cursor: Any) -> None:
    """Put the file in WAL mode (it stays so). Switching takes the file's exclusive lock,
    upgraded from a shared one, and SQLite answers a contested upgrade with "database is
    locked" at once, without its busy handler (waiting could deadlock): two processes
    opening a fresh file together (API and central worker at start-up) can both be
    there. So read the mode first (a file already in WAL needs no switch) and retry the
    switch for as long as the busy timeout."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _sqlite_engine(url: URL, pool_size: int, max_overflow: int) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    kwargs: dict[str, Any] = {
        "connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
    }
    if in_memory:
        # Every connection to :memory: would be a different empty database.
        kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = max_overflow
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so that the "begin"
        # hook below decides how each transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine
