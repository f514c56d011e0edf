"""extra on groups and regions; credentials, trusts and records

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('groups') as batch:
        batch.add_column(sa.Column('extra', sa.JSON(), nullable=False, server_default='{}'))
    with op.batch_alter_table('regions') as batch:
        batch.add_column(sa.Column('extra', sa.JSON(), nullable=False, server_default='{}'))
    op.create_table('credentials',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=255), nullable=False),
    sa.Column('encrypted_blob', sa.Text(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_credentials_user_id_users'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credentials'))
    )
    op.create_index(op.f('ix_credentials_user_id'), 'credentials', ['user_id'], unique=False)
    op.create_table('trusts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('trustor_user_id', sa.String(length=64), nullable=False),
    sa.Column('trustee_user_id', sa.String(length=64), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=True),
    sa.Column('impersonation', sa.Boolean(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('remaining_uses', sa.Integer(), nullable=True),
    sa.Column('allow_redelegation', sa.Boolean(), nullable=False),
    sa.Column('redelegation_count', sa.Integer(), nullable=True),
    sa.Column('redelegated_trust_id', sa.String(length=64), nullable=True),
    sa.Column('roles', sa.JSON(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_trusts'))
    )
    op.create_index(op.f('ix_trusts_trustor_user_id'), 'trusts', ['trustor_user_id'], unique=False)
    op.create_index(op.f('ix_trusts_trustee_user_id'), 'trusts', ['trustee_user_id'], unique=False)
    op.create_table('records',
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('id', sa.String(length=255), nullable=False),
    sa.Column('owner', sa.String(length=255), nullable=True),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('kind', 'id', name=op.f('pk_records'))
    )
    op.create_index(op.f('ix_records_owner'), 'records', ['owner'], unique=False)


def downgrade() -> None:
    op.drop_table('records')
    op.drop_table('trusts')
    op.drop_table('credentials')
    with op.batch_alter_table('regions') as batch:
        batch.drop_column('extra')
    with op.batch_alter_table('groups') as batch:
        batch.drop_column('extra')
