"""the mail outbox: invoice mails and mailbox-change notices, one row per delivery

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DUE = "status IN ('queued', 'sending')"


def upgrade() -> None:
    op.create_table(
        "billing_outbox_mail",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("recipient", sa.String(length=254), nullable=True),
        sa.Column("message_key", sa.String(length=120), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_by", sa.String(length=254), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('invoice', 'mailbox_notice')", name=op.f("ck_billing_outbox_mail_kind_valid")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'failed')",
            name=op.f("ck_billing_outbox_mail_status_valid"),
        ),
        sa.CheckConstraint(
            "(kind = 'invoice') = (invoice_id IS NOT NULL)",
            name=op.f("ck_billing_outbox_mail_invoice_mail_refers"),
        ),
        sa.CheckConstraint(
            "recipient IS NOT NULL OR status = 'failed'",
            name=op.f("ck_billing_outbox_mail_recipient_known"),
        ),
        sa.CheckConstraint(
            "(status = 'sending') = (claimed_until IS NOT NULL)",
            name=op.f("ck_billing_outbox_mail_sending_has_lease"),
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["billing_invoice.id"],
            name=op.f("fk_billing_outbox_mail_invoice_id_billing_invoice"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_outbox_mail_workspace_id_billing_workspace"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_outbox_mail")),
        sa.UniqueConstraint("message_key", name=op.f("uq_billing_outbox_mail_message_key")),
    )
    with op.batch_alter_table("billing_outbox_mail", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_billing_outbox_mail_invoice_id"), ["invoice_id"], unique=False
        )
        batch_op.create_index(
            "ix_billing_outbox_mail_due",
            ["next_attempt_at"],
            unique=False,
            sqlite_where=sa.text(DUE),
            postgresql_where=sa.text(DUE),
        )


def downgrade() -> None:
    with op.batch_alter_table("billing_outbox_mail", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_billing_outbox_mail_due",
            sqlite_where=sa.text(DUE),
            postgresql_where=sa.text(DUE),
        )
        batch_op.drop_index(batch_op.f("ix_billing_outbox_mail_invoice_id"))

    op.drop_table("billing_outbox_mail")
