"""When a contact's personal data was erased (a contact erased keeps only its id)

Revision ID: 0011_privacy_contact_erased
Revises: 0010_ticket_presence
Create Date: 2026-12-07 16:30:00.000000
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.database import UtcDateTime

revision = '0011_privacy_contact_erased'
down_revision = '0010_ticket_presence'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('contacts') as batch:
        batch.add_column(sa.Column('erased_at', UtcDateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('erased_at')
