"""Idempotency keys of add_message: a repeated call returns the first message

Revision ID: 0004_message_keys
Revises: 0003_contacts
Create Date: 2026-11-22 15:30:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0004_message_keys'
down_revision = '0003_contacts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message_idempotency_keys',
    sa.Column('client', sa.String(length=254), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], ),
    sa.PrimaryKeyConstraint('client', 'key')
    )


def downgrade():
    op.drop_table('message_idempotency_keys')
