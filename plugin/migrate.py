"""Schema migrations: the plugin's own Alembic history in ``migrations/``."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .models import Base
from .resources import resource_path

VERSION_TABLE = "billing_alembic_version"


def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """Only the plugin's own tables are compared and migrated, never the host's."""
    if type_ == "table":
        return name in Base.metadata.tables
    return True


def alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resource_path("migrations")))
    config.attributes["connection"] = connection
    return config


def _begin_ddl(connection: Connection) -> None:
    """Make SQLite's DDL part of the transaction, as PostgreSQL's is.

    Python's ``sqlite3`` opens a transaction only before a DML statement, so a
    ``DROP TABLE`` before it commits at once: a migration refused halfway (a
    downgrade that raises) would leave dropped tables behind while the version
    stays.  An explicit ``BEGIN`` first makes all of it one transaction.
    """
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (the latest schema by default), all or nothing."""
    with engine.begin() as connection:
        _begin_ddl(connection)
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the database back to ``revision``, all or nothing."""
    with engine.begin() as connection:
        _begin_ddl(connection)
        command.downgrade(alembic_config(connection), revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def head_revision() -> str | None:
    scripts = ScriptDirectory(str(resource_path("migrations")))
    return scripts.get_current_head()


def exclude_billing_tables(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    """``include_name`` hook for a *host's* Alembic env.py: skip the plugin's tables.

    Without it, the host's autogenerate sees the plugin's tables in the shared
    database and proposes to drop them.
    """
    if type_ == "table":
        return name not in Base.metadata.tables and name != VERSION_TABLE
    return True
