"""outbox priority; each reminder's next due instant and card target

Revision ID: 0004
Revises: 0003

Why: delivery takes due jobs by priority (the card someone just clicked first), and the reminder
schedule wakes at the earliest `reminders.next_at` and reads only due rows. Existing cards of
pending items get a reminder row due now: the first pass computes each one's real next instant.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.models

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("priority", sa.SmallInteger(), nullable=False, server_default="1"))
        batch_op.create_index("ix_outbox_priority_not_before", ["priority", "not_before"], unique=False)
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("next_at", store.models.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_reminders_next_at"), ["next_at"], unique=False)
    now = sa.func.current_timestamp()
    op.execute(
        sa.text(
            "UPDATE reminders SET target = (SELECT c.target FROM card_messages c "
            "WHERE c.item_id = reminders.item_id AND (c.slack_user = reminders.slack_user "
            "OR substr(c.target, 1, 32) = reminders.slack_user) LIMIT 1)"
        )
    )
    op.execute(
        sa.text(
            "INSERT INTO reminders (item_id, slack_user, sent, target) "
            "SELECT c.item_id, substr(coalesce(c.slack_user, c.target), 1, 32), 0, c.target "
            "FROM card_messages c JOIN items i ON i.id = c.item_id WHERE i.status = 'pending' "
            "AND NOT EXISTS (SELECT 1 FROM reminders r WHERE r.item_id = c.item_id "
            "AND r.slack_user = substr(coalesce(c.slack_user, c.target), 1, 32))"
        )
    )
    reminders = sa.table("reminders", sa.column("target"), sa.column("next_at"))
    op.execute(reminders.update().where(reminders.c.target.is_not(None)).values(next_at=now))


def downgrade() -> None:
    with op.batch_alter_table("reminders", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminders_next_at"))
        batch_op.drop_column("next_at")
        batch_op.drop_column("target")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_priority_not_before")
        batch_op.drop_column("priority")
