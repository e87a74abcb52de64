"""MySQL/MariaDB connections: TLS when asked for (never a quiet fall-back to plain
text), and a server that stops answering fails the call instead of hanging it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from meridian.settings import DatabaseSettings, DatabaseTLS, Settings
from meridian.store import Store
from meridian.store.db import Database, mysql_connect_args
from tests.security.pki import make_pki
from tests.support import mariadb_available, mariadb_database

needs_mariadb = pytest.mark.skipif(not mariadb_available(), reason="no MariaDB on 127.0.0.1:3306")


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    with mariadb_database("tls") as url:
        yield url


@needs_mariadb
def test_a_query_past_the_read_timeout_fails(mariadb_url: str) -> None:
    database = Database(mariadb_url, options=DatabaseSettings(read_timeout_seconds=1))
    try:
        with database.read() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
        with pytest.raises(OperationalError), database.read() as session:
            session.execute(text("SELECT SLEEP(5)"))
    finally:
        database.dispose()


@needs_mariadb
def test_tls_required_refuses_a_server_without_tls(mariadb_url: str, tmp_path: Path) -> None:
    """The test MariaDB has TLS off: asked for TLS, Meridian does not go on in plain text."""
    settings = Settings(
        state_dir=tmp_path, database_url=mariadb_url, database={"tls": {"enabled": True}}
    )
    store = Store.from_settings(settings)
    try:
        with pytest.raises(OperationalError, match="SSL|TLS"):
            store.migrate()
    finally:
        store.close()


def test_tls_settings_build_a_verifying_context_with_the_client_certificate(
    tmp_path: Path,
) -> None:
    pki = make_pki(tmp_path)
    tls = DatabaseTLS(ca=pki.ca, cert=pki.client.cert, key=pki.client.key)
    context = mysql_connect_args(DatabaseSettings(tls=tls))["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "meridian test CA"),),)


def test_tls_without_verification_still_encrypts(tmp_path: Path) -> None:
    context = mysql_connect_args(DatabaseSettings(tls=DatabaseTLS(enabled=True, verify=False)))[
        "ssl"
    ]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE


def test_timeouts_have_defaults_and_no_tls_unless_asked() -> None:
    args = mysql_connect_args(DatabaseSettings())
    assert args["connect_timeout"] == 10
    assert args["read_timeout"] == 30
    assert "ssl" not in args
