"""close jobs: the month close asked for in the back-office, done by a worker

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-12 09:00:00

The close page queues a row; a worker claims it (``claim_token``,
``claimed_until``) and runs the close.  A partial unique index keeps at most
one queued or running job per month.  On PostgreSQL an insert notifies the
listening workers like a new invoice or mail does.
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ACTIVE = "status IN ('queued', 'running')"
TRIGGER = "billing_close_job_work"


def upgrade() -> None:
    op.create_table(
        "billing_close_job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'done', 'failed')",
            name=op.f("ck_billing_close_job_status_valid"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_close_job")),
    )
    op.create_index("ix_billing_close_job_period", "billing_close_job", ["period"])
    op.create_index(
        "uq_billing_close_job_period_active",
        "billing_close_job",
        ["period"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {TRIGGER} AFTER INSERT ON billing_close_job "
            "FOR EACH STATEMENT EXECUTE FUNCTION billing_notify_work()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP TRIGGER {TRIGGER} ON billing_close_job")
    op.drop_index("uq_billing_close_job_period_active", table_name="billing_close_job")
    op.drop_index("ix_billing_close_job_period", table_name="billing_close_job")
    op.drop_table("billing_close_job")
