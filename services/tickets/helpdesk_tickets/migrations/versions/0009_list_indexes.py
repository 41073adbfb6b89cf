"""Indexes of the workspace's ticket lists: sort by last change or priority, count each view

Revision ID: 0009_list_indexes
Revises: 0008_followers_notifications
Create Date: 2026-12-07 13:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0009_list_indexes'
down_revision = '0008_followers_notifications'
branch_labels = None
depends_on = None

INDEXES = {
    "ix_tickets_updated_at_id": ["updated_at", "id"],
    "ix_tickets_priority_id": ["priority", "id"],
    "ix_tickets_assignee_status": ["assignee", "status"],
    "ix_tickets_team_status": ["team", "status"],
}


RUNNING = sa.text("stopped_at IS NULL")


def upgrade():
    for name, columns in INDEXES.items():
        op.create_index(name, "tickets", columns)
    op.create_index("ix_sla_clocks_running_due_at", "sla_clocks", ["due_at", "ticket_id", "warn_at", "paused_at", "breached_at"], sqlite_where=RUNNING,
                    postgresql_where=RUNNING)


def downgrade():
    op.drop_index("ix_sla_clocks_running_due_at", table_name="sla_clocks")
    for name in INDEXES:
        op.drop_index(name, table_name="tickets")
