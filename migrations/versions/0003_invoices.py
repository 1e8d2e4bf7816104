"""invoices, credit notes and their numbering

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 10:35:26.578649
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_invoice_sequence",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_billing_invoice_sequence")),
    )
    op.create_table(
        "billing_invoice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("workspace_key", sa.String(length=63), nullable=False),
        sa.Column("workspace_name", sa.String(length=200), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "tax_rate", sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite"), nullable=False
        ),
        sa.Column("net", sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite"), nullable=False),
        sa.Column("tax", sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite"), nullable=False),
        sa.Column("gross", sa.Numeric(18, 4).with_variant(sa.String(40), "sqlite"), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("seller", sa.JSON(), nullable=False),
        sa.Column("rules_sha256", sa.String(length=64), nullable=False),
        sa.Column("credits_invoice_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("pdf_error", sa.Text(), nullable=True),
        sa.Column("pdf_attempts", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'invoice') = (credits_invoice_id IS NULL)",
            name=op.f("ck_billing_invoice_credit_note_refers"),
        ),
        sa.CheckConstraint(
            "kind IN ('invoice', 'credit_note')", name=op.f("ck_billing_invoice_kind_valid")
        ),
        sa.ForeignKeyConstraint(
            ["credits_invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_invoice_credits_invoice_id_billing_invoice"),
        ),
        sa.ForeignKeyConstraint(
            ["rules_sha256"],
            ["billing_rules_version.sha256"],
            name=op.f("fk_billing_invoice_rules_sha256_billing_rules_version"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_invoice_workspace_id_billing_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_invoice")),
        sa.UniqueConstraint(
            "credits_invoice_id", name=op.f("uq_billing_invoice_credits_invoice_id")
        ),
        sa.UniqueConstraint("number", name=op.f("uq_billing_invoice_number")),
        sa.UniqueConstraint("year", "seq", name=op.f("uq_billing_invoice_year_seq")),
    )
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.create_index("ix_billing_invoice_period", ["period"], unique=False)
        batch_op.create_index(
            "uq_billing_invoice_workspace_period",
            ["workspace_id", "period"],
            unique=True,
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_billing_invoice_workspace_period",
            sqlite_where=sa.text("kind = 'invoice'"),
            postgresql_where=sa.text("kind = 'invoice'"),
        )
        batch_op.drop_index("ix_billing_invoice_period")

    op.drop_table("billing_invoice")
    op.drop_table("billing_invoice_sequence")
