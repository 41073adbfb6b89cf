"""The tickets' history a page at a time, for read models rebuilt from it (``analytics-rebuild``): each ticket's
view, its status changes and its messages' metadata (never a message body). Plain functions of a session.

A page is tickets in id order after ``cursor``; ``next_cursor`` is None on the last page. Status changes carry
the moment they were made, which is the ``updated_at`` of the ``status_changed`` event that announced them, so
a consumer can key a change by it and meet the live event of the same change on one record.
"""
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from .domain import iso, ticket_view
from .models import HistoryRecord, Message, Ticket

MAX_PAGE = 1000


def export_page(session, cursor, limit, rules, now):
    limit = max(1, min(int(limit), MAX_PAGE))
    after = int(cursor or 0)
    tickets = list(session.scalars(select(Ticket).options(selectinload(Ticket.sla_clocks))
                                   .where(Ticket.id > after, Ticket.number.is_not(None)).order_by(Ticket.id).limit(limit)))
    ids = [t.id for t in tickets]
    statuses, messages = {i: [] for i in ids}, {i: [] for i in ids}
    if ids:
        for record in session.scalars(select(HistoryRecord).where(HistoryRecord.ticket_id.in_(ids),
                                                                  HistoryRecord.field == "status")
                                      .order_by(HistoryRecord.id)):
            statuses[record.ticket_id].append({"at": iso(record.at), "old": record.old, "new": record.new})
        for row in session.execute(select(Message.id, Message.ticket_id, Message.visibility, Message.author_role,
                                          Message.created_at).where(Message.ticket_id.in_(ids)).order_by(Message.id)):
            messages[row.ticket_id].append({"id": row.id, "visibility": row.visibility, "author_role": row.author_role,
                                            "created_at": iso(row.created_at)})
    items = [{"ticket": ticket_view(t, rules, now), "status_changes": statuses[t.id], "messages": messages[t.id]}
             for t in tickets]
    total = session.scalar(select(func.count()).select_from(Ticket).where(Ticket.number.is_not(None)))
    return {"items": items, "next_cursor": str(ids[-1]) if len(ids) == limit else None, "total": total}
