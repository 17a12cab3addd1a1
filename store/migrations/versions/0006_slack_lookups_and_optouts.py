"""Slack email lookups with their age; opt-outs of email-mapped connectors

Revision ID: 0006
Revises: 0005

Why: every approver a vendor names is found in Slack by email, whether or not they linked. The
answers are kept (shared by replicas) with when they were checked, so a found address is asked again
after a day and a not-found one after an hour, in the background. A person who disconnects an
email-mapped connector stays disconnected until they connect again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.models

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "slack_lookups",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("slack_user_id", sa.String(length=32), nullable=True),
        sa.Column("checked_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("email"),
    )
    with op.batch_alter_table("slack_lookups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slack_lookups_slack_user_id"), ["slack_user_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_slack_lookups_checked_at"), ["checked_at"], unique=False)
    op.create_table(
        "reach_optouts",
        sa.Column("slack_user_id", sa.String(length=32), nullable=False),
        sa.Column("connector", sa.String(length=64), nullable=False),
        sa.Column("at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("slack_user_id", "connector"),
    )


def downgrade() -> None:
    op.drop_table("reach_optouts")
    with op.batch_alter_table("slack_lookups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_slack_lookups_checked_at"))
        batch_op.drop_index(batch_op.f("ix_slack_lookups_slack_user_id"))
    op.drop_table("slack_lookups")
