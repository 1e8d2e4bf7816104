"""invoice corrections: one current invoice per workspace and month, not one invoice

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-09 01:00:00

A credited invoice makes room for the corrected invoice that a new close of
its month issues.  ``billing_invoice.credited_by_id`` names the credit note
that credits an invoice (filled in here for the invoices credited before),
and the partial unique index that allowed one invoice per workspace and
period now allows one *current* invoice: one that no credit note credits.

SQLite cannot add a foreign key with ``ALTER TABLE`` except inline in the new
column's definition, which is what it is given; rebuilding ``billing_invoice``
(batch mode) would rewrite every stored PDF for one column.  The downgrade
rebuilds it (SQLite cannot drop a column that a foreign key uses), and refuses
while a workspace has more than one invoice for a month: the old index could
not hold them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_billing_invoice_credited_by_id_billing_invoice"
OLD_INDEX = ("uq_billing_invoice_workspace_period", "kind = 'invoice'")
NEW_INDEX = (
    "uq_billing_invoice_workspace_period_current",
    "kind = 'invoice' AND credited_by_id IS NULL",
)


def _create_index(name: str, condition: str) -> None:
    op.create_index(
        name,
        "billing_invoice",
        ["workspace_id", "period"],
        unique=True,
        sqlite_where=sa.text(condition),
        postgresql_where=sa.text(condition),
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE billing_invoice ADD COLUMN credited_by_id INTEGER "
            f"CONSTRAINT {FOREIGN_KEY} REFERENCES billing_invoice (id)"
        )
    else:
        op.add_column("billing_invoice", sa.Column("credited_by_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            FOREIGN_KEY, "billing_invoice", "billing_invoice", ["credited_by_id"], ["id"]
        )
    op.execute(
        "UPDATE billing_invoice SET credited_by_id = (SELECT note.id FROM billing_invoice AS note "
        "WHERE note.credits_invoice_id = billing_invoice.id) WHERE kind = 'invoice'"
    )
    op.drop_index(OLD_INDEX[0], table_name="billing_invoice")
    _create_index(*NEW_INDEX)


def downgrade() -> None:
    reissued = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT workspace_key, period FROM billing_invoice WHERE kind = 'invoice' "
                "GROUP BY workspace_key, period HAVING count(*) > 1 "
                "ORDER BY workspace_key, period"
            )
        )
        .all()
    )
    if reissued:
        raise RuntimeError(
            "cannot downgrade below 0011: these workspaces have a credited invoice and its "
            "corrected invoice for the same month, which one invoice per workspace and month "
            "cannot hold: " + ", ".join(f"{key} {period}" for key, period in reissued)
        )
    op.drop_index(NEW_INDEX[0], table_name="billing_invoice")
    _create_index(*OLD_INDEX)
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("billing_invoice") as batch_op:
            batch_op.drop_column("credited_by_id")
    else:
        op.drop_constraint(FOREIGN_KEY, "billing_invoice", type_="foreignkey")
        op.drop_column("billing_invoice", "credited_by_id")
