"""SLA clocks: one row per ticket and metric (first response, resolution)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sla_clocks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('ticket_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('metric', sa.String(length=20), nullable=False),
    sa.Column('policy', sa.String(length=100), nullable=True),
    sa.Column('target_seconds', sa.Integer(), nullable=False),
    sa.Column('started_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=False),
    sa.Column('due_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('warn_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('pauses', sa.JSON(), nullable=False),
    sa.Column('paused_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('stopped_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('elapsed_seconds', sa.Float(), nullable=False),
    sa.Column('warned_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.Column('breached_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('ticket_id', 'metric', name='uq_sla_clocks_ticket_metric')
    )
    op.create_index('ix_sla_clocks_due_at', 'sla_clocks', ['due_at'], unique=False)
    op.create_index('ix_sla_clocks_warn_at', 'sla_clocks', ['warn_at'], unique=False)


def downgrade():
    op.drop_index('ix_sla_clocks_warn_at', table_name='sla_clocks')
    op.drop_index('ix_sla_clocks_due_at', table_name='sla_clocks')
    op.drop_table('sla_clocks')
