"""A contact's personal data: the export holds everything the tickets service keeps about them; the erasure
removes it, keeps what reports count, announces contact_erased once, and is idempotent. Real SQLite (or
PostgreSQL) database, no broker."""
import json

import pytest
from sqlalchemy import func, select

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import ContactErased
from helpdesk_common.contracts.tickets import NewMessage, TicketView, Viewer
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Forbidden, NotFound
from helpdesk_tickets import contacts, domain, personal_data
from helpdesk_tickets.models import Contact, ContactIdentifier, HistoryRecord, Message, Ticket

EVA = {"email": "eva@example.se", "name": "Eva Ångström", "phone": "+46 70 123 45 67"}


@pytest.fixture
def eva(sessions, rules, admin, open_ticket):
    """Eva's contact with two tickets, a reply from her and one from an agent; Bo's ticket beside them."""
    first = open_ticket(requester=EVA, subject="VPN drops every hour", description="Since Monday, Eva")
    second = open_ticket(requester={"email": "eva@example.se"}, subject="Invoice address", priority="high")
    open_ticket(requester={"email": "bo@example.se", "name": "Bo"}, subject="Bo's printer")
    customer = Viewer(actor="eva", role="customer", email="eva@example.se")
    with sessions.begin() as session:
        domain.add_message(session, first["number"], NewMessage(body="Still broken, call +46701234567"), customer,
                           rules)
        domain.add_message(session, first["number"], NewMessage(body="Hello Eva, try this"), admin, rules)
    return first["requester"]["contact_id"], [first["number"], second["number"]]


def _dump(sessions):
    """Every text column of the tickets database, as one string, to search for what must be gone."""
    with sessions() as session:
        rows = [session.scalars(select(model)).all() for model in (Contact, ContactIdentifier, Ticket, Message,
                                                                   HistoryRecord)]
    return json.dumps([[{k: v for k, v in vars(row).items() if not k.startswith("_")} for row in table]
                       for table in rows], default=str, ensure_ascii=False)


def test_the_export_holds_the_contact_its_tickets_and_their_messages(sessions, rules, eva):
    contact_id, numbers = eva
    with sessions() as session:
        found = personal_data.export(session, contact_id, rules)
    assert found["contact"]["name"] == "Eva Ångström"
    assert found["emails"] == ["eva@example.se"] and found["phones"] == ["+46701234567"]
    assert [t["number"] for t in found["tickets"]] == numbers
    first = found["tickets"][0]
    assert first["subject"] == "VPN drops every hour"
    assert [m["body"] for m in first["messages"]] == ["Still broken, call +46701234567", "Hello Eva, try this"]
    assert first["history"]  # who changed what, from its creation


def test_erasure_removes_the_persons_data_keeps_the_counts_and_announces_it(sessions, rules, eva, outbox_rows):
    contact_id, numbers = eva
    with sessions() as session:
        before = {t.number: (t.channel, t.priority, t.status, t.team, t.created_at)
                  for t in session.scalars(select(Ticket))}
    with sessions.begin() as session:
        answer = personal_data.erase(session, contact_id, utcnow(), "ada")
    assert answer["ticket_numbers"] == numbers and not answer["already_erased"]
    dump = _dump(sessions)
    for gone in ("eva@example.se", "Ångström", "+46701234567", "VPN drops", "Still broken", "Hello Eva"):
        assert gone not in dump, gone
    assert "Bo's printer" in dump and "bo@example.se" in dump  # nobody else's
    with sessions() as session:
        after = {t.number: (t.channel, t.priority, t.status, t.team, t.created_at)
                 for t in session.scalars(select(Ticket))}
        assert after == before  # what reports count
        assert session.get(Contact, contact_id).erased_at is not None
        views = [domain.ticket_view(t) for t in session.scalars(select(Ticket).where(Ticket.number.in_(numbers)))]
    for view in views:  # still valid answers of the API
        validate(TicketView, view)
        assert view["requester"]["email"] == "" and view["requester"]["name"] is None
    (event,) = outbox_rows("contact_erased")
    data = validate(ContactErased, event.envelope["data"])
    assert (data.contact_id, data.emails, data.phones, data.ticket_numbers) == (
        contact_id, ["eva@example.se"], ["+46701234567"], numbers)


def test_erasure_is_idempotent(sessions, eva, outbox_rows, count_rows):
    contact_id, numbers = eva
    with sessions.begin() as session:
        first = personal_data.erase(session, contact_id, utcnow())
    with sessions.begin() as session:
        again = personal_data.erase(session, contact_id, utcnow())
    assert again == {**first, "already_erased": True}
    assert len(outbox_rows("contact_erased")) == 1
    assert count_rows(Ticket) == 3


def test_a_new_request_after_the_erasure_is_a_new_contact(sessions, eva, open_ticket):
    contact_id, _ = eva
    with sessions.begin() as session:
        personal_data.erase(session, contact_id, utcnow())
    view = open_ticket(requester={"email": "eva@example.se", "name": "Eva"})
    assert view["requester"]["contact_id"] not in (None, contact_id)


def test_only_admins_export_or_erase(sessions, agent, customer):
    for viewer in (agent, customer):
        with pytest.raises(Forbidden):
            personal_data.check_admin(viewer)
    with sessions() as session, pytest.raises(NotFound):
        personal_data.export(session, 999)


def test_erasure_forgets_the_relayed_events_that_carried_the_persons_text(sessions, eva, outbox_rows):
    from sqlalchemy import update
    from helpdesk_tickets.models import Outbox
    contact_id, _ = eva
    with sessions.begin() as session:  # as the relay leaves them: published, kept a while
        session.execute(update(Outbox).values(published_at=utcnow()))
    with sessions.begin() as session:
        personal_data.erase(session, contact_id, utcnow())
    assert [row.event_type for row in outbox_rows()] == ["contact_erased"]


def test_an_address_shared_with_another_contact_is_not_erased_for_them(sessions, open_ticket, outbox_rows):
    from helpdesk_common.contracts.contacts import NewContact
    with sessions.begin() as session:
        eva = contacts.create(session, validate(NewContact, {"name": "Eva", "identifiers": [
            {"kind": "email", "value": "eva@example.se"}, {"kind": "email", "value": "family@example.se"}]}))
        contacts.create(session, validate(NewContact, {"name": "Bo", "identifiers": [
            {"kind": "email", "value": "bo@example.se"}, {"kind": "email", "value": "family@example.se"}]}))
    family = open_ticket(requester={"email": "family@example.se"}, subject="From the family mailbox")
    assert family["requester"]["contact_ambiguous"]  # nobody's for sure
    with sessions.begin() as session:
        personal_data.erase(session, eva["id"], utcnow())
    (event,) = outbox_rows("contact_erased")
    assert event.envelope["data"]["emails"] == ["eva@example.se"] and event.envelope["data"]["ticket_numbers"] == []
    assert "From the family mailbox" in _dump(sessions)
