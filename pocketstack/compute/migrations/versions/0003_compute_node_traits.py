"""compute nodes: the traits their drivers report (capabilities)

Revision ID: 0003_compute_node_traits
Revises: 0002_block_device_mappings
Create Date: 2026-12-03 16:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003_compute_node_traits'
down_revision = '0002_block_device_mappings'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('traits', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('compute_nodes', schema=None) as batch_op:
        batch_op.drop_column('traits')
