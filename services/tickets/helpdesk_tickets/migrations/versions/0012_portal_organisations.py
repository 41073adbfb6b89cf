"""Customer organisations: their email domains, and the organisation each contact belongs to

Revision ID: portal_0011_organisations
Revises: 0011_privacy_contact_erased
Create Date: 2026-12-07 16:20:00.000000
"""
from alembic import op
import sqlalchemy as sa

from helpdesk_common.database import UtcDateTime

revision = 'portal_0011_organisations'
down_revision = '0011_privacy_contact_erased'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'organisations',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('shared', sa.Boolean(), server_default='0', nullable=False),
        sa.Column('created_at', UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'organisation_domains',
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('organisation_id', Id, nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id']),
        sa.PrimaryKeyConstraint('domain'),
    )
    op.create_index('ix_organisation_domains_organisation_id', 'organisation_domains', ['organisation_id'])
    # Plain columns (no foreign key: see models.Contact): SQLite adds them without rebuilding the table.
    op.add_column('contacts', sa.Column('organisation_id', Id, nullable=True))
    op.add_column('contacts', sa.Column('organisation_set_by', sa.String(length=10), nullable=True))
    op.create_index('ix_contacts_organisation_id', 'contacts', ['organisation_id'])


def downgrade():
    op.drop_index('ix_contacts_organisation_id', 'contacts')
    with op.batch_alter_table('contacts') as batch:
        batch.drop_column('organisation_set_by')
        batch.drop_column('organisation_id')
    op.drop_index('ix_organisation_domains_organisation_id', 'organisation_domains')
    op.drop_table('organisation_domains')
    op.drop_table('organisations')
