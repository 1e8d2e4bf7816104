"""index of the invoices whose PDF is still to be rendered

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 11:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_billing_invoice_pdf_pending",
        "billing_invoice",
        ["pdf_attempts"],
        unique=False,
        sqlite_where=sa.text("pdf_sha256 IS NULL"),
        postgresql_where=sa.text("pdf_sha256 IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_billing_invoice_pdf_pending", table_name="billing_invoice")
