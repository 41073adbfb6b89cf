"""Canned replies (macros): shared, or one agent's own

Revision ID: 0007_canned_replies
Revises: 0006_ticket_links
Create Date: 2026-12-07 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.database import UtcDateTime

revision = '0007_canned_replies'
down_revision = '0006_ticket_links'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'canned_replies',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=True),
        sa.Column('status', sa.String(length=30), nullable=True),
        sa.Column('priority', sa.String(length=10), nullable=True),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_canned_replies_owner', 'canned_replies', ['owner'])


def downgrade():
    op.drop_index('ix_canned_replies_owner', table_name='canned_replies')
    op.drop_table('canned_replies')
