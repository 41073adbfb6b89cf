"""Contacts with several identifiers: normalisation, resolving a sender, ambiguity, the contacts API
rules, and the migration of existing contacts. Real SQLite database, no broker."""
import pytest
from sqlalchemy import select, text

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.contacts import ContactQuery, Identifier, NewContact
from helpdesk_common.contracts.tickets import TicketView
from helpdesk_common.adapters.database import engine_for
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Conflict, NotFound, ValidationFailed
from helpdesk_tickets import contacts, domain
from helpdesk_tickets.migrate import upgrade
from helpdesk_tickets.models import Contact, ContactIdentifier, HistoryRecord, Ticket
from helpdesk_tickets.sla import SlaPolicies
from helpdesk_tickets.workflow import Workflow


def new_contact(sessions, name, *identifiers, region=None):
    command = validate(NewContact, {"name": name, "identifiers": [dict(i) for i in identifiers]})
    with sessions.begin() as session:
        return contacts.create(session, command, region)


def email(value):
    return {"kind": "email", "value": value}


def phone(value):
    return {"kind": "phone", "value": value}


# --- normalisation ------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, value, platform, region, expected", [
    ("email", "  Eva.Angstrom@Example.SE ", None, None, ("email", "eva.angstrom@example.se")),
    ("phone", "+31 6 1234 5678", None, None, ("phone", "+31612345678")),
    ("phone", "06-12345678", None, "NL", ("phone", "+31612345678")),
    ("phone", "(020) 555 0123", None, "NL", ("phone", "+31205550123")),
    ("phone", "+46 8 123 456 78", None, None, ("phone", "+46812345678")),
    ("social", "@Eva_A", "Mastodon", None, ("social", "mastodon:eva_a")),
    ("social", "eva_a", "mastodon", None, ("social", "mastodon:eva_a")),
])
def test_identifiers_are_normalised(kind, value, platform, region, expected):
    assert contacts.normalise(kind, value, platform, region) == expected


@pytest.mark.parametrize("kind, value, platform, region", [
    ("email", "not-an-address", None, None),
    ("email", "a@b@c", None, None),
    ("phone", "06-12345678", None, None),  # no country code and no region: refused, not guessed
    ("phone", "+31 12", None, None),
    ("phone", "call me", None, "NL"),
    ("social", "@eva", None, None),  # a handle needs its platform
])
def test_invalid_identifiers_are_refused_with_a_field_and_code(kind, value, platform, region):
    with pytest.raises(ValidationFailed) as refused:
        contacts.normalise(kind, value, platform, region)
    assert refused.value.details[0]["code"] == "invalid_value"
    assert refused.value.details[0]["field"] == "value"


# --- resolving the requester of a new ticket --------------------------------------------------------

def test_mail_from_a_second_address_lands_on_the_known_contact(sessions, open_ticket, count_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"), email("eva.angstrom@work.example"))
    view = open_ticket(requester={"email": "Eva.Angstrom@Work.example", "name": "E. Ångström"})
    assert view["requester"]["contact_id"] == eva["id"]
    assert view["requester"]["email"] == "eva.angstrom@work.example"  # replies go where she wrote from
    assert view["requester"]["name"] == "Eva"
    assert count_rows(Contact) == 1


def test_a_call_from_a_known_number_lands_on_its_contact(sessions, open_ticket, count_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"), phone("+46 70 123 45 67"))
    # intake sends a placeholder address for callers known by no email, plus the number
    view = open_ticket(channel="phone", requester={"email": "phone-46701234567@support.example",
                                                    "phone": "+46701234567"})
    assert view["requester"]["contact_id"] == eva["id"]
    assert view["requester"]["email"] == "eva@example.se"  # not the placeholder: the contact's own
    assert count_rows(Contact) == 1


def test_an_unknown_sender_becomes_a_new_contact_with_all_its_identifiers(sessions, open_ticket):
    view = open_ticket(requester={"email": "new@example.nl", "phone": "+31 20 555 0123",
                                  "social": {"platform": "Mastodon", "handle": "@New"}})
    with sessions() as session:
        contact = session.get(Contact, view["requester"]["contact_id"])
        assert contact.email == "new@example.nl"
        assert sorted((i.kind, i.value) for i in contact.identifiers) == [
            ("email", "new@example.nl"), ("phone", "+31205550123"), ("social", "mastodon:new")]


def test_a_shared_identifier_is_never_guessed(sessions, open_ticket, count_rows):
    first = new_contact(sessions, "Anna", email("anna@example.se"), phone("+46 8 123 456 78"))
    second = new_contact(sessions, "Nils", email("nils@example.se"), phone("+46 8 123 456 78"))
    view = open_ticket(channel="phone", requester={"email": "phone-4681234@support.example",
                                                    "phone": "+46812345678"})
    assert view["requester"]["contact_id"] is None
    assert view["requester"]["contact_ambiguous"] is True
    assert view["requester"]["email"] == "phone-4681234@support.example"
    assert count_rows(Contact) == 2  # and no third contact was made up
    with sessions() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.number == view["number"]))
        flagged = session.scalar(select(HistoryRecord).where(HistoryRecord.ticket_id == ticket.id,
                                                             HistoryRecord.field == "contact_ambiguous"))
    assert flagged.new == [{"identifier": "phone:+46812345678", "contacts": [first["id"], second["id"]]}]


def test_identifiers_pointing_at_two_contacts_are_ambiguous(sessions, open_ticket):
    anna = new_contact(sessions, "Anna", email("anna@example.se"))
    nils = new_contact(sessions, "Nils", email("nils@example.se"), phone("+46 8 123 456 78"))
    view = open_ticket(requester={"email": "anna@example.se", "phone": "+46812345678"})
    assert view["requester"]["contact_id"] is None and view["requester"]["contact_ambiguous"]
    assert {anna["id"], nils["id"]} == {1, 2}


def test_an_agent_links_an_ambiguous_ticket_and_it_is_recorded(sessions, rules, agent, open_ticket, outbox_rows):
    new_contact(sessions, "Anna", email("shared@example.se"))
    nils = new_contact(sessions, "Nils", email("nils@example.se"), email("shared@example.se"))
    view = open_ticket(requester={"email": "shared@example.se"})
    assert view["requester"]["contact_ambiguous"]
    with sessions.begin() as session:
        linked = domain.link_ticket_contact(session, view["number"], nils["id"], agent, rules)
    assert linked["requester"]["contact_id"] == nils["id"] and not linked["requester"]["contact_ambiguous"]
    (event,) = [row for row in outbox_rows("ticket_updated")]
    assert event.envelope["data"]["changes"][0]["field"] == "requester"


def test_a_customer_sees_tickets_from_any_of_their_addresses(sessions, rules, open_ticket):
    from helpdesk_common.contracts.tickets import TicketQuery, Viewer
    new_contact(sessions, "Eva", email("eva@example.se"), email("eva@work.example"))
    open_ticket(requester={"email": "eva@work.example"})
    open_ticket(requester={"email": "someone@else.example"})
    eva = Viewer(actor="eva", role="customer", email="Eva@Example.se")
    with sessions() as session:
        page = domain.find_tickets(session, TicketQuery(), eva, rules)
    assert [t["requester"]["email"] for t in page["items"]] == ["eva@work.example"]


def test_a_bad_phone_number_refuses_only_its_own_request(sessions, rules, admin, new_ticket):
    with sessions.begin() as session:
        outcomes = domain.open_tickets(session, [
            (new_ticket(requester={"email": "a@example.com", "phone": "not a number"}), admin, None),
            (new_ticket(requester={"email": "b@example.com"}), admin, None)], rules)
    assert isinstance(outcomes[0], ValidationFailed)
    assert outcomes[0].details[0]["field"] == "requester.phone"
    assert outcomes[1][1] is True


# --- the contacts API rules -----------------------------------------------------------------------

def test_a_batch_answers_each_ticket_as_it_reads_back_and_again_the_same(sessions, admin, new_ticket, outbox_rows):
    """The views open_tickets answers and announces are built from the rows it writes: each must be the
    ticket as read back, whatever the sender (known, nameless, ambiguous, new) and SLA policy."""
    new_contact(sessions, None, email("nameless@example.se"))
    new_contact(sessions, "Anna", email("anna@example.se"), phone("+46 8 123 456 78"))
    new_contact(sessions, "Nils", email("nils@example.se"), phone("+46 8 123 456 78"))
    rules = domain.Rules(workflow=Workflow.load(), sla=SlaPolicies.load())
    requests = [
        (new_ticket(requester={"email": "Anna@Example.se", "name": "Anna A."}, priority="urgent", team="billing",
                    severity="major", category="hardware", language="sv", tags=["vpn", "sso", "vpn"]), admin, "k1"),
        (new_ticket(requester={"email": "nameless@example.se"}), admin, "k2"),
        (new_ticket(requester={"email": "nameless@example.se", "name": "Named Now"}), admin, None),
        (new_ticket(requester={"email": "p@example.se", "phone": "+46812345678"}, channel="phone"), admin, "k3"),
        (new_ticket(requester={"email": "new@example.se", "name": "New"}, priority="low"), admin, "k4"),
        (new_ticket(requester={"email": "new@example.se", "name": "New"}, priority="low"), admin, "k4"),
    ]
    now = utcnow()
    with sessions.begin() as session:
        first = domain.open_tickets(session, requests, rules, now=now)
    assert [created for _, created in first] == [True] * 5 + [False]
    assert first[5][0] == first[4][0]
    assert first[1][0]["requester"]["name"] == first[2][0]["requester"]["name"] == "Named Now"
    assert first[3][0]["requester"]["contact_ambiguous"] and first[3][0]["requester"]["contact_id"] is None
    with sessions() as session:
        read_back = [domain.ticket_view(domain.find_ticket(session, view["number"], admin), rules, now)
                     for view, _ in first]
    assert [view for view, _ in first] == read_back
    assert {view["sla"]["policy"] for view in read_back} == {"urgent", "normal", "low"}
    announced = [TicketView.model_validate(row.envelope["data"]["ticket"]) for row in outbox_rows("ticket_created")]
    assert announced == [TicketView.model_validate(view) for view, _ in first[:5]]
    with sessions.begin() as session:  # the same batch again (a caller's retry): the same tickets, none new
        again = domain.open_tickets(session, [r for r in requests if r[2]], rules)
    assert [(view["number"], created) for view, created in again] == [
        (view["number"], False) for view, _ in first if view is not first[2][0]]
    assert len(outbox_rows("ticket_created")) == 5


def test_find_a_contact_by_any_identifier(sessions):
    eva = new_contact(sessions, "Eva", email("eva@example.se"), phone("0612345678"), region="NL")
    with sessions() as session:
        by_phone = contacts.find(session, validate(ContactQuery, {"kind": "phone", "value": "06 1234 5678"}), "NL")
        by_email = contacts.find(session, validate(ContactQuery, {"kind": "email", "value": "EVA@example.se"}))
        nobody = contacts.find(session, validate(ContactQuery, {"kind": "email", "value": "x@example.se"}))
    assert [c["id"] for c in by_phone["items"]] == [eva["id"]] == [c["id"] for c in by_email["items"]]
    assert nobody["items"] == []


def test_add_and_remove_identifiers(sessions):
    eva = new_contact(sessions, "Eva", email("eva@example.se"))
    with sessions.begin() as session:
        added = contacts.add_identifier(session, eva["id"], Identifier(kind="email", value="Eva@Work.example"))
    assert [i["value"] for i in added["identifiers"]] == ["eva@example.se", "eva@work.example"]
    with sessions.begin() as session, pytest.raises(Conflict) as twice:
        contacts.add_identifier(session, eva["id"], Identifier(kind="email", value="eva@work.example"))
    assert twice.value.code == "identifier_exists"
    primary = added["identifiers"][0]["id"]
    with sessions.begin() as session:
        removed = contacts.remove_identifier(session, eva["id"], primary)
    assert removed["email"] == "eva@work.example"  # the remaining address became primary
    with sessions.begin() as session, pytest.raises(Conflict) as last:
        contacts.remove_identifier(session, eva["id"], removed["identifiers"][0]["id"])
    assert last.value.code == "last_identifier"
    with sessions.begin() as session, pytest.raises(NotFound) as missing:
        contacts.remove_identifier(session, eva["id"], 999)
    assert missing.value.code == "identifier_not_found"


def test_merge_moves_identifiers_and_tickets(sessions, open_ticket, count_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"))
    ticket = open_ticket(requester={"email": "eva.a@work.example"})
    other = ticket["requester"]["contact_id"]
    with sessions.begin() as session:
        merged, moved = contacts.merge(session, eva["id"], other)
    assert moved == [ticket["number"]]
    assert {i["value"] for i in merged["identifiers"]} == {"eva@example.se", "eva.a@work.example"}
    assert count_rows(Contact) == 1
    later = open_ticket(requester={"email": "eva.a@work.example"})
    assert later["requester"]["contact_id"] == eva["id"]
    with sessions() as session:
        moved = session.scalar(select(HistoryRecord).where(HistoryRecord.field == "requester"))
    assert (moved.old, moved.new) == ({"contact_id": other}, {"contact_id": eva["id"]})


# --- contact events (staged in the outbox, in the transaction that made the change) -------------

def test_creating_contacts_announces_each_once(sessions, open_ticket, outbox_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"))
    open_ticket(requester={"email": "new@example.nl", "phone": "+31 20 555 0123"})
    open_ticket(requester={"email": "new@example.nl"})  # known by now: nobody new
    open_ticket(requester={"email": "eva@example.se"})
    created = [row.envelope["data"]["contact"] for row in outbox_rows("contact_created")]
    assert [c["email"] for c in created] == ["eva@example.se", "new@example.nl"]
    assert created[0]["id"] == eva["id"]
    assert sorted((i["kind"], i["value"]) for i in created[1]["identifiers"]) == [
        ("email", "new@example.nl"), ("phone", "+31205550123")]


def test_identifier_changes_are_announced_with_old_and_new(sessions, outbox_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"))
    with sessions.begin() as session:
        added = contacts.add_identifier(session, eva["id"], Identifier(kind="phone", value="+46 70 123 45 67"))
    with sessions.begin() as session:
        contacts.remove_identifier(session, eva["id"], added["identifiers"][0]["id"])
    first, second = [row.envelope["data"] for row in outbox_rows("contact_updated")]
    assert [c["field"] for c in first["changes"]] == ["identifiers"]
    assert [i["value"] for i in first["changes"][0]["new"]] == ["eva@example.se", "+46701234567"]
    assert {c["field"] for c in second["changes"]} == {"email", "identifiers"}  # the only address went
    assert second["contact"]["email"] is None


def test_refused_identifier_change_announces_nothing(sessions, outbox_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"))
    with pytest.raises(Conflict), sessions.begin() as session:
        contacts.add_identifier(session, eva["id"], Identifier(kind="email", value="EVA@example.se"))
    assert outbox_rows("contact_updated") == []


def test_a_merge_announces_the_contact_and_every_moved_ticket(sessions, rules, agent, open_ticket, outbox_rows):
    eva = new_contact(sessions, "Eva", email("eva@example.se"))
    tickets = [open_ticket(requester={"email": "eva.a@work.example"}) for _ in range(2)]
    other = tickets[0]["requester"]["contact_id"]
    with sessions.begin() as session:
        domain.merge_contacts(session, eva["id"], other, agent, rules)
    (merged,) = [row.envelope["data"] for row in outbox_rows("contact_merged")]
    assert merged["merged_contact_id"] == other and merged["contact"]["id"] == eva["id"]
    assert merged["ticket_numbers"] == [t["number"] for t in tickets]
    updates = [row.envelope for row in outbox_rows("ticket_updated")]
    assert [u["subject"] for u in updates] == [t["number"] for t in tickets]
    assert all(u["data"]["ticket"]["requester"]["contact_id"] == eva["id"] for u in updates)
    assert updates[0]["data"]["changes"] == [{"field": "requester", "old": {"contact_id": other},
                                              "new": {"contact_id": eva["id"]}}]


# --- the migration of existing contacts ---------------------------------------------------------------

def test_existing_contacts_and_tickets_keep_their_requester(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0002")
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO contacts (id, email, name, created_at) "
                                "VALUES (7, 'carol@example.com', 'Carol', '2026-01-01 00:00:00')"))
        connection.execute(text(
            "INSERT INTO tickets (id, number, subject, description, requester_id, channel, priority, status, tier, "
            "tags, custom_fields, reopen_count, version, created_at, updated_at) VALUES (1, 'HD-000001', 's', 'd', "
            "7, 'email', 'normal', 'new', 1, '[]', '{}', 0, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    upgrade(url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT contact_id, kind, value FROM contact_identifiers")).all() == [
            (7, "email", "carol@example.com")]
        assert connection.execute(text("SELECT requester_id, requester_email, requester_ambiguous FROM tickets")
                                  ).all() == [(7, "carol@example.com", 0)]
    engine.dispose()


# --- who sees a contact (issue 17) --------------------------------------------------------------------

def test_a_team_limited_agent_sees_contacts_of_the_tickets_they_see_or_of_none(sessions, rules, open_ticket):
    from helpdesk_common.contracts.tickets import Viewer
    from helpdesk_common.errors import Forbidden

    alpha = Viewer(actor="al", role="agent", teams=["alpha"])
    everyone = Viewer(actor="una", role="agent")
    beta_contact = open_ticket(team="beta", requester={"email": "b@example.com"})["requester"]["contact_id"]
    shared = open_ticket(team="beta", requester={"email": "s@example.com"})["requester"]["contact_id"]
    open_ticket(requester={"email": "s@example.com"})  # and one untriaged ticket: alpha sees it
    fresh = new_contact(sessions, "New", email("n@example.com"))["id"]
    with sessions() as session:
        listed = {c["id"] for c in contacts.find(session, validate(ContactQuery, {}), viewer=alpha)["items"]}
        assert listed == {shared, fresh}
        assert {c["id"] for c in contacts.find(session, validate(ContactQuery, {}), viewer=everyone)["items"]} == {
            beta_contact, shared, fresh}
        by_email = validate(ContactQuery, {"kind": "email", "value": "b@example.com"})
        assert contacts.find(session, by_email, viewer=alpha)["items"] == []
        with pytest.raises(NotFound) as hidden:
            contacts.get(session, beta_contact, viewer=alpha)
        assert hidden.value.code == "contact_not_found"
        assert contacts.get(session, shared, viewer=alpha).id == shared
    for change in (lambda s: contacts.add_identifier(s, beta_contact, Identifier(kind="email", value="x@example.com"),
                                                     viewer=alpha),
                   lambda s: contacts.merge(s, fresh, beta_contact, "al", viewer=alpha),
                   lambda s: domain.merge_contacts(s, beta_contact, fresh, alpha, rules)):
        with pytest.raises(NotFound):
            with sessions.begin() as session:
                change(session)
    with pytest.raises(Forbidden):
        contacts.check_staff(Viewer(actor="c", role="customer", email="c@example.com"))
    # a ticket of one's own team may be linked to a visible contact only
    number = open_ticket(team="alpha", requester={"email": "a@example.com"})["number"]
    with pytest.raises(NotFound):
        with sessions.begin() as session:
            domain.link_ticket_contact(session, number, beta_contact, alpha, rules)
    with sessions.begin() as session:
        assert domain.link_ticket_contact(session, number, shared, alpha, rules)["requester"]["contact_id"] == shared
