"""month licences: the dashboard's counts of the months not invoiced, kept per workspace

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 14:30:00

The dashboard counted every workspace's licences of the months without
invoices on every first view: at the benchmarks' full scale, the distinct
billed people of 529 user-licence workspaces, six times the workspace
list's cost.  Each workspace's count is now kept with the stamp, variant and
month start it was counted under (:mod:`plugin.services.month_licences`),
and only the workspaces whose history changed since are counted again.  The
table starts empty: the first view fills it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_month_licences",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=False),
        sa.Column("stamp", sa.BigInteger(), nullable=False),
        sa.Column("licences", sa.Integer(), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "variant IS NULL OR variant IN ('team_licences', 'user_licences')",
            name=op.f("ck_billing_month_licences_variant_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["billing_workspace.id"],
            name=op.f("fk_billing_month_licences_workspace_id_billing_workspace"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "period", name=op.f("pk_billing_month_licences")),
    )


def downgrade() -> None:
    op.drop_table("billing_month_licences")
