"""intents: a click's full intent on its claim, and each card's intent to post before posting

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import store.models

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # What a claim needs to finish the story after its process died: who acted as whom, from which
    # card, with which comment, and until when the clicking process itself may still settle it.
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("claim_vendor_user", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("claim_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("claim_via", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claim_deadline", store.models.UTCDateTime(timezone=True), nullable=True))
    # A card about to be posted: found here after a crash, the channel's history says whether the
    # post happened (its message metadata names the item and target).
    op.create_table(
        "card_posts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("item_id", sa.BigInteger(), nullable=False),
        sa.Column("target", sa.String(length=320), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("started_at", store.models.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("item_id", "target", name="uq_card_posts_item_target"),
    )


def downgrade() -> None:
    op.drop_table("card_posts")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("claim_deadline")
        batch.drop_column("claim_via")
        batch.drop_column("claim_comment")
        batch.drop_column("claim_vendor_user")
