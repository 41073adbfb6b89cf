"""Contacts with several identifiers; tickets keep the address they came from

Existing contacts get their email as their first identifier; existing tickets keep their requester
(and record its address as the one the request came from).

Revision ID: 0003_contacts
Revises: 0002
Create Date: 2026-11-22 15:20:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0003_contacts'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('contact_identifiers',
    sa.Column('id', Id, autoincrement=True, nullable=False),
    sa.Column('contact_id', Id, nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('value', sa.String(length=300), nullable=False),
    sa.Column('created_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('contact_id', 'kind', 'value', name='uq_contact_identifiers_contact_kind_value')
    )
    op.create_index('ix_contact_identifiers_kind_value', 'contact_identifiers', ['kind', 'value'], unique=False)
    sqlite = op.get_bind().dialect.name == 'sqlite'
    if sqlite:
        _foreign_keys(False)
    with op.batch_alter_table('contacts') as batch:
        batch.alter_column('email', existing_type=sa.String(length=254), nullable=True)
    with op.batch_alter_table('tickets') as batch:
        batch.alter_column('requester_id', existing_type=Id, nullable=True)
        batch.add_column(sa.Column('requester_email', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('requester_name', sa.String(length=200), nullable=True))
        batch.add_column(sa.Column('requester_ambiguous', sa.Boolean(), server_default='0', nullable=False))
        batch.create_index('ix_tickets_requester_email', ['requester_email'], unique=False)
    op.execute("INSERT INTO contact_identifiers (contact_id, kind, value, created_at) "
               "SELECT id, 'email', lower(email), created_at FROM contacts WHERE email IS NOT NULL")
    op.execute("UPDATE tickets SET requester_email = "
               "(SELECT contacts.email FROM contacts WHERE contacts.id = tickets.requester_id)")
    if sqlite:
        _foreign_keys(True)


def _foreign_keys(on):
    """SQLite alters a table by copying it, and dropping the old copy would fail the rows that point at
    it; the pragma only takes effect between transactions, so this ends the migration's transaction,
    switches, and begins the next (the driver runs in autocommit mode: ``helpdesk_common.database``)."""
    op.execute('COMMIT')
    op.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    op.execute('BEGIN IMMEDIATE')


def downgrade():
    if op.get_bind().dialect.name == 'sqlite':
        _foreign_keys(False)
    with op.batch_alter_table('tickets') as batch:
        batch.drop_index('ix_tickets_requester_email')
        batch.drop_column('requester_ambiguous')
        batch.drop_column('requester_name')
        batch.drop_column('requester_email')
    op.drop_index('ix_contact_identifiers_kind_value', table_name='contact_identifiers')
    op.drop_table('contact_identifiers')
    if op.get_bind().dialect.name == 'sqlite':
        _foreign_keys(True)
