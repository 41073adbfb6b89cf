"""token scopes, expiry and bootstrap rotation; revocation counters; audit log; the gateway's outbox

Revision ID: 0004
Revises: 0003
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)


def upgrade():
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scopes', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('expires_at', When, nullable=True))
        batch_op.add_column(sa.Column('bootstrap', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_table('gateway_counters',
                    sa.Column('name', sa.String(length=50), nullable=False),
                    sa.Column('value', sa.Integer(), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    op.create_table('audit_log',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('at', When, nullable=False),
                    sa.Column('actor', sa.String(length=100), nullable=False),
                    sa.Column('action', sa.String(length=100), nullable=False),
                    sa.Column('target', sa.String(length=200), nullable=True),
                    sa.Column('details', sa.JSON(), nullable=False),
                    sa.Column('request_id', sa.String(length=100), nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    for column in ('at', 'actor', 'action'):
        op.create_index(f'ix_audit_log_{column}', 'audit_log', [column])
    op.create_table('outbox',
                    sa.Column('seq', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True,
                              nullable=False),
                    sa.Column('event_id', sa.String(length=36), nullable=False),
                    sa.Column('event_type', sa.String(length=100), nullable=False),
                    sa.Column('envelope', sa.JSON(), nullable=False),
                    sa.Column('created_at', When, nullable=False),
                    sa.Column('published_at', When, nullable=True),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('last_error', sa.Text(), nullable=True),
                    sa.PrimaryKeyConstraint('seq'),
                    sa.UniqueConstraint('event_id'))
    op.create_index('ix_outbox_published_at', 'outbox', ['published_at'])


def downgrade():
    op.drop_index('ix_outbox_published_at', 'outbox')
    op.drop_table('outbox')
    for column in ('at', 'actor', 'action'):
        op.drop_index(f'ix_audit_log_{column}', 'audit_log')
    op.drop_table('audit_log')
    op.drop_table('gateway_counters')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_column('bootstrap')
        batch_op.drop_column('expires_at')
        batch_op.drop_column('scopes')
