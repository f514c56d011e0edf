"""instances: the sealed adminPass for the guest and the guest's encrypted password (os-server-password)

Revision ID: 0005_instance_passwords
Revises: 0003_compute_node_traits
Create Date: 2026-12-04 06:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_instance_passwords'
down_revision = '0004_aggregates'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('admin_pass_sealed', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('guest_password', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('instances', schema=None) as batch_op:
        batch_op.drop_column('guest_password')
        batch_op.drop_column('admin_pass_sealed')
