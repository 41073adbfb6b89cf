"""Linked tickets (related, merged) and the pointer of a merged ticket to its survivor

Revision ID: 0006_ticket_links
Revises: 0005_routing_sequence
Create Date: 2026-12-07 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.database import UtcDateTime

revision = '0006_ticket_links'
down_revision = '0005_routing_sequence'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('merged_into', sa.String(length=40), nullable=True))
    op.create_table(
        'ticket_links',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('ticket_id', Id, nullable=False),
        sa.Column('other_id', Id, nullable=False),
        sa.Column('kind', sa.String(length=20), nullable=False),
        sa.Column('actor', sa.String(length=254), nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id']),
        sa.ForeignKeyConstraint(['other_id'], ['tickets.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('ticket_id', 'other_id', 'kind', name='uq_ticket_links_ticket_other_kind'),
    )
    op.create_index('ix_ticket_links_ticket_id', 'ticket_links', ['ticket_id'])


def downgrade():
    op.drop_index('ix_ticket_links_ticket_id', table_name='ticket_links')
    op.drop_table('ticket_links')
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('merged_into')
