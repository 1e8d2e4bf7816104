"""Alembic environment of the billing plugin.

It is run by :mod:`plugin.migrate` with an open connection in
``config.attributes["connection"]``; the plugin keeps its own version table so
that the host's migration history is never touched, and it only ever looks at
its own tables.
"""

from alembic import context

from plugin.migrate import VERSION_TABLE, include_name
from plugin.models import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    include_name=include_name,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
