"""e-invoices: the CII XML of each invoice, its sha256 and the outcome of its validation

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:10:00

NULL on invoices issued before e-invoices existed: they keep their stored
plain PDF and get no XML.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = (
    ("einvoice_xml", sa.LargeBinary()),
    ("einvoice_sha256", sa.String(length=64)),
    ("einvoice_status", sa.String(length=10)),
    ("einvoice_failures", sa.JSON()),
)
STATUS_VALID = "einvoice_status IS NULL OR einvoice_status IN ('valid', 'invalid')"


def upgrade() -> None:
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_billing_invoice_einvoice_status_valid"), STATUS_VALID
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_billing_invoice_einvoice_status_valid"), type_="check")
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)
