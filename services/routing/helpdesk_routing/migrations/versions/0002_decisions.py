"""Each routing decision numbered per ticket; an assignee set by hand who is not one of routing's agents

Revision ID: 0002_decisions
Revises: 0001
Create Date: 2026-12-07 05:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0002_decisions'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('routed_tickets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('decisions', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('outside_assignee', sa.String(length=100), nullable=True))


def downgrade():
    with op.batch_alter_table('routed_tickets', schema=None) as batch_op:
        batch_op.drop_column('outside_assignee')
        batch_op.drop_column('decisions')
