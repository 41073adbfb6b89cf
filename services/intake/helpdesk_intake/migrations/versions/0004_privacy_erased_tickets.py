"""Tickets whose requester's personal data was erased: intake mails nothing about them any more

Revision ID: 0004_privacy_erased_tickets
Revises: 0003_hostile_mail
Create Date: 2026-12-07 16:40:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0004_privacy_erased_tickets'
down_revision = '0003_hostile_mail'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('erased_tickets',
    sa.Column('ticket_number', sa.String(length=40), nullable=False),
    sa.Column('erased_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('ticket_number')
    )


def downgrade():
    op.drop_table('erased_tickets')
