"""The plugin's Alembic history produces exactly its models' schema, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.pool import NullPool

from examples.backoffice import host_migrations
from examples.backoffice.models import db as host_db
from plugin import migrate
from plugin.models import Base


def schema_differences(engine, metadata=Base.metadata, include_name=migrate.include_name):
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": include_name, "compare_type": True}
        )
        return compare_metadata(context, metadata)


def billing_tables(engine) -> set[str]:
    return {name for name in inspect(engine).get_table_names() if name.startswith("billing_")}


def test_migrations_build_exactly_the_models_schema(empty_database_url):
    engine = create_engine(empty_database_url, poolclass=NullPool)
    migrate.upgrade(engine)
    assert schema_differences(engine) == []
    assert migrate.current_revision(engine) == migrate.head_revision()
    assert billing_tables(engine) == set(Base.metadata.tables) | {migrate.VERSION_TABLE}


def test_downgrade_to_base_then_upgrade_again(empty_database_url):
    engine = create_engine(empty_database_url, poolclass=NullPool)
    migrate.upgrade(engine)
    migrate.downgrade(engine, "base")
    assert billing_tables(engine) == {migrate.VERSION_TABLE}
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert schema_differences(engine) == []


def test_host_and_plugin_histories_live_side_by_side(empty_database_url):
    engine = create_engine(empty_database_url, poolclass=NullPool)
    host_migrations.upgrade(engine)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        host_version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert host_version == "h001"
    assert migrate.current_revision(engine) == migrate.head_revision()
    # Neither side's autogenerate wants to touch the other's tables.
    assert schema_differences(engine) == []
    assert schema_differences(engine, host_db.metadata, migrate.exclude_billing_tables) == []
    migrate.downgrade(engine, "base")
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "h001"
        )
    assert "support_ticket" in inspect(engine).get_table_names()
