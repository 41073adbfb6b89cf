"""analytics summary recipients: the accounts the gateway announces (account_changed)

Revision ID: 0006_analytics_recipients
Revises: 0003_anafeat_saved_reports
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0006_analytics_recipients'
down_revision = '0003_anafeat_saved_reports'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('summary_recipients',
                    sa.Column('account_id', sa.Integer(), autoincrement=False, nullable=False),
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('role', sa.String(length=20), nullable=False),
                    sa.Column('disabled', sa.Boolean(), nullable=False),
                    sa.Column('changed_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=False),
                    sa.PrimaryKeyConstraint('account_id'))


def downgrade():
    op.drop_table('summary_recipients')
