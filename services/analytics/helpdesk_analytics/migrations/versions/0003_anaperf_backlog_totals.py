"""backlog totals, each status move's previous category, each ticket's last move; first response index

Revision ID: 0003_anaperf_backlog_totals
Revises: 0002_privacy_survey_contact
Create Date: 2026-12-07 16:15:00
"""
from alembic import op
import sqlalchemy as sa
import helpdesk_common.database


revision = '0003_anaperf_backlog_totals'
down_revision = '0002_privacy_survey_contact'
branch_labels = None
depends_on = None

KEY = ("status_category", "team", "agent", "channel", "priority", "category", "language", "policy")
# the status move before a move, and a ticket's last move, in the order the read model keeps (at, then version)
PREVIOUS = """
UPDATE ticket_activities SET previous = (
  SELECT p.value FROM ticket_activities p WHERE p.ticket = ticket_activities.ticket AND p.kind = 'status'
   AND (p.at < ticket_activities.at OR (p.at = ticket_activities.at AND p.version < ticket_activities.version))
  ORDER BY p.at DESC, p.version DESC LIMIT 1)
WHERE kind = 'status'"""
LAST_MOVE = """
UPDATE ticket_facts SET {column} = (
  SELECT m.{source} FROM ticket_activities m WHERE m.ticket = ticket_facts.number AND m.kind = 'status'
  ORDER BY m.at DESC, m.version DESC LIMIT 1)"""
TOTALS = """
INSERT INTO backlog_totals (status_category, team, agent, channel, priority, category, language, policy, tickets)
SELECT settled_category, COALESCE(team, ''), COALESCE(agent, ''), COALESCE(channel, ''), COALESCE(priority, ''),
       COALESCE(category, ''), COALESCE(language, ''), COALESCE(sla_policy, ''), count(*)
FROM ticket_facts WHERE settled_category IS NOT NULL
GROUP BY settled_category, COALESCE(team, ''), COALESCE(agent, ''), COALESCE(channel, ''), COALESCE(priority, ''),
         COALESCE(category, ''), COALESCE(language, ''), COALESCE(sla_policy, '')"""


def upgrade():
    op.create_table('backlog_totals',
    sa.Column('status_category', sa.String(length=10), nullable=False),
    sa.Column('team', sa.String(length=100), nullable=False),
    sa.Column('agent', sa.String(length=100), nullable=False),
    sa.Column('channel', sa.String(length=40), nullable=False),
    sa.Column('priority', sa.String(length=20), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('language', sa.String(length=10), nullable=False),
    sa.Column('policy', sa.String(length=100), nullable=False),
    sa.Column('tickets', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint(*KEY)
    )
    with op.batch_alter_table('ticket_activities', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous', sa.String(length=30), nullable=True))
    with op.batch_alter_table('ticket_facts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('settled_at', helpdesk_common.database.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('settled_category', sa.String(length=10), nullable=True))
        batch_op.create_index('ix_ticket_facts_first_response_at', ['first_response_at'], unique=False)
    # a store built before this revision: its moves' previous categories, its tickets' last moves, the totals
    op.execute(PREVIOUS)
    op.execute(LAST_MOVE.format(column="settled_at", source="at"))
    op.execute(LAST_MOVE.format(column="settled_category", source="value"))
    op.execute(TOTALS)


def downgrade():
    with op.batch_alter_table('ticket_facts', schema=None) as batch_op:
        batch_op.drop_index('ix_ticket_facts_first_response_at')
        batch_op.drop_column('settled_category')
        batch_op.drop_column('settled_at')
    with op.batch_alter_table('ticket_activities', schema=None) as batch_op:
        batch_op.drop_column('previous')
    op.drop_table('backlog_totals')
