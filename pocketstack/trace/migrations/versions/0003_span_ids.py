"""spans: W3C trace context ids (the span's own id and its parent's), as exported over OTLP

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("span_id", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("parent_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("spans", schema=None) as batch_op:
        batch_op.drop_column("parent_id")
        batch_op.drop_column("span_id")
