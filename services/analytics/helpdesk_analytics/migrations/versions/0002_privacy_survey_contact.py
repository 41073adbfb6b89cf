"""Whose survey answer (the contact), so a contact's erasure finds their NPS comments too

Revision ID: 0002_privacy_survey_contact
Revises: 0001
Create Date: 2026-12-07 16:40:00.000000
"""
from alembic import op
import sqlalchemy as sa

revision = '0002_privacy_survey_contact'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('survey_answers') as batch:
        batch.add_column(sa.Column('contact_id', sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table('survey_answers') as batch:
        batch.drop_column('contact_id')
