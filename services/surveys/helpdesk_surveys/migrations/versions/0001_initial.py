"""csat surveys, their signing key, outbox, processed events

Revision ID: 0001
Revises:
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)
Seq = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table('csat_surveys',
                    sa.Column('id', sa.String(length=36), nullable=False),
                    sa.Column('ticket_number', sa.String(length=40), nullable=False),
                    sa.Column('email', sa.String(length=254), nullable=False),
                    sa.Column('language', sa.String(length=2), nullable=False),
                    sa.Column('channel', sa.String(length=20), nullable=False),
                    sa.Column('team', sa.String(length=100), nullable=True),
                    sa.Column('assignee', sa.String(length=100), nullable=True),
                    sa.Column('contact_id', sa.Integer(), nullable=True),
                    sa.Column('asked_at', When, nullable=False),
                    sa.Column('mailed_at', When, nullable=True),
                    sa.Column('rating', sa.Integer(), nullable=True),
                    sa.Column('comment', sa.Text(), nullable=True),
                    sa.Column('answer_id', sa.String(length=36), nullable=True),
                    sa.Column('answered_at', When, nullable=True),
                    sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint('ticket_number'))
    op.create_table('survey_secrets',
                    sa.Column('name', sa.String(length=50), nullable=False),
                    sa.Column('value', sa.String(length=200), nullable=False),
                    sa.PrimaryKeyConstraint('name'))
    op.create_table('outbox',
                    sa.Column('seq', Seq, autoincrement=True, nullable=False),
                    sa.Column('event_id', sa.String(length=36), nullable=False),
                    sa.Column('event_type', sa.String(length=100), nullable=False),
                    sa.Column('envelope', sa.JSON(), nullable=False),
                    sa.Column('created_at', When, nullable=False),
                    sa.Column('published_at', When, nullable=True),
                    sa.Column('attempts', sa.Integer(), nullable=False),
                    sa.Column('last_error', sa.Text(), nullable=True),
                    sa.PrimaryKeyConstraint('seq'),
                    sa.UniqueConstraint('event_id'))
    op.create_index('ix_outbox_published_at', 'outbox', ['published_at'])
    op.create_table('processed_events',
                    sa.Column('event_id', sa.String(length=36), nullable=False),
                    sa.Column('handler', sa.String(length=200), nullable=False),
                    sa.Column('processed_at', When, nullable=False),
                    sa.PrimaryKeyConstraint('event_id', 'handler'))


def downgrade():
    op.drop_table('processed_events')
    op.drop_index('ix_outbox_published_at', 'outbox')
    op.drop_table('outbox')
    op.drop_table('survey_secrets')
    op.drop_table('csat_surveys')
