"""Who has a ticket open and who is typing (collision warnings)

Revision ID: 0010_ticket_presence
Revises: 0009_list_indexes
Create Date: 2026-12-07 13:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.database import UtcDateTime

revision = '0010_ticket_presence'
down_revision = '0009_list_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ticket_presence',
        sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('typing', sa.Boolean(), nullable=False),
        sa.Column('seen_at', UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id']),
        sa.PrimaryKeyConstraint('ticket_id', 'actor'),
    )


def downgrade():
    op.drop_table('ticket_presence')
