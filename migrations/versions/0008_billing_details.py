"""billing details: the customer's legal name and address per workspace, and on each invoice
the buyer, VAT treatment, service period, due date and payment terms

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:00:00

Every new invoice column is NULLable: invoices issued before this revision
keep exactly what they were issued with (their stored PDF is never
re-rendered), and NULL says "issued before billing details existed".
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

INVOICE_COLUMNS = (
    ("buyer", sa.JSON()),
    ("vat_category", sa.String(length=2)),
    ("vat_exemption_code", sa.String(length=20)),
    ("vat_note", sa.Text()),
    ("service_start", sa.Date()),
    ("service_end", sa.Date()),
    ("due_date", sa.Date()),
    ("payment_terms", sa.Text()),
)
VAT_CATEGORY_VALID = "vat_category IS NULL OR vat_category IN ('S', 'AE', 'O')"


def upgrade() -> None:
    op.create_table(
        "billing_details",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=True),
        sa.Column("address_lines", sa.JSON(), nullable=False),
        sa.Column("postcode", sa.String(length=20), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("vat_id", sa.String(length=20), nullable=True),
        sa.Column("buyer_reference", sa.String(length=100), nullable=True),
        sa.Column("order_reference", sa.String(length=100), nullable=True),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "language IN ('de', 'en')", name=op.f("ck_billing_details_language_valid")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_details_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_billing_details")),
    )
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        for name, type_ in INVOICE_COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_billing_invoice_vat_category_valid"), VAT_CATEGORY_VALID
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_billing_invoice_vat_category_valid"), type_="check")
        for name, _ in reversed(INVOICE_COLUMNS):
            batch_op.drop_column(name)
    op.drop_table("billing_details")
