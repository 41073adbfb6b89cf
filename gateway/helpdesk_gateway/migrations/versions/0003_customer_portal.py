"""customer portal: mailed sign-in links and customer sessions

Revision ID: 0003
Revises: 0002
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)


def upgrade():
    op.create_table('customer_links',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('created_at', When, nullable=False),
                    sa.Column('expires_at', When, nullable=False),
                    sa.Column('used_at', When, nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash'))
    op.create_index('ix_customer_links_email', 'customer_links', ['email'])
    op.create_table('customer_sessions',
                    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
                    sa.Column('token_hash', sa.String(length=64), nullable=False),
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('created_at', When, nullable=False),
                    sa.Column('seen_at', When, nullable=False),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('token_hash'))


def downgrade():
    op.drop_table('customer_sessions')
    op.drop_index('ix_customer_links_email', 'customer_links')
    op.drop_table('customer_links')
