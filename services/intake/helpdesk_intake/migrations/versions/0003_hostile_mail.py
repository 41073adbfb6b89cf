"""Hostile mail: parse attempts, quarantine codes and decisions, acknowledgements by address, Reply-To

Revision ID: 0003_hostile_mail
Revises: 0002_chat
Create Date: 2026-12-07 04:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0003_hostile_mail'
down_revision = '0002_chat'
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)


def upgrade():
    op.create_table('parse_attempts',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('mailbox', sa.String(length=200), nullable=True),
    sa.Column('uid', sa.String(length=20), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('first_at', When, nullable=False),
    sa.Column('last_at', When, nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    with op.batch_alter_table('quarantine') as batch:
        batch.add_column(sa.Column('code', sa.String(length=40), nullable=True))
        batch.add_column(sa.Column('headers_only', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('decided_by', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('decided_at', When, nullable=True))
    with op.batch_alter_table('thread_message_ids') as batch:
        batch.add_column(sa.Column('reply_to', sa.String(length=254), nullable=True))
    op.create_index('ix_outgoing_mail_to_kind', 'outgoing_mail', ['to_address', 'kind', 'created_at'], unique=False)


def downgrade():
    op.drop_index('ix_outgoing_mail_to_kind', table_name='outgoing_mail')
    with op.batch_alter_table('thread_message_ids') as batch:
        batch.drop_column('reply_to')
    with op.batch_alter_table('quarantine') as batch:
        batch.drop_column('decided_at')
        batch.drop_column('decided_by')
        batch.drop_column('headers_only')
        batch.drop_column('code')
    op.drop_table('parse_attempts')
