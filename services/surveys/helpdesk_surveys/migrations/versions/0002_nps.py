"""nps surveys

Revision ID: 0002
Revises: 0001
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)


def upgrade():
    op.create_table('nps_surveys',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('language', sa.String(length=2), nullable=False),
                    sa.Column('contact_id', sa.Integer(), nullable=True),
                    sa.Column('asked_at', When, nullable=False),
                    sa.Column('mailed_at', When, nullable=True),
                    sa.Column('score', sa.Integer(), nullable=True),
                    sa.Column('comment', sa.Text(), nullable=True),
                    sa.Column('answer_id', sa.String(length=36), nullable=True),
                    sa.Column('answered_at', When, nullable=True),
                    sa.PrimaryKeyConstraint('id'))
    op.create_index('ix_nps_surveys_email', 'nps_surveys', ['email'])


def downgrade():
    op.drop_index('ix_nps_surveys_email', 'nps_surveys')
    op.drop_table('nps_surveys')
