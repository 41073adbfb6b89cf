"""Routing decisions applied in the order routing made them: the last applied decision's sequence number

Revision ID: 0005_routing_sequence
Revises: 0004_message_keys
Create Date: 2026-12-07 05:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005_routing_sequence'
down_revision = '0004_message_keys'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('routing_sequence', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('tickets', schema=None) as batch_op:
        batch_op.drop_column('routing_sequence')
