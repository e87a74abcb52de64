"""Alembic environment: programmatic (Store.migrate passes a connection) or CLI."""

from __future__ import annotations

from collections.abc import Callable
from logging.config import fileConfig
from typing import cast

from alembic import context
from sqlalchemy.engine import Connection

from meridian.store.schema import Base

config = context.config
target_metadata = Base.metadata


def _cli_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url:
        return url
    from meridian.settings import Settings

    # Without the pydantic mypy plugin, mypy reads `Field(8000, ...)` defaults as
    # required arguments; every Settings field has a default.
    make_settings = cast(Callable[[], Settings], Settings)
    return make_settings().resolved_database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(url=_cli_url(), target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    # CLI use: the same engine set-up (pragmas, isolation level) as the application.
    from meridian.store.db import Database
    from meridian.store.migrate import migrating

    database = Database(_cli_url())
    try:
        with database.write_engine.connect() as cli_connection:
            with migrating(database, cli_connection):
                _run(cli_connection)
    finally:
        database.dispose()


if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name)

if context.is_offline_mode():
    run_offline()
else:
    run_online()
