"""Agents following tickets, and their notifications (mentions, followed tickets' changes)

Revision ID: 0008_followers_notifications
Revises: 0007_canned_replies
Create Date: 2026-12-07 13:10:00.000000
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.database import UtcDateTime

revision = '0008_followers_notifications'
down_revision = '0007_canned_replies'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'ticket_followers',
        sa.Column('ticket_id', Id, nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id']),
        sa.PrimaryKeyConstraint('ticket_id', 'actor'),
    )
    op.create_table(
        'notifications',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('recipient', sa.String(length=100), nullable=False),
        sa.Column('ticket_id', Id, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=254), nullable=False),
        sa.Column('detail', sa.JSON(), nullable=True),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.Column('read_at', UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_notifications_recipient_id', 'notifications', ['recipient', 'id'])


def downgrade():
    op.drop_index('ix_notifications_recipient_id', table_name='notifications')
    op.drop_table('notifications')
    op.drop_table('ticket_followers')
