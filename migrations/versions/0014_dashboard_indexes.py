"""dashboard indexes: the per-month totals from an index alone, the counters from partial ones

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-13 09:00:00

The dashboard sums the last twelve months' invoices per period and variant:
an index on (period, variant, kind, quantity, net) answers that without
reading the invoice rows, already grouped; it replaces the index on period
alone, which it serves as well.  The "e-invoices invalid" and "invoice mail
failed" counters read partial indexes of the few rows they count instead of
scanning every invoice and every mail.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

EINVOICE_INVALID = "einvoice_status = 'invalid'"
MAIL_FAILED = "status = 'failed'"


def upgrade() -> None:
    op.drop_index("ix_billing_invoice_period", table_name="billing_invoice")
    op.create_index(
        "ix_billing_invoice_month_totals",
        "billing_invoice",
        ["period", "variant", "kind", "quantity", "net"],
    )
    op.create_index(
        "ix_billing_invoice_einvoice_invalid",
        "billing_invoice",
        ["id"],
        sqlite_where=sa.text(EINVOICE_INVALID),
        postgresql_where=sa.text(EINVOICE_INVALID),
    )
    op.create_index(
        "ix_billing_outbox_mail_failed",
        "billing_outbox_mail",
        ["kind", "invoice_id"],
        sqlite_where=sa.text(MAIL_FAILED),
        postgresql_where=sa.text(MAIL_FAILED),
    )


def downgrade() -> None:
    op.drop_index("ix_billing_outbox_mail_failed", table_name="billing_outbox_mail")
    op.drop_index("ix_billing_invoice_einvoice_invalid", table_name="billing_invoice")
    op.drop_index("ix_billing_invoice_month_totals", table_name="billing_invoice")
    op.create_index("ix_billing_invoice_period", "billing_invoice", ["period"])
