"""Indexes for the workspace's counts: "mine" and "unassigned" within an agent's teams read one covering index;
"breached" counts the running clocks' tickets in ticket order

Revision ID: workspace_0013_count_indexes
Revises: portal_0011_organisations
Create Date: 2026-12-07 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = 'workspace_0013_count_indexes'
down_revision = 'portal_0011_organisations'
branch_labels = None
depends_on = None

RUNNING = sa.text("stopped_at IS NULL")


def upgrade():
    # (assignee, status) with the team after it: an agent's counts check the team in the index, not the rows
    op.create_index("ix_tickets_assignee_status_team", "tickets", ["assignee", "status", "team"])
    op.drop_index("ix_tickets_assignee_status", table_name="tickets")
    op.create_index("ix_sla_clocks_running_ticket", "sla_clocks",
                    ["ticket_id", "due_at", "warn_at", "paused_at", "breached_at"], sqlite_where=RUNNING,
                    postgresql_where=RUNNING)


def downgrade():
    op.drop_index("ix_sla_clocks_running_ticket", table_name="sla_clocks")
    op.create_index("ix_tickets_assignee_status", "tickets", ["assignee", "status"])
    op.drop_index("ix_tickets_assignee_status_team", table_name="tickets")
