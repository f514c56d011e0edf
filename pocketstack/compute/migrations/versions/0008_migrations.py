"""migrations: resizes and cold migrations of servers between hosts

Revision ID: 0008_migrations
Revises: 0007_instance_disk_config
Create Date: 2026-12-04 21:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0008_migrations'
down_revision = '0007_instance_disk_config'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'migrations',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('uuid', sa.String(length=36), nullable=False),
        sa.Column('instance_uuid', sa.String(length=36), nullable=False),
        sa.Column('source_compute', sa.String(length=255), nullable=True),
        sa.Column('dest_compute', sa.String(length=255), nullable=True),
        sa.Column('source_node', sa.String(length=255), nullable=True),
        sa.Column('dest_node', sa.String(length=255), nullable=True),
        sa.Column('dest_host', sa.String(length=255), nullable=True),
        sa.Column('old_instance_type_id', sa.Integer(), nullable=True),
        sa.Column('new_instance_type_id', sa.Integer(), nullable=True),
        sa.Column('old_flavor', sa.JSON(), nullable=False),
        sa.Column('new_flavor', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('migration_type', sa.String(length=32), nullable=False),
        sa.Column('hidden', sa.Boolean(), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=True),
        sa.Column('user_id', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['instance_uuid'], ['instances.uuid'],
                                name=op.f('fk_migrations_instance_uuid_instances'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_migrations')),
        sa.UniqueConstraint('uuid', name=op.f('uq_migrations_uuid')),
    )
    with op.batch_alter_table('migrations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_migrations_instance_uuid'), ['instance_uuid'], unique=False)
        batch_op.create_index(batch_op.f('ix_migrations_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_migrations_created_at'), ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_table('migrations')
