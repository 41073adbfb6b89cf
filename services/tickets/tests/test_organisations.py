"""Customer organisations: membership by domain or by an admin, sharing widens what a customer reads (never
what they change), the list filter, and the events. Real SQLite database, no broker."""
import pytest

from helpdesk_common.contracts import validate
from helpdesk_common.contracts.organisations import NewOrganisation, OrganisationChanges, OrganisationQuery
from helpdesk_common.contracts.tickets import NewMessage, TicketQuery, Viewer
from helpdesk_common.database import utcnow
from helpdesk_common.errors import Conflict, NotFound
from helpdesk_tickets import contacts, domain, organisations


def make(sessions, name, domains=(), shared=False):
    with sessions.begin() as session:
        return organisations.create(session, validate(NewOrganisation, {"name": name, "domains": list(domains),
                                                                        "shared": shared}), utcnow())


def change(sessions, organisation_id, **fields):
    with sessions.begin() as session:
        return organisations.change(session, organisation_id, validate(OrganisationChanges, fields))


def customer(email):
    return Viewer(actor=email, role="customer", email=email)


def numbers(sessions, viewer, **query):
    with sessions() as session:
        return [t["number"] for t in domain.find_tickets(session, TicketQuery(**query), viewer)["items"]]


def test_contacts_join_by_domain_before_and_after_the_organisation_exists(sessions, open_ticket, outbox_rows):
    before = open_ticket(requester={"email": "ann@acme.example"})
    made = make(sessions, "Acme", ["ACME.example"], shared=True)
    assert made["domains"] == ["acme.example"] and made["members"] == 1
    after = open_ticket(requester={"email": "bob@acme.example"})
    elsewhere = open_ticket(requester={"email": "eve@other.example"})
    assert before["requester"]["organisation"] is None  # the view of its moment
    assert after["requester"]["organisation"] == {"id": made["id"], "name": "Acme", "shared": True}
    assert elsewhere["requester"]["organisation"] is None
    created = outbox_rows("organisation_created")
    assert [row.envelope["data"]["joined"] for row in created] == [[before["requester"]["contact_id"]]]
    bob_created = [row for row in outbox_rows("contact_created")
                   if row.envelope["data"]["contact"]["email"] == "bob@acme.example"]
    assert bob_created[0].envelope["data"]["contact"]["organisation_id"] == made["id"]


def test_a_shared_organisation_lets_members_read_each_others_tickets_and_change_only_their_own(
        sessions, rules, open_ticket):
    make(sessions, "Acme", ["acme.example"], shared=True)
    ann = open_ticket(requester={"email": "ann@acme.example"})["number"]
    bob = open_ticket(requester={"email": "bob@acme.example"})["number"]
    eve = open_ticket(requester={"email": "eve@other.example"})["number"]
    assert sorted(numbers(sessions, customer("ann@acme.example"))) == sorted([ann, bob])
    assert numbers(sessions, customer("eve@other.example")) == [eve]
    with sessions() as session:
        assert domain.find_ticket(session, bob, customer("ann@acme.example")).number == bob
        with pytest.raises(NotFound):
            domain.find_ticket(session, ann, customer("eve@other.example"))
    with sessions.begin() as session, pytest.raises(NotFound):
        domain.add_message(session, bob, NewMessage(body="me too"), customer("ann@acme.example"), rules)


def test_an_organisation_that_does_not_share_keeps_each_member_to_their_own(sessions, open_ticket):
    made = make(sessions, "Acme", ["acme.example"], shared=False)
    ann = open_ticket(requester={"email": "ann@acme.example"})["number"]
    bob = open_ticket(requester={"email": "bob@acme.example"})["number"]
    assert numbers(sessions, customer("ann@acme.example")) == [ann]
    change(sessions, made["id"], shared=True)
    assert sorted(numbers(sessions, customer("ann@acme.example"))) == sorted([ann, bob])


def test_an_admins_choice_beats_the_domain(sessions, open_ticket, outbox_rows):
    acme = make(sessions, "Acme", ["acme.example"], shared=True)
    partner = make(sessions, "Partner", [], shared=True)
    ann = open_ticket(requester={"email": "ann@acme.example"})
    eve = open_ticket(requester={"email": "eve@other.example"})
    with sessions.begin() as session:
        moved = contacts.set_organisation(session, eve["requester"]["contact_id"], acme["id"])
        contacts.set_organisation(session, ann["requester"]["contact_id"], partner["id"])
    assert moved["organisation_id"] == acme["id"]
    changes = [row.envelope["data"]["changes"] for row in outbox_rows("contact_updated")]
    assert changes == [[{"field": "organisation_id", "old": None, "new": acme["id"]}],
                       [{"field": "organisation_id", "old": acme["id"], "new": partner["id"]}]]
    # a domain change leaves the admin's choices alone
    change(sessions, acme["id"], domains=[])
    assert numbers(sessions, customer("eve@other.example")) == [eve["number"]]
    with sessions() as session:
        assert organisations.view(session, organisations.get(session, acme["id"]))["members"] == 1
    with sessions.begin() as session, pytest.raises(NotFound):
        contacts.set_organisation(session, eve["requester"]["contact_id"], 999)


def test_removing_a_domain_lets_its_contacts_go_and_adding_one_takes_them(sessions, open_ticket, outbox_rows):
    acme = make(sessions, "Acme", ["acme.example"])
    ann = open_ticket(requester={"email": "ann@acme.example"})["requester"]["contact_id"]
    eve = open_ticket(requester={"email": "eve@acme.org"})["requester"]["contact_id"]
    changed = change(sessions, acme["id"], domains=["acme.org"], name="Acme Inc")
    assert changed["members"] == 1 and changed["name"] == "Acme Inc"
    event = outbox_rows("organisation_updated")[-1].envelope["data"]
    assert {"field": "members", "old": [ann], "new": [eve]} in event["changes"]
    assert {c["field"] for c in event["changes"]} == {"name", "domains", "members"}


def test_a_domain_is_one_organisations(sessions):
    first = make(sessions, "Acme", ["acme.example"])
    with pytest.raises(Conflict) as refused:
        make(sessions, "Copycat", ["acme.example"])
    assert refused.value.code == "domain_taken"
    change(sessions, first["id"], domains=["acme.example", "acme.org"])  # its own domain again: fine


def test_the_list_filters_by_organisation_and_lists_are_paged(sessions, admin, open_ticket):
    acme = make(sessions, "Acme", ["acme.example"])
    make(sessions, "Other", ["other.example"])
    ann = open_ticket(requester={"email": "ann@acme.example"})["number"]
    open_ticket(requester={"email": "eve@other.example"})
    assert numbers(sessions, admin, organisation=acme["id"]) == [ann]
    with sessions() as session:
        first = organisations.find(session, validate(OrganisationQuery, {"limit": 1}))
        assert [o["name"] for o in first["items"]] == ["Acme"] and first["next_cursor"]
        second = organisations.find(session, validate(OrganisationQuery, {"limit": 1, "cursor": first["next_cursor"]}))
        assert [o["name"] for o in second["items"]] == ["Other"] and second["next_cursor"] is None
        assert [o["name"] for o in organisations.find(session, validate(OrganisationQuery, {"domain": "other.example"}))
                ["items"]] == ["Other"]


def test_a_customer_is_told_which_tickets_are_their_own(sessions, open_ticket, admin):
    make(sessions, "Acme", ["acme.example"], shared=True)
    ann = open_ticket(requester={"email": "ann@acme.example"})
    bob = open_ticket(requester={"email": "bob@acme.example"})
    with sessions() as session:
        marked = domain.mark_yours(session, customer("ann@acme.example"), [dict(ann), dict(bob)])
        assert [v["yours"] for v in marked] == [True, False]
        assert "yours" not in domain.mark_yours(session, admin, [dict(ann)])[0]
