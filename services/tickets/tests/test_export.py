"""The history export read models are rebuilt from (``export_history``): every ticket once across pages, its
status changes with the moments the status_changed events carry, its messages without their bodies."""
from datetime import datetime

from helpdesk_common.contracts.tickets import NewMessage, TicketChanges
from helpdesk_common.database import utcnow
from helpdesk_tickets import domain
from helpdesk_tickets.export import export_page


def test_pages_cover_every_ticket_with_its_status_changes_and_messages(sessions, rules, admin, open_ticket, outbox_rows):
    numbers = [open_ticket()["number"] for _ in range(5)]
    with sessions.begin() as session:
        domain.add_message(session, numbers[0], NewMessage(body="Secret details", visibility="public"), admin, rules)
    for status in ("resolved", "open"):
        with sessions.begin() as session:
            domain.change_ticket(session, numbers[1], TicketChanges(status=status), admin, rules)
    seen, cursor = [], None
    while True:
        with sessions() as session:
            page = export_page(session, cursor, 2, rules, utcnow())
        assert page["total"] == 5
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [item["ticket"]["number"] for item in seen] == numbers
    by_number = {item["ticket"]["number"]: item for item in seen}
    moments = [row.envelope["data"]["ticket"]["updated_at"] for row in outbox_rows("status_changed")
               if row.envelope["data"]["ticket"]["number"] == numbers[1]]
    changes = by_number[numbers[1]]["status_changes"]
    assert [(c["old"], c["new"]) for c in changes] == [("new", "resolved"), ("resolved", "open")]
    assert [datetime.fromisoformat(c["at"]) for c in changes] == [datetime.fromisoformat(m) for m in moments]
    messages = by_number[numbers[0]]["messages"]
    assert len(messages) == 1 and messages[0]["author_role"] == "admin" and "body" not in messages[0]
    assert "Secret details" not in str(seen)
