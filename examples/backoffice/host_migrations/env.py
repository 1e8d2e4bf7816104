"""The host's Alembic environment.

``exclude_billing_tables`` keeps the host's autogenerate from proposing to
drop the plugin's tables, which live in the same database under the plugin's
own migration history.
"""

from alembic import context

from examples.backoffice.models import db
from plugin.migrate import exclude_billing_tables

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=db.metadata,
    include_name=exclude_billing_tables,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
