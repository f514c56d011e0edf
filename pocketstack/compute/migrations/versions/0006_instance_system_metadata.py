"""instances: system metadata (Nova's instance_system_metadata: shelved_at, shelved_image_id, shelved_host)

Revision ID: 0006_instance_system_metadata
Revises: 0005_instance_passwords
Create Date: 2026-12-04 18:55:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006_instance_system_metadata'
down_revision = '0005_instance_passwords'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('system_metadata', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('system_metadata')
