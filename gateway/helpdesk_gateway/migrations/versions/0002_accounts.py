"""accounts, browser sessions, sign-in throttle, shared secrets (the workspace)

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)


def upgrade():
    op.create_table('accounts',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('name', sa.String(length=100), nullable=True),
                    sa.Column('role', sa.String(length=20), nullable=False),
                    sa.Column('password_hash', sa.String(length=200), nullable=False),
                    sa.Column('agent_id', sa.Integer(), nullable=True),
                    sa.Column('language', sa.String(length=10), nullable=True),
                    sa.Column('time_zone', sa.String(length=60), nullable=True),
                    sa.Column('created_at', When, nullable=False),
                    sa.Column('disabled_at', When, nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('email'))
    op.create_table('browser_sessions',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('account_id', sa.Integer(), nullable=False),
                    sa.Column('teams', sa.JSON(), nullable=False),
                    sa.Column('teams_checked_at', When, nullable=False),
                    sa.Column('created_at', When, nullable=False),
                    sa.Column('seen_at', When, nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash'))
    op.create_index('ix_browser_sessions_account_id', 'browser_sessions', ['account_id'])
    op.create_table('sign_in_throttle',
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('failures', sa.Integer(), nullable=False),
                    sa.Column('blocked_until', When, nullable=True),
                    sa.PrimaryKeyConstraint('email'))
    op.create_table('gateway_secrets',
                    sa.Column('name', sa.String(length=50), nullable=False),
                    sa.Column('value', sa.String(length=200), nullable=False),
                    sa.PrimaryKeyConstraint('name'))


def downgrade():
    op.drop_table('gateway_secrets')
    op.drop_table('sign_in_throttle')
    op.drop_index('ix_browser_sessions_account_id', 'browser_sessions')
    op.drop_table('browser_sessions')
    op.drop_table('accounts')
