"""pricing rules contents on record

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "billing_rules_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_billing_rules_version")),
        sa.UniqueConstraint("sha256", name=op.f("uq_billing_rules_version_sha256")),
    )


def downgrade() -> None:
    op.drop_table("billing_rules_version")
