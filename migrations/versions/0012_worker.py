"""the worker: PDF claims and retries on the invoices, heartbeats, NOTIFY on new work

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-10 09:00:00

An invoice's pending PDF becomes a job like a mail of the outbox: a worker
claims it (``pdf_claim_token``, ``pdf_claimed_until``) and a failed render is
tried again after a growing pause (``pdf_next_attempt_at``).  Each worker
writes a heartbeat row.  On PostgreSQL, statement triggers send
``NOTIFY billing_work`` when invoices or mails are inserted or a PDF is
stored, so a listening worker starts at once instead of at its next poll
(a worker that does not listen still polls).
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

CHANNEL = "billing_work"
#: Trigger name -> (table, the events that mean new work).
NOTIFYING = {
    "billing_invoice_work": ("billing_invoice", "INSERT OR UPDATE OF pdf_sha256"),
    "billing_outbox_mail_work": ("billing_outbox_mail", "INSERT"),
}


def upgrade() -> None:
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pdf_claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("pdf_claimed_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("pdf_next_attempt_at", sa.DateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "billing_worker_heartbeat",
        sa.Column("id", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("jobs_done", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('worker', 'cron')", name=op.f("ck_billing_worker_heartbeat_kind_valid")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_worker_heartbeat")),
    )
    op.create_index(
        "ix_billing_worker_heartbeat_seen_at", "billing_worker_heartbeat", ["seen_at"]
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION billing_notify_work() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
        )
        for name, (table, events) in NOTIFYING.items():
            op.execute(
                f"CREATE TRIGGER {name} AFTER {events} ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION billing_notify_work()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, _) in NOTIFYING.items():
            op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute("DROP FUNCTION billing_notify_work()")
    op.drop_index("ix_billing_worker_heartbeat_seen_at", table_name="billing_worker_heartbeat")
    op.drop_table("billing_worker_heartbeat")
    with op.batch_alter_table("billing_invoice", schema=None) as batch_op:
        batch_op.drop_column("pdf_next_attempt_at")
        batch_op.drop_column("pdf_claimed_until")
        batch_op.drop_column("pdf_claim_token")
