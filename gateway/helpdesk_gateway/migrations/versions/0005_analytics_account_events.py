"""account_changed for every account made before the event existed, staged in the gateway's outbox

The other services learn of people's accounts only from ``account_changed`` (analytics mails its weekly
summary to the supervisors and admins): the accounts of an installation from before it are announced once
here, and the relay sends them as it sends every event.

Revision ID: 0005_analytics_account_events
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import helpdesk_common.database

revision = '0005_analytics_account_events'
down_revision = '0004'
branch_labels = None
depends_on = None

When = helpdesk_common.database.UtcDateTime(timezone=True)
accounts = sa.table('accounts', sa.column('id', sa.Integer), sa.column('email', sa.String),
                    sa.column('name', sa.String),
                    sa.column('role', sa.String), sa.column('language', sa.String), sa.column('disabled_at', When))
outbox = sa.table('outbox', sa.column('event_id', sa.String), sa.column('event_type', sa.String),
                  sa.column('envelope', sa.JSON), sa.column('created_at', When), sa.column('attempts', sa.Integer))


def upgrade():
    from helpdesk_common.database import utcnow
    from helpdesk_common.events import new_event

    now = utcnow()
    rows = []
    for account in op.get_bind().execute(sa.select(accounts).order_by(accounts.c.id)):
        envelope = new_event("account_changed", {"account": {
            "id": account.id, "email": account.email, "name": account.name, "role": account.role,
            "language": account.language, "disabled": account.disabled_at is not None,
            "changed_at": now.isoformat()}})
        rows.append({"event_id": envelope["id"], "event_type": envelope["type"], "envelope": envelope,
                     "created_at": now, "attempts": 0})
    if rows:
        op.bulk_insert(outbox, rows)


def downgrade():
    pass  # events once staged are the stream's: nothing to take back
