"""instances: auto_disk_config (OS-DCF:diskConfig AUTO or MANUAL)

Revision ID: 0007_instance_disk_config
Revises: 0006_instance_system_metadata
Create Date: 2026-12-04 18:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0007_instance_disk_config'
down_revision = '0006_instance_system_metadata'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('auto_disk_config', sa.Boolean(), nullable=False,
                                      server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('auto_disk_config')
