"""suggestions: what was suggested to whom (portal or ticket), and whether it deflected a ticket

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('suggestions',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('context', sa.String(length=10), nullable=False),
    sa.Column('language', sa.String(length=2), nullable=False),
    sa.Column('ticket_number', sa.String(length=40), nullable=True),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('created_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('deflected_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('deflected_article_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('suggestions', schema=None) as batch_op:
        batch_op.create_index('ix_suggestions_ticket_number_created_at', ['ticket_number', 'created_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('suggestions', schema=None) as batch_op:
        batch_op.drop_index('ix_suggestions_ticket_number_created_at')
    op.drop_table('suggestions')
