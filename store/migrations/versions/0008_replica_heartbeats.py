"""heartbeats: which processes are alive, and which process claimed each click

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row per process start, renewed with its elector's renewals; times on the database's own
    # clock (epoch seconds), as for leases. A click whose process's row has lapsed is reconciled at once.
    op.create_table(
        "replicas",
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("instance"),
    )
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("claim_process", sa.String(length=200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("claim_process")
    op.drop_table("replicas")
