"""Live chat: sessions and their timelines

Revision ID: 0002_chat
Revises: 0001
Create Date: 2026-11-22 15:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0002_chat'
down_revision = '0001'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
When = helpdesk_common.database.UtcDateTime(timezone=True)


def upgrade():
    op.create_table('chat_sessions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('outcome', sa.String(length=12), nullable=True),
    sa.Column('customer_email', sa.String(length=254), nullable=False),
    sa.Column('customer_name', sa.String(length=200), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=True),
    sa.Column('agent', sa.String(length=100), nullable=True),
    sa.Column('agent_viewer', sa.JSON(), nullable=True),
    sa.Column('ticket_number', sa.String(length=40), nullable=True),
    sa.Column('last_seq', sa.Integer(), nullable=False),
    sa.Column('transcribing_until', When, nullable=True),
    sa.Column('started_at', When, nullable=False),
    sa.Column('answered_at', When, nullable=True),
    sa.Column('ended_at', When, nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_chat_sessions_state', 'chat_sessions', ['state', 'started_at'], unique=False)
    op.create_index('ix_chat_sessions_customer', 'chat_sessions', ['customer_email', 'started_at'], unique=False)
    op.create_table('chat_entries',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('chat_id', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('author', sa.String(length=254), nullable=False),
    sa.Column('author_role', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=True),
    sa.Column('at', When, nullable=False),
    sa.Column('in_ticket', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['chat_id'], ['chat_sessions.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('chat_id', 'seq', name='uq_chat_entries_chat_seq')
    )
    op.create_index('ix_chat_entries_pending', 'chat_entries', ['in_ticket', 'chat_id'], unique=False)


def downgrade():
    op.drop_index('ix_chat_entries_pending', table_name='chat_entries')
    op.drop_table('chat_entries')
    op.drop_index('ix_chat_sessions_customer', table_name='chat_sessions')
    op.drop_index('ix_chat_sessions_state', table_name='chat_sessions')
    op.drop_table('chat_sessions')
